"""Lazy rollout windows over PyTree trajectories, and epoch permutations in fixed batches."""

import warnings
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Int, PyTree

from .._checks import as_arrays, check_data, check_int
from .._custom_types import BatchIndex, EpochBatches
from ._dataset import AbstractDataset, leaves_with_paths as _leaves_with_paths

_STARTS = ("all", "initial")
_SHAPE = "(samples, time, channels, *spatial)"


class Windows(AbstractDataset):
    """Lazy windows of `length` consecutive time levels over a PyTree of trajectories.

    A window is a `(sample, start)` pair; nothing is copied when the windows are built. A
    batch of windows is gathered from the trajectories on demand, inside `jit`, so only the
    `batch` windows asked for are ever materialised. Windows are numbered sample-major:
    flat index `i` is sample `i // windows_per_sample`, start `i % windows_per_sample`.

    **Arguments:**

    - `trajectories`: a PyTree of floating-point arrays whose leaves all have shape
      `(samples, time, channels, ...)`, with the same `samples` and `time` (e.g. the state
      `(samples, time, channels, *spatial)` and a forcing per time step that travels with
      it), none empty and all finite: NaN or inf is refused here, naming the first bad sample
      and time level (checked once, on concrete data; traced data is not checked).
    - `length`: time levels per window, i.e. rollout steps + 1; a static int `>= 1`.
    - `starts`: `"all"` (every start `0, ..., time - length`) or `"initial"` (start `0` only,
      one window per sample: rollouts from the initial condition).
    - `per_sample`: optional PyTree of arrays with a leading `samples` axis (per-sample
      coefficients), gathered alongside with `gather_per_sample`; `None` is stored as `()`.

    !!! example

        ```python
        windows = Windows(data, length=3)  # data: (samples, time, channels, *spatial)
        batches = epoch_batches(windows.num_windows, 16, key=key)
        batch = windows.gather(batches[0])  # (16, 3, channels, *spatial)
        ```
    """

    trajectories: PyTree[Array]
    per_sample: PyTree[Array]
    length: int = eqx.field(static=True)
    starts: Literal["all", "initial"] = eqx.field(static=True)

    def __init__(
        self,
        trajectories: PyTree[Array],
        length: int,
        *,
        starts: Literal["all", "initial"] = "all",
        per_sample: PyTree[Array] | None = None,
    ):
        check_int("length", length, 1)
        if not isinstance(starts, str) or starts not in _STARTS:
            raise ValueError(f"`starts` must be one of {_STARTS}, got {starts!r}.")
        trajectories = as_arrays(trajectories, "trajectories", f"of shape {_SHAPE}")
        leaves = _leaves_with_paths(trajectories)
        if not leaves:
            raise ValueError(
                f"`trajectories` must hold at least one array of shape {_SHAPE}, got a PyTree "
                f"with no leaves: {trajectories!r}."
            )
        for path, leaf in leaves:
            if leaf.ndim < 3:
                raise ValueError(
                    f"`trajectories` leaves must have shape {_SHAPE} (at least 3 axes), got "
                    f"shape {leaf.shape} at {path}. One trajectory needs a samples axis "
                    "(`data[None]`); a scalar per time level a channel axis (`x[..., None]`)."
                )
        first_path, first = leaves[0]
        for path, leaf in leaves[1:]:
            if leaf.shape[:2] != first.shape[:2]:
                raise ValueError(
                    "`trajectories` leaves must agree on (samples, time), got shape "
                    f"{first.shape} at {first_path} and shape {leaf.shape} at {path}."
                )
        check_data(trajectories, "trajectories", ("sample", "time level"), _SHAPE)
        num_samples, num_times = first.shape[:2]
        if length > num_times:
            raise ValueError(
                f"`length` is {length}: the rollout is longer than the trajectories; it needs "
                f"windows of {length} time levels but the trajectories have {num_times}."
            )
        per_sample = () if per_sample is None else jax.tree_util.tree_map(jnp.asarray, per_sample)
        for path, leaf in _leaves_with_paths(per_sample):
            if leaf.ndim < 1 or leaf.shape[0] != num_samples:
                raise ValueError(
                    f"`per_sample` leaves must have a leading samples axis of size {num_samples} "
                    f"(as `trajectories`), got shape {leaf.shape} at {path}."
                )
        self.trajectories = trajectories
        self.per_sample = per_sample
        self.length = length
        self.starts = starts

    @property
    def num_samples(self) -> int:
        """Number of trajectories `samples`."""
        return jax.tree_util.tree_leaves(self.trajectories)[0].shape[0]

    @property
    def num_times(self) -> int:
        """Time levels per trajectory `time`."""
        return jax.tree_util.tree_leaves(self.trajectories)[0].shape[1]

    @property
    def windows_per_sample(self) -> int:
        """`time - length + 1` with `starts="all"`, `1` with `starts="initial"`."""
        return self.num_times - self.length + 1 if self.starts == "all" else 1

    @property
    def num_windows(self) -> int:
        """`samples * windows_per_sample`: the flat indices are `0, ..., num_windows - 1`."""
        return self.num_samples * self.windows_per_sample

    @property
    def num_examples(self) -> int:
        """`num_windows`: windows are the examples of this data set."""
        return self.num_windows

    def examples(self, index: BatchIndex) -> PyTree[Array]:
        """The windows at flat indices `index` `(batch,)`, unchecked; as `gather`."""
        index = jnp.asarray(index, jnp.int32)
        sample, start = jnp.divmod(index, jnp.int32(self.windows_per_sample))
        return self.take(sample, start)

    @eqx.filter_jit
    def locate(self, index: Int[Array, "..."]) -> tuple[Int[Array, "..."], Int[Array, "..."]]:
        """The `(sample, start)` pairs of flat window indices (sample-major); traceable.

        Indices outside `[0, num_windows)` raise at run time (`eqx.error_if`) instead of being
        silently clamped by the gather.

        **Arguments:**

        - `index`: integer array of flat window indices, any shape.

        **Returns:** `(sample, start)`, two integer arrays of the shape of `index`.
        """
        index = jnp.asarray(index)
        if not jnp.issubdtype(index.dtype, jnp.integer):
            raise TypeError(f"`index` must be an integer array, got dtype {index.dtype}.")
        index = eqx.error_if(
            index,
            (index < 0) | (index >= self.num_windows),
            f"`index` must lie in [0, {self.num_windows}) (num_windows).",
        )
        sample, start = jnp.divmod(index, self.windows_per_sample)
        return sample, start

    def _batch(self, index) -> tuple[BatchIndex, BatchIndex]:
        index = jnp.asarray(index)
        if index.ndim != 1:
            raise ValueError(
                f"`index` must be a 1D batch of flat window indices (batch,), got shape "
                f"{index.shape}."
            )
        return self.locate(index)

    @eqx.filter_jit
    def gather(self, index: BatchIndex) -> PyTree[Array]:
        """Build a batch of windows; under `jit` only these `batch` windows are built.

        **Arguments:**

        - `index`: flat window indices, shape `(batch,)`.

        **Returns:** the PyTree of `trajectories` with leaves of shape
        `(batch, length, ...)`: window `b` is `leaf[sample_b, start_b : start_b + length]`.
        """
        return self.take(*self._batch(index))

    def take(self, sample: BatchIndex, start: BatchIndex) -> PyTree[Array]:
        """The windows at `(sample, start)` pairs, unchecked (for indices built in range).

        **Arguments:**

        - `sample`, `start`: integer arrays of shape `(batch,)`.

        **Returns:** as `gather`, leaves of shape `(batch, length, ...)`.
        """
        length = self.length

        def window(leaf, s, t):
            # One dynamic slice over (samples, time) per window: a single gather of
            # `batch * length` time levels, no `(batch, time, ...)` intermediate.
            starts = (s, t) + (jnp.zeros_like(s),) * (leaf.ndim - 2)
            return lax.dynamic_slice(leaf, starts, (1, length, *leaf.shape[2:]))[0]

        return jax.tree_util.tree_map(
            lambda leaf: jax.vmap(window, in_axes=(None, 0, 0))(leaf, sample, start),
            self.trajectories,
        )

    @eqx.filter_jit
    def gather_per_sample(self, index: BatchIndex) -> PyTree[Array]:
        """The per-sample arrays of a batch of windows.

        **Arguments:**

        - `index`: flat window indices, shape `(batch,)`.

        **Returns:** the PyTree of `per_sample` with leaves of shape `(batch, ...)` (`()` when
        none were given).
        """
        sample, _ = self._batch(index)
        return jax.tree_util.tree_map(lambda leaf: leaf[sample], self.per_sample)

    @eqx.filter_jit
    def initial(self, index: BatchIndex) -> PyTree[Array]:
        """The first time level of each window (the initial conditions of its rollout).

        **Arguments:**

        - `index`: flat window indices, shape `(batch,)`.

        **Returns:** the PyTree of `trajectories` with leaves of shape `(batch, ...)`: entry
        `b` is `leaf[sample_b, start_b]`.
        """
        sample, start = self._batch(index)
        return jax.tree_util.tree_map(lambda leaf: leaf[sample, start], self.trajectories)


@eqx.filter_jit
def _permutation(key: Array, num_windows: int) -> Int[Array, "num_windows"]:  # noqa: F821
    return jax.random.permutation(key, num_windows).astype(jnp.int32)


def epoch_batches(num_windows: int, batch_size: int, *, key: Array) -> EpochBatches:
    """One epoch: a random permutation of the window indices cut into equal batches.

    The remainder `num_windows % batch_size` is dropped so every batch has the same shape
    (one compilation for all batches); a different window is dropped in every epoch. Usable
    inside `jit` when `num_windows` and `batch_size` are static Python ints.

    **Arguments:**

    - `num_windows`: number of windows (e.g. `Windows.num_windows`), an int `>= 1`.
    - `batch_size`: windows per batch, an int `>= 1`. If larger than `num_windows`, a
      `UserWarning` says so and the epoch is one full batch of `num_windows`.
    - `key`: a `jax.random` key for the permutation (split before passing it in).

    **Returns:** int32 array of shape `(num_batches, batch_size)` with
    `num_batches = num_windows // batch_size`, or `(1, num_windows)` in the full-batch case.
    Each index occurs at most once.
    """
    check_int("num_windows", num_windows, 1)
    check_int("batch_size", batch_size, 1)
    permutation = _permutation(key, num_windows)
    if batch_size > num_windows:
        warnings.warn(
            f"`batch_size` ({batch_size}) is larger than `num_windows` ({num_windows}); "
            f"training full-batch with {num_windows} windows per batch.",
            UserWarning,
            stacklevel=2,
        )
        return permutation[None]
    num_batches = num_windows // batch_size
    return permutation[: num_batches * batch_size].reshape(num_batches, batch_size)
