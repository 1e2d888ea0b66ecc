"""The compiled training loop: chunks of optimizer steps per dispatch, over lazy windows."""

import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, PyTree
from tqdm import tqdm

from .._checks import check_int, check_key
from .._cpu import compiled, strong_types
from .._custom_types import Scalar
from .._layout import call_canonical, stepper_has_convolutions
from ..configurations import AbstractConfiguration
from ..data import Windows
from ._callbacks import AbstractHostCallback, AbstractMetric, Checkpoint
from ._optimizer_init import optimizer_init
from ._result import NonFiniteLossError, TrainResult, load_result

_BATCHING = ("drop_remainder", "trainax")
#: How often `Trainer._chunk` was traced (tests check that it is traced once).
TRACES = {"chunk": 0}


def _raw_key(key) -> Array:
    check_key(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return jnp.asarray(key)


def _where_tree(ok, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)


def _all_finite(tree) -> Array:
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


class Trainer(eqx.Module):
    """Train a stepper on trajectories: one compiled program runs `chunk_size` steps per call.

    Windows of `window_length` time levels are gathered inside the compiled step from
    `(sample, start)` indices, never materialised; every batch has the same shape.

    **Arguments:**

    - `trajectories`: PyTree of arrays `(samples, time, channels, *spatial)`.
    - `configuration`: how a window becomes a loss (`trainax_fd.configurations`).
    - `optimizer`: an `optax.GradientTransformation`.
    - `num_steps`: optimizer steps of a full run, an int `>= 1`.
    - `batch_size`: windows per step; larger than the number of windows trains full-batch
        (with a warning).
    - `starts`: `"all"` window starts or `"initial"` (rollouts from the initial condition).
    - `window_length`: time levels per window (defaults to the configuration's need; a longer
        window only reduces the number of starts).
    - `callbacks`: `AbstractMetric`s (recorded in the compiled loop) and
        `AbstractHostCallback`s (checkpoints, saved steppers).
    - `chunk_size`: steps per compiled dispatch (default `min(num_steps, 500)`); the progress
        bar and host callbacks act between chunks.
    - `batching`: `"drop_remainder"` (each epoch a fresh permutation from
        `fold_in(key, epoch)`, the last partial batch dropped) or `"trainax"` (trainax's
        permutations and a short last batch, for identical results).
    - `reduction`: reduces a batch of per-window level losses, `(batch,) -> ()` (default mean).
    - `mesh`: a `jax.sharding.Mesh` for data-parallel training: each batch is sharded over
        the mesh's first axis (`batch_size` divisible by its size), the data and the
        parameters are replicated, and XLA sums the gradients across devices. `None`: one
        device. The same code runs on one CPU, one GPU or many devices (and hosts, after
        `jax.distributed.initialize()`).
    """

    windows: Windows
    configuration: AbstractConfiguration
    optimizer: optax.GradientTransformation
    metrics: tuple[AbstractMetric, ...]
    host_callbacks: tuple[AbstractHostCallback, ...]
    num_steps: int = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    chunk_size: int = eqx.field(static=True)
    batching: str = eqx.field(static=True)
    reduction: Callable = eqx.field(static=True)
    mesh: Mesh | None = eqx.field(static=True)

    def __init__(
        self,
        trajectories: PyTree[Array],
        configuration: AbstractConfiguration,
        optimizer: optax.GradientTransformation,
        *,
        num_steps: int,
        batch_size: int,
        starts: Literal["all", "initial"] = "all",
        window_length: int | None = None,
        callbacks: Sequence[AbstractMetric | AbstractHostCallback] = (),
        chunk_size: int | None = None,
        batching: Literal["drop_remainder", "trainax"] = "drop_remainder",
        reduction: Callable = jnp.mean,
        mesh: Mesh | None = None,
    ):
        if not isinstance(configuration, AbstractConfiguration):
            raise TypeError(
                "`configuration` must be an `AbstractConfiguration` (see "
                f"`trainax_fd.configurations`), got {type(configuration).__name__}."
            )
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise TypeError(
                "`optimizer` must be an `optax.GradientTransformation`, got "
                f"{type(optimizer).__name__}."
            )
        if batching not in _BATCHING:
            raise ValueError(f"`batching` must be one of {_BATCHING}, got {batching!r}.")
        check_int("num_steps", num_steps)
        check_int("batch_size", batch_size)
        length = configuration.window_length if window_length is None else window_length
        check_int("window_length", length)
        if length < configuration.window_length:
            raise ValueError(
                f"`window_length` must be at least {configuration.window_length} for "
                f"{type(configuration).__name__}, got {length}."
            )
        if mesh is not None:
            if not isinstance(mesh, Mesh):
                raise TypeError(f"`mesh` must be a `jax.sharding.Mesh`, got {type(mesh).__name__}.")
            trajectories = jax.device_put(trajectories, NamedSharding(mesh, PartitionSpec()))
        windows = Windows(trajectories, length, starts=starts)
        if configuration.ic_only:  # keep only the states that start a window
            last = windows.windows_per_sample
            windows = Windows(
                jax.tree_util.tree_map(lambda x: x[:, :last], windows.trajectories), 1
            )
        if batch_size > windows.num_windows:
            warnings.warn(
                f"`batch_size` ({batch_size}) is larger than the number of windows "
                f"({windows.num_windows}); training full-batch with {windows.num_windows} "
                "windows per step.",
                UserWarning,
                stacklevel=2,
            )
            batch_size = windows.num_windows
        callbacks = tuple(callbacks)
        for c in callbacks:
            if not isinstance(c, AbstractMetric | AbstractHostCallback):
                raise TypeError(
                    "`callbacks` must hold `AbstractMetric` or `AbstractHostCallback` "
                    f"instances, got {type(c).__name__}."
                )
        names = [c.name for c in callbacks if isinstance(c, AbstractMetric)]
        if len(set(names)) != len(names):
            raise ValueError(f"`callbacks` metric names must be unique, got {names}.")
        self.windows, self.configuration, self.optimizer = windows, configuration, optimizer
        self.metrics = tuple(c for c in callbacks if isinstance(c, AbstractMetric))
        self.host_callbacks = tuple(c for c in callbacks if isinstance(c, AbstractHostCallback))
        self.num_steps, self.batch_size = num_steps, batch_size
        chunk = min(num_steps, 500) if chunk_size is None else chunk_size
        self.chunk_size = check_int("chunk_size", chunk)
        self.batching, self.reduction, self.mesh = batching, reduction, mesh
        if mesh is not None:
            size = mesh.shape[mesh.axis_names[0]]
            sizes = [("batch_size", batch_size)]
            if batching == "trainax":
                last = windows.num_windows - (self.batches_per_epoch - 1) * batch_size
                sizes.append(("the last batch of an epoch", last))
            for name, n in sizes:
                if n % size:
                    raise ValueError(
                        f"{name} ({n}) must be divisible by the size of `mesh` axis "
                        f"{mesh.axis_names[0]!r} ({size}) for data-parallel training."
                    )

    # -- batches -----------------------------------------------------------------------
    @property
    def batches_per_epoch(self) -> int:
        n = self.windows.num_windows
        if self.batching == "trainax":
            return math.ceil(n / self.batch_size)
        return n // self.batch_size

    def _epoch_key(self, key, epoch):
        if self.batching == "trainax":  # trainax: key_(e+1) = split(key_e)[0]
            return lax.fori_loop(0, epoch, lambda _, k: jax.random.split(k)[0], key)
        return jax.random.fold_in(key, epoch)

    def _next_epoch_key(self, key, epoch_key, epoch):
        if self.batching == "trainax":
            return jax.random.split(epoch_key)[0]
        return jax.random.fold_in(key, epoch)

    def batch_indices(self, key, step: int) -> Array:
        """The flat window indices of step `step` (for inspection; the loop builds them itself)."""
        key = _raw_key(key)
        epoch, b = divmod(step, self.batches_per_epoch)
        perm = jax.random.permutation(self._epoch_key(key, epoch), self.windows.num_windows)
        stop = min((b + 1) * self.batch_size, self.windows.num_windows)
        return perm[b * self.batch_size : stop]

    @property
    def full_batch(self) -> bool:
        """Whether every step sees all windows (then no permutation is drawn: order does not
        change a batch loss)."""
        return self.batch_size == self.windows.num_windows

    def _gather(self, index):
        index = jnp.asarray(index, jnp.int32)
        sample, start = jnp.divmod(index, jnp.int32(self.windows.windows_per_sample))
        return self.windows.take(sample, start)

    # -- losses ------------------------------------------------------------------------
    def batch_loss(self, stepper, batch: PyTree[Array], configuration=None) -> Scalar:
        """`sum_l weights[l] * reduction(level_losses[:, l])` over a batch `(batch, time, ...)`."""
        configuration = self.configuration if configuration is None else configuration
        losses = jax.vmap(configuration.level_losses, in_axes=(None, 0))(stepper, batch)
        reduced = jax.vmap(self.reduction, in_axes=1)(losses)
        return jnp.sum(configuration.weights.astype(reduced.dtype) * reduced)

    @eqx.filter_jit
    def full_loss(self, stepper, *, chunk_size: int | None = None) -> Scalar:
        """The loss over all windows, evaluated `chunk_size` windows at a time.

        Works under `eqx.filter_vmap` over a batch of steppers.

        **Arguments:**

        - `stepper`: the stepper to evaluate.
        - `chunk_size`: windows per chunk (static); default: about 128 MB of windows.

        **Returns:** a scalar, the batch loss as if all windows were one batch.
        """
        n = self.windows.num_windows
        if chunk_size is None:
            nbytes = sum(
                x[0, : self.windows.length].nbytes
                for x in jax.tree_util.tree_leaves(self.windows.trajectories)
            )
            chunk_size = max(1, min(n, 2**27 // max(nbytes, 1)))
        check_int("chunk_size", chunk_size)
        chunks = math.ceil(n / chunk_size)
        index = jnp.minimum(jnp.arange(chunks * chunk_size), n - 1).reshape(chunks, chunk_size)

        def all_losses(stepper, index):
            def chunk(idx):
                batch = self._gather(idx)
                return jax.vmap(self.configuration.level_losses, in_axes=(None, 0))(stepper, batch)

            return lax.map(chunk, index)

        if jax.default_backend() == "cpu" and stepper_has_convolutions(
            stepper, self.windows.trajectories
        ):  # convolutions inside `lax.map`'s loop: see `_layout`
            losses = call_canonical(all_losses, stepper, index)
        else:
            losses = all_losses(stepper, index)
        losses = losses.reshape(chunks * chunk_size, -1)[:n]
        reduced = jax.vmap(self.reduction, in_axes=1)(losses)
        return jnp.sum(self.configuration.weights.astype(reduced.dtype) * reduced)

    # -- results -----------------------------------------------------------------------
    def _example_batch(self):
        return self.windows.gather(jnp.zeros(self.batch_size, jnp.int32))

    def init(self, stepper, *, key) -> TrainResult:
        """A `TrainResult` at step 0: optimizer initialised, histories empty (`nan`, zeros)."""
        stepper = strong_types(stepper)
        params = eqx.filter(stepper, eqx.is_inexact_array)
        metrics = {}
        if self.metrics:
            batch = eqx.filter_eval_shape(self._example_batch)
        for m in self.metrics:
            shapes = eqx.filter_eval_shape(m, jnp.asarray(0), stepper, batch, self)
            records = math.ceil(self.num_steps / m.every)
            metrics[m.name] = jax.tree_util.tree_map(
                lambda s, r=records: jax.device_put(np.zeros((r, *s.shape), s.dtype)), shapes
            )
        # NumPy buffers moved to the device: no small programs to compile before training.
        dtypes = [x.dtype for x in jax.tree_util.tree_leaves((params, self.windows.trajectories))]
        dtype = jnp.result_type(*[d for d in dtypes if jnp.issubdtype(d, jnp.inexact)] or [float])
        return TrainResult(
            stepper=stepper,
            opt_state=optimizer_init(self.optimizer, params),
            step=jax.device_put(np.int32(0)),
            key=_raw_key(key),
            loss_history=jax.device_put(np.full(self.num_steps, np.nan, dtype)),
            metrics=metrics,
        )

    def restore(self, path: str | os.PathLike, stepper) -> TrainResult:
        """Read a checkpoint written by `Checkpoint`; `stepper` is a template of the same
        architecture. Pass the result to the trainer to continue."""
        return load_result(path, self.init(stepper, key=jax.random.key(0)))

    def _fit(self, result: TrainResult) -> TrainResult:
        """Histories resized to this trainer's `num_steps` (continuing a shorter run)."""

        def resize(x, records):
            if x.shape[0] >= records:
                return x[:records]
            pad = jnp.full((records - x.shape[0], *x.shape[1:]), jnp.nan, x.dtype)
            return jnp.concatenate([x, pad if jnp.issubdtype(x.dtype, jnp.inexact) else pad * 0])

        metrics = {
            m.name: jax.tree_util.tree_map(
                lambda x, m=m: resize(x, math.ceil(self.num_steps / m.every)),
                result.metrics[m.name],
            )
            for m in self.metrics
        }
        history = resize(result.loss_history, self.num_steps)
        return eqx.tree_at(lambda r: (r.loss_history, r.metrics), result, (history, metrics))

    # -- the compiled chunk ------------------------------------------------------------
    def _step(self, static, start, base_key, carry):
        params, opt_state, epoch_key, perm, history, metrics, failed, s = carry
        epoch, b = jnp.divmod(s, self.batches_per_epoch)
        if not self.full_batch:
            new_epoch = (b == 0) & (s != start)
            next_key = self._next_epoch_key(base_key, epoch_key, epoch)
            epoch_key = jnp.where(new_epoch, next_key, epoch_key)
            perm = lax.cond(
                new_epoch,
                lambda: jax.random.permutation(epoch_key, perm.shape[0]).astype(perm.dtype),
                lambda: perm,
            )

        def compute(size):
            def run():
                if self.full_batch:
                    batch = self._gather(np.arange(size))
                else:
                    batch = self._gather(lax.dynamic_slice_in_dim(perm, b * self.batch_size, size))
                if self.mesh is not None:  # data parallel: windows over the first mesh axis
                    spec = PartitionSpec(self.mesh.axis_names[0])
                    batch = lax.with_sharding_constraint(batch, NamedSharding(self.mesh, spec))
                stepper = eqx.combine(params, static)
                loss, grads = jax.value_and_grad(
                    lambda p: self.batch_loss(eqx.combine(p, static), batch)
                )(params)
                new_metrics = {}
                for m in self.metrics:
                    record = s // m.every

                    def write(buffers, m=m, record=record):
                        value = m(s, stepper, batch, self)
                        return jax.tree_util.tree_map(
                            lambda buf, v: buf.at[record].set(v.astype(buf.dtype)), buffers, value
                        )

                    new_metrics[m.name] = lax.cond(
                        s % m.every == 0, write, lambda x: x, metrics[m.name]
                    )
                return loss, grads, new_metrics

            return run

        n, last = self.windows.num_windows, self.batch_size
        if self.batching == "trainax":
            last = n - (self.batches_per_epoch - 1) * self.batch_size
        if last == self.batch_size:
            loss, grads, metrics = compute(self.batch_size)()
        else:  # trainax's short last batch: a second branch, no recompilation
            loss, grads, metrics = lax.cond(
                b == self.batches_per_epoch - 1, compute(last), compute(self.batch_size)
            )
        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and counts
            updates, new_opt_state = self.optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        ok = jnp.isfinite(loss) & _all_finite(grads)
        params = _where_tree(ok, new_params, params)
        opt_state = _where_tree(ok, new_opt_state, opt_state)
        history = history.at[s].set(loss.astype(history.dtype))
        failed = jnp.where(ok, failed, s)
        return params, opt_state, epoch_key, perm, history, metrics, failed, jnp.where(ok, s + 1, s)

    def _chunk(self, result: TrainResult, stop: Array) -> tuple[TrainResult, Array, Array]:
        """Steps up to `stop` (at most `chunk_size`); **returns** `(result, failed, loss)`:
        the step of a non-finite loss or `-1`, and the last finite loss."""
        return _chunk(self, result, stop)

    def _chunk_body(self, result: TrainResult, stop: Array) -> tuple[TrainResult, Array, Array]:
        TRACES["chunk"] += 1
        params, static = eqx.partition(result.stepper, eqx.is_inexact_array)
        start = result.step
        if self.full_batch:
            epoch_key, perm = result.key, jnp.zeros(0, jnp.int32)
        else:
            epoch_key = self._epoch_key(result.key, start // self.batches_per_epoch)
            perm = jax.random.permutation(epoch_key, self.windows.num_windows).astype(jnp.int32)
        carry = (
            params, result.opt_state, epoch_key, perm, result.loss_history, result.metrics,
            jnp.asarray(-1, jnp.int32), start,
        )  # fmt: skip

        carry = lax.while_loop(
            lambda c: (c[-1] < stop) & (c[-2] < 0),  # steps left, all finite so far
            lambda c: self._step(static, start, result.key, c),
            carry,
        )
        params, opt_state, _, _, history, metrics, failed, step = carry
        result = TrainResult(
            eqx.combine(params, static), opt_state, step, result.key, history, metrics
        )
        return result, failed, history[jnp.maximum(step - 1, 0)]

    # -- the host loop -----------------------------------------------------------------
    def _next_stop(self, step: int) -> int:
        stop = min(self.num_steps, step + self.chunk_size)
        for c in self.host_callbacks:
            stop = min(stop, (step // c.every + 1) * c.every)
        return stop

    def __call__(self, stepper, *, key=None, progress: bool = True) -> TrainResult:
        """Train `stepper` for `num_steps` steps, or continue a `TrainResult` to `num_steps`.

        **Arguments:**

        - `stepper`: an Equinox stepper (one sample to the next), or a `TrainResult` to
            continue (then `key` must be `None`: the result holds it).
        - `key`: the `jax.random` key that shuffles the windows (keyword-only).
        - `progress`: show a `tqdm` progress bar updated per chunk with the loss.

        **Returns:** a `TrainResult`.

        **Raises:** `NonFiniteLossError` naming the step when a loss or gradient is not finite;
        its `.result` holds the last finite state (also written by any `Checkpoint`).
        """
        if isinstance(stepper, TrainResult):
            if key is not None:
                raise ValueError(
                    "`key` must be None when continuing a `TrainResult` (it holds its key), "
                    f"got {key!r}."
                )
            result = self._fit(strong_types(stepper))
        else:
            if key is None:
                raise ValueError("`key` must be given (keyword-only) to start a training.")
            result = self.init(stepper, key=key)
        if self.mesh is not None:  # parameters, optimizer state, histories: replicated
            replicated = NamedSharding(self.mesh, PartitionSpec())
            result = jax.tree_util.tree_map(
                lambda x: jax.device_put(x, replicated) if eqx.is_array(x) else x, result
            )
        step = int(result.step)
        with tqdm(total=self.num_steps, initial=step, disable=not progress, desc="training") as bar:
            for c in self.host_callbacks:
                if step % c.every == 0:
                    c(result, self.num_steps)
            while step < self.num_steps:
                stop = jax.device_put(np.int32(self._next_stop(step)))
                result, failed, last = self._chunk(result, stop)
                new_step, failed = int(result.step), int(failed)
                bar.update(new_step - step)
                step = new_step
                if failed >= 0:
                    loss = float(np.asarray(result.loss_history)[failed])
                    for c in self.host_callbacks:
                        if isinstance(c, Checkpoint):
                            c(result, self.num_steps)
                    raise NonFiniteLossError(failed, loss, result)
                bar.set_postfix(loss=f"{float(last):.3e}")
                for c in self.host_callbacks:
                    if step % c.every == 0 or step == self.num_steps:
                        c(result, self.num_steps)
        return result


def _chunk_canonical(trainer: Trainer, result: TrainResult, stop: Array):
    """`Trainer._chunk_body`, its convolutions in XLA:CPU's fast layout when the stepper has
    any (see `_layout`; the probe traces the stepper alone, the chunk is traced once)."""
    if stepper_has_convolutions(result.stepper, trainer.windows.trajectories):
        return call_canonical(Trainer._chunk_body, trainer, result, stop)
    return trainer._chunk_body(result, stop)


_chunk = compiled(_chunk_canonical, other=Trainer._chunk_body)
