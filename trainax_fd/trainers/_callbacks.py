"""Callbacks: metrics recorded inside the compiled loop, and host-side checkpoints."""

import abc
import inspect
import io
import os
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._checks import check_int
from ..objectives import as_objective
from ._result import (
    TrainResult,
    check_target,
    make_folder,
    save_result,
    temporary_path,
    write_atomic,
)


def _check_name(name, argument: str = "name") -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"`{argument}` must be a non-empty string, got {name!r}.")
    return name


def tree_norm(tree: PyTree, squared: bool = False) -> Array:
    """The 2-norm of all inexact array leaves of `tree` together."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    total = sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)
    return total if squared else jnp.sqrt(total)


class AbstractMetric(eqx.Module):
    """A value recorded inside the compiled loop before every `every`-th step.

    `metric(step, model, batch, trainer)` sees the step index (traced int), the model before
    the step's update, the step's batch (as the data source builds it, e.g. windows
    `(batch, time, ...)`) and the trainer; it returns a PyTree of arrays of fixed shapes.
    A model trained with `eqx.nn.State` (batch norm) is passed with its state as training holds
    it before the step: `metric(step, model, batch, trainer, state=state)`; a metric that
    takes no `state` argument is refused for such a model before compiling.
    """

    every: eqx.AbstractVar[int]
    name: eqx.AbstractVar[str]

    @abc.abstractmethod
    def __call__(self, step, stepper, batch: PyTree[Array], trainer) -> PyTree[Array]: ...


def record_metric(metric: AbstractMetric, step, model, batch, trainer, state):
    """`metric`'s value; the model's state is passed only to a model that has one."""
    if state is None:
        return metric(step, model, batch, trainer)
    return metric(step, model, batch, trainer, state=state)


def check_stateful_metrics(metrics) -> None:
    """`TypeError` naming every metric that cannot take a model's `state`."""
    for m in metrics:
        parameters = inspect.signature(m.__call__).parameters.values()
        if not any(p.name == "state" or p.kind is p.VAR_KEYWORD for p in parameters):
            raise TypeError(
                f"metric `{m.name}` ({type(m).__name__}) takes no `state` argument, but the "
                "model has `eqx.nn.State`; give its `__call__` a keyword `state=None`."
            )


def _objective(objective, trainer):
    """`objective` as an objective (a configuration with the trainer's objective's reduction),
    or the training objective when `None`."""
    if objective is None:
        return trainer.objective
    return as_objective(objective, getattr(trainer.objective, "reduction", jnp.mean))


class LossMetric(AbstractMetric):
    """The loss of an objective on the step's batch (default: the training objective); a
    model with `eqx.nn.State` is evaluated in inference mode, as `Trainer.full_loss` does.

    **Arguments:** `every`, `objective` (an objective or a configuration, or `None`), `name`
    (default `"loss"`).
    """

    every: int = eqx.field(static=True)
    objective: Callable | None
    name: str = eqx.field(static=True)

    def __init__(self, every: int, objective=None, *, name: str = "loss"):
        self.every, self.objective = check_int("every", every), objective
        self.name = _check_name(name)

    def __call__(self, step, model, batch, trainer, state=None):
        if state is not None:
            model = eqx.nn.inference_mode(model)
        return _objective(self.objective, trainer)(model, batch, state)


class GradNorm(AbstractMetric):
    """The gradient norm of an objective's batch loss (default: the training objective),
    over the trainable leaves; a model with `eqx.nn.State` in training mode, as the step
    differentiates it.

    **Arguments:** `every`, `objective` (or `None`), `squared`, `name` (default
    `"grad_norm"`).
    """

    every: int = eqx.field(static=True)
    objective: Callable | None
    squared: bool = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(self, every: int, objective=None, *, squared=False, name="grad_norm"):
        self.every, self.objective = check_int("every", every), objective
        self.squared, self.name = bool(squared), _check_name(name)

    def __call__(self, step, model, batch, trainer, state=None):
        params, static = trainer.partition(model)
        objective = _objective(self.objective, trainer)
        grads = jax.grad(lambda p: objective(eqx.combine(p, static), batch, state))(params)
        return tree_norm(grads, self.squared)


class WeightNorm(AbstractMetric):
    """The 2-norm of the stepper's parameters. **Arguments:** `every`, `squared`, `name`."""

    every: int = eqx.field(static=True)
    squared: bool = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(self, every: int, *, squared: bool = False, name: str = "weight_norm"):
        self.every, self.squared = check_int("every", every), bool(squared)
        self.name = _check_name(name)

    def __call__(self, step, stepper, batch, trainer, state=None):
        return tree_norm(stepper, self.squared)


class KeepStepper(AbstractMetric):
    """Keep the stepper's parameters every `every` steps, stacked on a leading axis.

    Rebuild stepper `r` with `eqx.combine(jax.tree.map(lambda x: x[r], kept), static)` or
    `keep.stepper(result, r, like=stepper)`.
    """

    every: int = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(self, every: int, *, name: str = "stepper"):
        self.every, self.name = check_int("every", every), _check_name(name)

    def __call__(self, step, stepper, batch, trainer, state=None):
        return eqx.filter(stepper, eqx.is_inexact_array)

    def stepper(self, result: TrainResult, record: int, like):
        """The stepper of record `record` (taken before step `record * every`)."""
        kept = jax.tree_util.tree_map(lambda x: x[record], result.metrics[self.name])
        return eqx.combine(kept, eqx.filter(like, eqx.is_inexact_array, inverse=True))


class AbstractHostCallback(eqx.Module):
    """Runs on the host between compiled chunks, when `step % every == 0` and at the end.

    The trainer ends a chunk at every multiple of `every`, so the step is exact.
    """

    every: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, result: TrainResult, num_steps: int) -> None: ...


class Checkpoint(AbstractHostCallback):
    """Write the whole `TrainResult` to exactly `path` every `every` steps, at the end, and
    before a non-finite loss stops training (also at step 0); atomic and checksummed (see
    `save_result`). Resume with `Trainer.restore(path, model)`.

    The folder is created and a write is tried here, before compiling and training:
    `ValueError` naming `path` when it is a folder or cannot be written. A temporary file left
    by a write of `path` that was killed (`.{name}.tmp` beside it) is removed.
    """

    path: str = eqx.field(static=True)
    every: int = eqx.field(static=True)

    def __init__(self, path: str | os.PathLike, every: int):
        self.path, self.every = check_target(path), check_int("every", every)
        tmp = temporary_path(self.path)
        try:
            with open(tmp, "wb"):
                pass
            os.remove(tmp)
        except OSError as error:
            raise ValueError(f"`path` {self.path!r} cannot be written ({error}).") from None

    def __call__(self, result, num_steps):
        if int(result.step) > 0:  # step 0 is the initial state, made again from model and key
            self.save(result)

    def save(self, result: TrainResult) -> None:
        """Write `result` now, whatever its step (the trainer's last finite state)."""
        save_result(self.path, result)


class SaveStepper(AbstractHostCallback):
    """Serialise the stepper to `{folder}/{file_name}_{step}.eqx` before every `every`-th step
    (steps `0, every, ...`), as trainax's `SaveNetwork`: plain `eqx.tree_serialise_leaves`
    files (read them with `eqx.tree_deserialise_leaves`), written atomically. The folder is
    made here: `ValueError` naming it when it cannot be."""

    folder: str = eqx.field(static=True)
    file_name: str = eqx.field(static=True)
    every: int = eqx.field(static=True)

    def __init__(self, folder: str | os.PathLike, file_name: str, every: int):
        self.folder, self.file_name = os.fspath(folder), _check_name(file_name, "file_name")
        self.every = check_int("every", every)
        make_folder(self.folder, "folder", self.folder)  # here, not after compiling

    def __call__(self, result, num_steps):
        step = int(result.step)
        if step < num_steps:
            path = os.path.join(self.folder, f"{self.file_name}_{step}.eqx")
            buffer = io.BytesIO()
            eqx.tree_serialise_leaves(buffer, result.model)
            write_atomic(path, (buffer.getbuffer(),))
