"""Data sources: where the compiled training loop takes each step's batch from."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Int, PyTree

from .._checks import check_int, warn
from ._batching import DROP_REMAINDER, AbstractBatching
from ._dataset import AbstractDataset


class AbstractDataSource(eqx.Module):
    """Where the batch of every training step comes from, inside the compiled loop.

    A source is a pure function of the run's key and the step index (plus a carried state
    that only saves work, such as the current epoch's permutation), so a training resumed at
    any step sees the same batches, and every batch of a run has the same shapes.
    """

    @abc.abstractmethod
    def init_state(self, key: Array, step: Int[Array, ""]) -> PyTree[Array]:
        """The carried state for continuing at `step` (traced) with the run's `key`."""

    @abc.abstractmethod
    def apply(
        self, fn: Callable, key: Array, state: PyTree[Array], step: Int[Array, ""]
    ) -> tuple[PyTree[Array], PyTree[Array]]:
        """`(fn(batch), new_state)` for the batch of `step`. `fn` maps a batch to arrays of
        fixed shapes (a source may call it on batches of two sizes, in two branches)."""

    @abc.abstractmethod
    def example_batch(self) -> PyTree[jax.ShapeDtypeStruct]:
        """The shapes and dtypes of a (full) batch, without computing one."""


class Shuffled(AbstractDataSource):
    """Batches of a finite data set (`Windows`, `Pairs`), a fresh permutation every epoch.

    **Arguments:**

    - `dataset`: an `AbstractDataset`.
    - `batch_size`: examples per batch, an int `>= 1`; larger than the data set trains
        full-batch (with a warning), and then no permutation is drawn.
    - `batching`: an `AbstractBatching` strategy (default `DropRemainder()`;
        `TrainaxBatching()` reproduces trainax's batches).
    """

    dataset: AbstractDataset
    batch_size: int = eqx.field(static=True)
    batching: AbstractBatching

    def __init__(
        self,
        dataset: AbstractDataset,
        batch_size: int,
        *,
        batching: AbstractBatching = DROP_REMAINDER,
    ):
        if not isinstance(dataset, AbstractDataset):
            raise TypeError(
                "`dataset` must be an `AbstractDataset` (`Windows`, `Pairs`), got "
                f"{type(dataset).__name__}."
            )
        if not isinstance(batching, AbstractBatching):
            raise TypeError(
                "`batching` must be an `AbstractBatching` (`DropRemainder()`, "
                f"`TrainaxBatching()`), got {batching!r}."
            )
        check_int("batch_size", batch_size)
        n = dataset.num_examples
        if n < 1:
            raise ValueError(f"`dataset` must hold at least one example, got {n}.")
        if batch_size > n:
            warn(
                f"`batch_size` ({batch_size}) is larger than the number of examples ({n}); "
                f"training full-batch with {n} examples per step."
            )
            batch_size = n
        self.dataset, self.batch_size, self.batching = dataset, batch_size, batching

    @property
    def num_examples(self) -> int:
        return self.dataset.num_examples

    @property
    def batches_per_epoch(self) -> int:
        return self.batching.batches_per_epoch(self.num_examples, self.batch_size)

    @property
    def full_batch(self) -> bool:
        """Whether every step sees every example (order does not change a batch loss)."""
        return self.batch_size == self.num_examples

    def _permutation(self, epoch_key) -> Int[Array, "examples"]:  # noqa: F821
        return jax.random.permutation(epoch_key, self.num_examples).astype(jnp.int32)

    def init_state(self, key, step):
        if self.full_batch:
            return ()
        epoch = step // self.batches_per_epoch
        epoch_key = self.batching.epoch_key(key, epoch)
        return epoch, epoch_key, self._permutation(epoch_key)

    def batch_indices(self, key, step: int) -> Int[Array, "batch"]:  # noqa: F821
        """The example indices of step `step` (for inspection; the loop draws its own)."""
        epoch, b = divmod(step, self.batches_per_epoch)
        perm = self._permutation(self.batching.epoch_key(key, epoch))
        stop = min((b + 1) * self.batch_size, self.num_examples)
        return perm[b * self.batch_size : stop]

    def apply(self, fn, key, state, step):
        if self.full_batch:
            return fn(self.dataset.examples(np.arange(self.num_examples))), state
        epoch, epoch_key, perm = state
        new_epoch, b = jnp.divmod(step, self.batches_per_epoch)

        def advance(epoch_key):
            epoch_key = self.batching.next_epoch_key(key, epoch_key, new_epoch)
            return epoch_key, self._permutation(epoch_key)

        epoch_key, perm = lax.cond(
            new_epoch != epoch, advance, lambda k: (k, perm), epoch_key
        )  # steps run in order: the epoch only ever moves on by one
        size, last = (
            self.batch_size,
            self.batching.last_batch_size(self.num_examples, self.batch_size),
        )

        def run(n):
            return lambda: fn(self.dataset.examples(lax.dynamic_slice_in_dim(perm, b * size, n)))

        if last == size:
            out = run(size)()
        else:  # a short last batch: its own branch, no recompilation
            out = lax.cond(b == self.batches_per_epoch - 1, run(last), run(size))
        return out, (new_epoch.astype(jnp.asarray(epoch).dtype), epoch_key, perm)

    def example_batch(self):
        return eqx.filter_eval_shape(self.dataset.examples, jnp.zeros(self.batch_size, jnp.int32))


class Sampler(AbstractDataSource):
    """Fresh data at every step: `sample(key)` runs inside the compiled loop, nothing is stored.

    Step `s` draws its batch from `jax.random.fold_in(key, s)`, where `key` is the run's key:
    a hand-written loop that does the same sees the very same batches.

    **Arguments:**

    - `sample`: `key -> batch` (a PyTree of arrays of fixed shapes): random heat sources,
        collocation points, random initial conditions rolled out by a reference stepper.
    - `batch_size`: `None` (default): `sample` draws a whole batch. An int: `sample` draws
        one example, vmapped over `jax.random.split(step_key, batch_size)`.
    """

    sample: Callable
    batch_size: int | None = eqx.field(static=True)

    def __init__(self, sample: Callable, *, batch_size: int | None = None):
        if not callable(sample):
            raise TypeError(
                f"`sample` must be callable as `sample(key) -> batch`, got {type(sample).__name__}."
            )
        self.sample = sample
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size)

    def draw(self, key: Array) -> PyTree[Array]:
        """The batch drawn from the step key `key` (a `jax.random.key`)."""
        if self.batch_size is None:
            return self.sample(key)
        return jax.vmap(self.sample)(jax.random.split(key, self.batch_size))

    def init_state(self, key, step):
        return ()

    def apply(self, fn, key, state, step):
        return fn(self.draw(jax.random.fold_in(_typed(key), step))), state

    def example_batch(self):
        return eqx.filter_eval_shape(self.draw, jax.random.key(0))


class Fixed(eqx.Module):
    """The same batch at every step: `fixed(key) -> batch`, the key ignored. Wrap a drawn set
    of points in it to train on fixed points through `Sampler(Fixed(batch))`:
    the trainer then knows the batch is the same at every step and reuses the value and
    gradient a line search (`optax.lbfgs`) computed at the accepted point.

    **Arguments:** `batch`: a PyTree of arrays.
    """

    batch: PyTree[Array]

    def __init__(self, batch: PyTree[Array]):
        leaves = jax.tree_util.tree_leaves(batch)
        if not leaves or not all(eqx.is_array(x) for x in leaves):
            raise TypeError(f"`batch` must be a PyTree of arrays, got {batch!r}.")
        self.batch = jax.tree_util.tree_map(jnp.asarray, batch)

    def __call__(self, key=None) -> PyTree[Array]:
        return self.batch


def _typed(key: Array) -> Array:
    """A typed `jax.random.key` from raw key data (the form a `TrainResult` keeps)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)
