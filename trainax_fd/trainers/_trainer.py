"""The `Trainer`: any Equinox model, an objective, a data source; compiled chunks of steps."""

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, PyTree
from tqdm import tqdm

from .._backend import Options, backend_call, check_compiler_options, wants_canonical
from .._checks import check_int, check_key
from .._custom_types import Scalar
from ..data import AbstractBatching, AbstractDataset, AbstractDataSource, Windows
from ..data._batching import DROP_REMAINDER
from ..objectives import AbstractObjective, WindowObjective
from . import _loop
from ._callbacks import (
    AbstractHostCallback,
    AbstractMetric,
    Checkpoint,
    check_stateful_metrics,
    record_metric,
)
from ._result import NonFiniteLossError, TrainResult, load_result
from ._sources import build_source


def _raw_key(key) -> Array:
    """The run's data key as raw `threefry2x32` key data `(2,)` (what a `TrainResult` keeps
    and serialises). A key of another PRNG implementation ("rbg", "unsafe_rbg", or their raw
    `(4,)` data) gives a threefry key from 64 of its random bits: deterministic per key."""
    check_key(key)
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jnp.asarray(key)
        if key.shape[-1] == 2:
            return key
        key = jax.random.wrap_key_data(key, impl="rbg")
    if str(jax.random.key_impl(key)) == "threefry2x32":
        return jax.random.key_data(key)
    return jax.random.bits(key, (2,), jnp.uint32)


def _shapes(tree):
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if eqx.is_array(x) else x, tree
    )


class Trainer(eqx.Module):
    """Train any Equinox model on an objective fed by a data source, compiled: one program
    runs `chunk_size` optimizer steps per call (a `lax.while_loop`).

    **Arguments:**

    - `data`: where batches come from. Trajectories, a PyTree of arrays
        `(samples, time, channels, *spatial)`, with a configuration as `objective` (lazy
        windows, gathered inside the compiled step, never materialised); a finite
        `trainax_fd.data` data set (`Windows`, `Pairs`) cut into shuffled batches of
        `batch_size`; or any `AbstractDataSource` (`Shuffled`, `Sampler` for fresh data at
        every step).
    - `objective`: what is minimised: a configuration (`trainax_fd.configurations`; reduced
        over the batch with `reduction`), an `AbstractObjective` (`trainax_fd.objectives`), or
        a function `loss(model, batch) -> scalar`.
    - `optimizer`: an `optax.GradientTransformation` (build it once: optax transformations
        are compared by identity when the compiled chunk is looked up).
    - `num_steps`: optimizer steps of the whole run, an int `>= 1`.
    - `batch_size`: examples per step, for trajectories and data sets (more than the data
        holds trains full-batch, with a warning).
    - `starts`, `window_length`: for trajectories: `"all"` window starts or `"initial"`
        (rollouts from the initial condition), and time levels per window (default: what the
        configuration reads).
    - `batching`: an `AbstractBatching` strategy for trajectories and data sets
        (`DropRemainder()`, the default, or `TrainaxBatching()` for trainax's batches).
    - `reduction`: reduces a configuration's per-window losses of one level, `(batch,) -> ()`.
    - `callbacks`: `AbstractMetric`s (recorded in the compiled loop) and
        `AbstractHostCallback`s (checkpoints, saved models, run between chunks).
    - `chunk_size`: steps per compiled dispatch (default `min(num_steps, 500)`); the progress
        bar and host callbacks act between chunks.
    - `mesh`: a `jax.sharding.Mesh` for data-parallel training: batches sharded over its first
        axis, data and parameters replicated, gradients summed by XLA. `None`: one device.
    - `trainable`: which leaves of the model train: an Equinox filter spec (a PyTree of bools
        matching the model, or a function `leaf -> bool`); default: every inexact array. A
        correction network around a fixed physics stepper trains with the stepper masked out.
    - `canonical_convolutions`: run the model's convolutions in XLA:CPU's fast layout
        (`trainax_fd.canonical_convolutions`); `None` (default): on CPU, when the loss has any.
    - `compiler_options`: XLA compile options for the training chunks (opt-in; options the
        installed XLA refuses fall back to the defaults with a warning).

    Call it as `trainer(model, key=key)` to train, or `trainer(result)` to continue.
    """

    source: AbstractDataSource
    objective: AbstractObjective
    optimizer: optax.GradientTransformation
    metrics: tuple[AbstractMetric, ...]
    host_callbacks: tuple[AbstractHostCallback, ...]
    trainable: Any = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    chunk_size: int = eqx.field(static=True)
    mesh: Mesh | None = eqx.field(static=True)
    canonical_convolutions: bool | None = eqx.field(static=True)
    compiler_options: Options = eqx.field(static=True)

    def __init__(
        self,
        data: PyTree[Array] | AbstractDataSource,
        objective: Any,
        optimizer: optax.GradientTransformation,
        *,
        num_steps: int,
        batch_size: int | None = None,
        starts: Literal["all", "initial"] = "all",
        window_length: int | None = None,
        batching: AbstractBatching = DROP_REMAINDER,
        reduction: Callable = jnp.mean,
        callbacks: Sequence[AbstractMetric | AbstractHostCallback] = (),
        chunk_size: int | None = None,
        mesh: Mesh | None = None,
        trainable: Any = None,
        canonical_convolutions: bool | None = None,
        compiler_options: Mapping[str, Any] | None = None,
    ):
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise TypeError(
                "`optimizer` must be an `optax.GradientTransformation`, got "
                f"{type(optimizer).__name__}."
            )
        check_int("num_steps", num_steps)
        if mesh is not None and not isinstance(mesh, Mesh):
            raise TypeError(f"`mesh` must be a `jax.sharding.Mesh`, got {type(mesh).__name__}.")
        if canonical_convolutions not in (None, True, False):
            raise ValueError(
                f"`canonical_convolutions` must be True, False or None, got "
                f"{canonical_convolutions!r}."
            )
        if trainable is not None and not callable(trainable):
            leaves = jax.tree_util.tree_leaves(trainable)
            if not all(isinstance(x, bool) or callable(x) for x in leaves):
                raise TypeError(
                    "`trainable` must be an Equinox filter spec: a PyTree of bools (or "
                    "functions `leaf -> bool`) matching the model, or one function; got "
                    f"{trainable!r}."
                )
        self.source, self.objective = build_source(
            data, objective, batch_size=batch_size, starts=starts, window_length=window_length,
            batching=batching, reduction=reduction, mesh=mesh,
        )  # fmt: skip
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
        self.optimizer = optimizer
        self.metrics = tuple(c for c in callbacks if isinstance(c, AbstractMetric))
        self.host_callbacks = tuple(c for c in callbacks if isinstance(c, AbstractHostCallback))
        self.trainable = trainable
        self.num_steps = num_steps
        self.chunk_size = check_int(
            "chunk_size", min(num_steps, 500) if chunk_size is None else chunk_size
        )
        self.mesh = mesh
        self.canonical_convolutions = canonical_convolutions
        self.compiler_options = check_compiler_options(compiler_options)

    # -- what the trainer reads --------------------------------------------------------
    @property
    def windows(self) -> Windows:
        """The lazy windows of a training on trajectories."""
        dataset = getattr(self.source, "dataset", None)
        if not isinstance(dataset, Windows):
            raise AttributeError(f"This trainer's data source has no windows: {self.source}.")
        return dataset

    @property
    def configuration(self):
        """The configuration of a training on windows."""
        if not isinstance(self.objective, WindowObjective):
            raise AttributeError(f"This trainer's objective is no configuration: {self.objective}.")
        return self.objective.configuration

    @property
    def batch_size(self) -> int | None:
        return getattr(self.source, "batch_size", None)

    @property
    def num_examples(self) -> int:
        """Examples of the data set (1 batch for a source without one, such as a `Sampler`)."""
        return getattr(self.source, "num_examples", 1)

    @property
    def batches_per_epoch(self) -> int:
        return self.source.batches_per_epoch

    @property
    def full_batch(self) -> bool:
        return getattr(self.source, "full_batch", False)

    def batch_indices(self, key, step: int) -> Array:
        """The example indices of step `step` (for inspection; the loop draws its own)."""
        return self.source.batch_indices(_raw_key(key), step)

    def partition(self, model) -> tuple[PyTree, PyTree]:
        """`(params, static)`: the trainable inexact arrays of `model`, and the rest."""
        if self.trainable is None:
            return eqx.partition(model, eqx.is_inexact_array)
        chosen, frozen = eqx.partition(model, self.trainable)
        params, rest = eqx.partition(chosen, eqx.is_inexact_array)
        return params, eqx.combine(rest, frozen)

    # -- losses ------------------------------------------------------------------------
    def batch_loss(self, model, batch: PyTree[Array], objective=None, state=None) -> Scalar:
        """The loss of `batch` under `objective` (default: the training objective)."""
        objective = self.objective if objective is None else objective
        return objective(model, batch, state)

    def full_loss(self, model, *, state=None, chunk_size: int | None = None, key=None) -> Scalar:
        """The loss over the whole data set, evaluated `chunk_size` examples at a time, as if
        all were one batch; for a `Sampler`, the loss of the batch drawn with `key` (default
        `jax.random.key(0)`). A stateful model is evaluated in inference mode. Compiled; works
        under `eqx.filter_vmap` over a batch of models.

        **Returns:** a scalar.
        """
        return _full_loss(self, model, state, chunk_size, key)

    # -- results -----------------------------------------------------------------------
    def init(self, model, *, key, state=None) -> TrainResult:
        """A `TrainResult` at step 0: optimizer initialised, histories empty (`nan`, zeros)."""
        raw = _raw_key(key)
        model, state = _loop.strong_types((model, state))
        params, static = self.partition(model)
        batch = self.source.example_batch()
        loss = jax.eval_shape(
            lambda p, s, b: _loop.loss_and_state(self.objective, eqx.combine(p, static), b, s)[0],
            _shapes(params), _shapes(state), batch,
        )  # fmt: skip
        if state is not None:
            check_stateful_metrics(self.metrics)
        metrics = {}
        for m in self.metrics:
            shapes = jax.eval_shape(
                lambda p, s, b, m=m: record_metric(
                    m, jnp.asarray(0), eqx.combine(p, static), b, self, s
                ),
                _shapes(params), _shapes(state), batch,
            )  # fmt: skip
            records = math.ceil(self.num_steps / m.every)
            metrics[m.name] = jax.tree_util.tree_map(
                lambda s, r=records: jax.device_put(np.zeros((r, *s.shape), s.dtype)), shapes
            )
        with jax.numpy_dtype_promotion("standard"):
            opt_state = _init_optimizer(self.optimizer, params)
        return TrainResult(
            model=model,
            model_state=state,
            opt_state=opt_state,
            step=jax.device_put(np.int32(0)),
            key=raw,
            loss_history=jax.device_put(np.full(self.num_steps, np.nan, loss.dtype)),
            metrics=metrics,
        )

    def restore(self, path: str | os.PathLike, model, *, state=None) -> TrainResult:
        """Read the checkpoint `Checkpoint(path, ...)` wrote: exactly `path`, its checksum
        and architecture verified (see `load_result`). `model` (and `state`) are templates of
        the same architecture. The histories and metric records are fitted to this trainer's
        `num_steps` and metrics, as continuing a `TrainResult` in memory does (a run saved by
        a trainer of fewer `num_steps` continues here); pass the result to the trainer.

        **Raises:** `FileNotFoundError`; `ValueError` naming `path` for a file that is not a
        sound checkpoint of this architecture, or that has run more than `num_steps` steps.
        """
        result = load_result(path, self.init(model, key=jax.random.key(0), state=state))
        if int(result.step) > self.num_steps:
            raise ValueError(
                f"`path` {os.fspath(path)!r} holds a run of {int(result.step)} steps, more than "
                f"this trainer's `num_steps` ({self.num_steps}); restore it with a trainer of "
                f"num_steps >= {int(result.step)}."
            )
        return self._fit(result)

    def _fit(self, result: TrainResult) -> TrainResult:
        """Histories resized to this trainer's `num_steps` and metrics (a continuation)."""

        def resize(x, records):
            if x.shape[0] >= records:
                return x[:records]
            pad = np.full((records - x.shape[0], *x.shape[1:]), np.nan)
            return jnp.concatenate(
                [x, jnp.asarray(pad if jnp.issubdtype(x.dtype, jnp.inexact) else pad * 0, x.dtype)]
            )

        missing = any(m.name not in result.metrics for m in self.metrics)
        fresh = (
            self.init(result.model, key=jax.random.key(0), state=result.model_state).metrics
            if missing
            else {}
        )
        metrics = {
            m.name: jax.tree_util.tree_map(
                lambda x, m=m: resize(x, math.ceil(self.num_steps / m.every)),
                result.metrics[m.name],
            )
            if m.name in result.metrics
            else fresh[m.name]
            for m in self.metrics
        }
        history = resize(result.loss_history, self.num_steps)
        return eqx.tree_at(lambda r: (r.loss_history, r.metrics), result, (history, metrics))

    def _optimizer_state(self, result: TrainResult, new: bool) -> TrainResult:
        """`result` with a fresh optimizer state when `new`; else checked against this
        trainer's optimizer."""
        params, _ = self.partition(result.model)
        with jax.numpy_dtype_promotion("standard"):
            if new:
                fresh = _init_optimizer(self.optimizer, params)
            else:
                fresh = eqx.filter_eval_shape(_init_optimizer, self.optimizer, params)
        if new:
            return eqx.tree_at(lambda r: r.opt_state, result, fresh)
        same = jax.tree_util.tree_structure(fresh) == jax.tree_util.tree_structure(
            result.opt_state
        ) and all(
            a.shape == b.shape
            for a, b in zip(
                jax.tree_util.tree_leaves(fresh), jax.tree_util.tree_leaves(result.opt_state)
            )
        )
        if not same:
            raise ValueError(
                "`model`'s optimizer state does not fit this trainer's `optimizer` (another "
                "optimizer, or other trainable leaves); continue with `new_optimizer=True` to "
                "start this optimizer afresh."
            )
        return result

    # -- the host loop -----------------------------------------------------------------
    def _next_stop(self, step: int) -> int:
        stop = min(self.num_steps, step + self.chunk_size)
        for c in self.host_callbacks:
            stop = min(stop, (step // c.every + 1) * c.every)
        return stop

    def _canonical(self, result: TrainResult) -> bool:
        params, static = self.partition(result.model)
        return wants_canonical(
            self.canonical_convolutions,
            lambda p, s, b: _loop.loss_and_state(self.objective, eqx.combine(p, static), b, s)[0],
            params, result.model_state, self.source.example_batch(),
        )  # fmt: skip

    def __call__(
        self,
        model,
        *,
        key=None,
        state=None,
        new_optimizer: bool = False,
        progress: bool = True,
    ) -> TrainResult:
        """Train `model` for `num_steps` steps, or continue a `TrainResult` up to `num_steps`.

        Continuing is how a curriculum runs: `Trainer(data, Supervised(5), optimizer,
        num_steps=2000)(result_of_1000_one_step_updates)` takes 1000 more steps with rollout
        5, the optimizer state and the data key carried over (the same optimizer). A stage
        with another optimizer (Adam, then `optax.lbfgs`) continues with `new_optimizer=True`:
        the optimizer state starts afresh, the step count and the histories carry on.

        **Arguments:**

        - `model`: an Equinox model, or a `TrainResult` to continue (then `key` and `state`
            must be `None`: the result holds them).
        - `key`: the `jax.random` key of the run's data (shuffling, sampling); keyword-only.
        - `state`: the model's `eqx.nn.State` (batch norm), or `None`.
        - `new_optimizer`: when continuing, initialise this trainer's optimizer instead of
            carrying the result's optimizer state over.
        - `progress`: show a `tqdm` progress bar updated per chunk with the loss.

        **Returns:** a `TrainResult`.

        **Raises:** `NonFiniteLossError` naming the step when a loss or gradient is not finite;
        its `.result` holds the last finite state (also written by any `Checkpoint`).
        """
        if isinstance(model, TrainResult):
            if key is not None or state is not None:
                raise ValueError(
                    "`key` and `state` must be None when continuing a `TrainResult` (it holds "
                    f"them), got key={key!r}, state={state!r}."
                )
            done = int(model.step)
            if done >= self.num_steps:
                raise ValueError(
                    f"`num_steps` ({self.num_steps}) must exceed the steps the result has "
                    f"already taken ({done}) to continue it; build the trainer with "
                    f"num_steps={done} + the steps to add."
                )
            result = self._fit(_loop.strong_types(model))
            result = self._optimizer_state(result, new_optimizer)
        else:
            if key is None:
                raise ValueError("`key` must be given (keyword-only) to start a training.")
            result = self.init(model, key=key, state=state)
        if self.mesh is not None:  # parameters, optimizer state, histories: replicated
            replicated = NamedSharding(self.mesh, PartitionSpec())
            result = jax.tree_util.tree_map(
                lambda x: jax.device_put(x, replicated) if eqx.is_array(x) else x, result
            )
        canonical = self._canonical(result)
        step = int(result.step)
        with tqdm(total=self.num_steps, initial=step, disable=not progress, desc="training") as bar:
            for c in self.host_callbacks:
                if step % c.every == 0:
                    c(result, self.num_steps)
            while step < self.num_steps:
                stop = jax.device_put(np.int32(self._next_stop(step)))
                result, failed, last = backend_call(
                    _loop.chunk, self, result, stop, canonical=canonical,
                    options=self.compiler_options,
                )  # fmt: skip
                new_step, failed = int(result.step), int(failed)
                bar.update(new_step - step)
                step = new_step
                if failed >= 0:
                    loss = float(np.asarray(result.loss_history)[failed])
                    for c in self.host_callbacks:
                        if isinstance(c, Checkpoint):
                            c.save(result)  # whatever the step, 0 included
                    raise NonFiniteLossError(failed, loss, result)
                bar.set_postfix(loss=f"{float(last):.3e}")
                for c in self.host_callbacks:
                    if step % c.every == 0 or step == self.num_steps:
                        c(result, self.num_steps)
        return result


@eqx.filter_jit
def _init_optimizer(optimizer, params):
    return optimizer.init(params)


def _full_loss(trainer: Trainer, model, state, chunk_size, key):
    data = getattr(trainer.source, "dataset", trainer.source)
    return full_loss_of(
        trainer.objective, data, model, state, chunk_size, key, trainer.canonical_convolutions
    )


def full_loss_of(objective, data, model, state, chunk_size, key, canonical_setting):
    """The full loss of `objective` over a data set, or over the batch of step 0 that a
    source without a data set draws from `key` (default `jax.random.key(0)`)."""
    if not isinstance(data, AbstractDataset):
        raw = _raw_key(jax.random.key(0) if key is None else key)
        return _source_loss(objective, data, model, state, raw)
    if chunk_size is None:
        chunk_size = _loop.default_chunk_size(data)
    check_int("chunk_size", chunk_size)
    example = jax.eval_shape(data.examples, jax.ShapeDtypeStruct((1,), jnp.int32))
    canonical = wants_canonical(
        canonical_setting, lambda m, s, b: objective(m, b, s), model, state, example
    )
    return backend_call(
        _loop.full_loss, objective, data, model, state, chunk_size, canonical=canonical
    )


@eqx.filter_jit
def _source_loss(objective, source, model, state, key):
    if state is not None:
        model = eqx.nn.inference_mode(model)
    step = jnp.int32(0)
    out, _ = source.apply(
        lambda b: objective(model, b, state), key, source.init_state(key, step), step
    )
    return out
