"""trainax's callbacks (`tx.callback.*`): recorded in the compiled loop (or on the host for
`SaveNetwork`), returned as trainax's per-step list of dicts."""

import abc
import os

import equinox as eqx
import jax
import numpy as np

from ... import trainers
from ..._checks import check_int


class BaseCallback(eqx.Module):
    """A trainax callback: `callback(update_i, stepper, data) -> value` every `every` steps.

    Subclasses run inside the compiled training loop, so `callback` must be traceable and
    return arrays (or PyTrees of them) of fixed shapes; `update_i` is a traced int.
    """

    every: int = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(self, every: int, name: str):
        self.every, self.name = check_int("every", every), name

    @abc.abstractmethod
    def callback(self, update_i, stepper, data):
        """The value at step `update_i` for the stepper before the update and the batch."""

    def __call__(self, update_i, stepper, data) -> dict:
        if update_i % self.every == 0:
            return {self.name: self.callback(update_i, stepper, data)}
        return {self.name: None}

    def to_native(self) -> list:
        """The `trainax_fd.trainers` callbacks that record this one."""
        return [_Metric(self)]


class _Metric(trainers.AbstractMetric):
    """Records a trainax callback inside the compiled loop (its array leaves)."""

    callback: BaseCallback

    @property
    def every(self):
        return self.callback.every

    @property
    def name(self):
        return self.callback.name

    def __call__(self, step, stepper, batch, trainer):
        value = self.callback.callback(step, stepper, batch)
        return eqx.filter(value, eqx.is_array)


class Loss(BaseCallback):
    """The loss of `loss_configuration` on the step's batch (and its gradient if `with_grad`)."""

    loss_configuration: object
    with_grad: bool = eqx.field(static=True)
    ref_stepper: object
    residuum_fn: object

    def __init__(
        self, every, loss_configuration, *, with_grad=False, ref_stepper=None,
        residuum_fn=None, name: str,
    ):  # fmt: skip
        self.loss_configuration, self.with_grad = loss_configuration, with_grad
        self.ref_stepper, self.residuum_fn = ref_stepper, residuum_fn
        super().__init__(every, name)

    def callback(self, update_i, stepper, data):
        def loss(s):
            return self.loss_configuration(
                s, data, ref_stepper=self.ref_stepper, residuum_fn=self.residuum_fn
            )

        return eqx.filter_value_and_grad(loss)(stepper) if self.with_grad else loss(stepper)


class GradNorm(BaseCallback):
    """The gradient norm of `loss_configuration` on the step's batch."""

    loss_configuration: object
    squared: bool = eqx.field(static=True)
    ref_stepper: object
    residuum_fn: object

    def __init__(
        self, every, loss_configuration, *, squared=False, ref_stepper=None, residuum_fn=None,
        name: str,
    ):  # fmt: skip
        self.loss_configuration, self.squared = loss_configuration, squared
        self.ref_stepper, self.residuum_fn = ref_stepper, residuum_fn
        super().__init__(every, name)

    def callback(self, update_i, stepper, data):
        grads = eqx.filter_grad(
            lambda s: self.loss_configuration(
                s, data, ref_stepper=self.ref_stepper, residuum_fn=self.residuum_fn
            )
        )(stepper)
        return trainers._callbacks.tree_norm(grads, self.squared)


class WeightNorm(BaseCallback):
    """The 2-norm of the stepper's parameters."""

    squared: bool = eqx.field(static=True)

    def __init__(self, every: int, squared: bool = False, name: str = "weight_norm"):
        self.squared = squared
        super().__init__(every, name)

    def callback(self, update_i, stepper, data):
        return trainers._callbacks.tree_norm(stepper, self.squared)


class GetNetwork(BaseCallback):
    """The stepper itself every `every` steps (kept in the compiled loop, stacked)."""

    def __init__(self, every: int, name: str = "network"):
        super().__init__(every, name)

    def callback(self, update_i, stepper, data):
        return stepper


class SaveNetwork(BaseCallback):
    """Write the stepper to `{path}/{file_name}_{update_i}.eqx` every `every` steps (host)."""

    path: str = eqx.field(static=True)
    file_name: str = eqx.field(static=True)

    def __init__(self, every: int, path: str, file_name: str, name: str = "network_saved"):
        self.path, self.file_name = os.fspath(path), file_name
        super().__init__(every, name)

    def callback(self, update_i, stepper, data):
        eqx.tree_serialise_leaves(
            os.path.join(self.path, f"{self.file_name}_{update_i}.eqx"), stepper
        )
        return True

    def to_native(self) -> list:
        return [trainers.SaveStepper(self.path, self.file_name, self.every)]


class CompositeCallback(eqx.Module):
    """Several callbacks; their dicts are merged."""

    callbacks: list

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)

    def __call__(self, update_i, stepper, data) -> dict:
        out = {}
        for c in self.callbacks:
            out.update(c(update_i, stepper, data))
        return out


def flat(callback_fn) -> list[BaseCallback]:
    """The leaf callbacks of a callback (a `CompositeCallback` or one callback)."""
    if callback_fn is None:
        return []
    if isinstance(callback_fn, CompositeCallback):
        return [c for inner in callback_fn.callbacks for c in flat(inner)]
    return [callback_fn]


def aux_history(callback_fn, result, num_steps: int) -> list[dict]:
    """trainax's auxiliary history: one dict per step, `None` where a callback did not run."""
    history = [{} for _ in range(num_steps)]
    for c in flat(callback_fn):
        records = jax.tree_util.tree_map(np.asarray, result.metrics.get(c.name))
        for i in range(num_steps):
            if i % c.every:
                history[i][c.name] = None
            elif isinstance(c, SaveNetwork):
                history[i][c.name] = True
            else:
                value = jax.tree_util.tree_map(lambda x, r=i // c.every: x[r], records)
                if isinstance(c, GetNetwork):
                    value = eqx.combine(value, eqx.filter(result.model, eqx.is_array, inverse=True))
                history[i][c.name] = value
    return history
