"""Objectives: configurations over windows, input→target pairs, and user losses."""

from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..configurations import AbstractConfiguration
from ..configurations._base import DEFAULT_LOSS
from ._base import AbstractObjective, refuse_state, vmap_terms


def _check_callable(name: str, fn, expected: str) -> Callable:
    if not callable(fn):
        raise TypeError(f"`{name}` must be callable as `{expected}`, got {type(fn).__name__}.")
    return fn


class WindowObjective(AbstractObjective):
    """A configuration over a batch of windows: the per-window level losses `(batch, levels)`,
    reduced level by level and weighted: `sum_l weights[l] * reduction(losses[:, l])`.

    A `Trainer` given a configuration builds this itself (with its `reduction`).

    **Arguments:**

    - `configuration`: an `AbstractConfiguration` (`trainax_fd.configurations`).
    - `reduction`: `(batch,) -> ()` for one level's losses over the batch (default mean).
    """

    configuration: AbstractConfiguration
    reduction: Callable = eqx.field(static=True)

    def __init__(self, configuration: AbstractConfiguration, reduction: Callable = jnp.mean):
        if not isinstance(configuration, AbstractConfiguration):
            raise TypeError(
                "`configuration` must be an `AbstractConfiguration` (see "
                f"`trainax_fd.configurations`), got {type(configuration).__name__}."
            )
        self.configuration = configuration
        self.reduction = _check_callable("reduction", reduction, "reduction(losses) -> scalar")

    def terms(self, model, batch, state=None):
        refuse_state(state, "WindowObjective")
        return vmap_terms(self.configuration.level_losses, model, batch), state

    def reduce(self, terms):
        reduced = jax.vmap(self.reduction, in_axes=1)(terms)
        return jnp.sum(self.configuration.weights.astype(reduced.dtype) * reduced)


class InputTarget(AbstractObjective):
    """Supervised input→target pairs: `loss(model(input), target)` per example, reduced.

    A batch is `(inputs, targets)` (as `trainax_fd.data.Pairs` builds it). Models with
    `eqx.nn.State` (batch norm) are called as `model(input, state) -> (output, state)`, vmapped
    over the batch with `axis_name="batch"` (Equinox's `BatchNorm` default).

    **Arguments:**

    - `loss`: `(prediction, target) -> scalar` on one example (default `MSE()`).
    - `reduction`: `(batch,) -> ()` (default mean).
    """

    loss: Callable
    reduction: Callable = eqx.field(static=True)

    def __init__(self, loss: Callable = DEFAULT_LOSS, *, reduction: Callable = jnp.mean):
        self.loss = _check_callable("loss", loss, "loss(prediction, target) -> scalar")
        self.reduction = _check_callable("reduction", reduction, "reduction(losses) -> scalar")

    def terms(self, model, batch, state=None):
        inputs, targets = batch
        if state is None:
            predictions = jax.vmap(model)(inputs)
        else:
            predictions, state = jax.vmap(
                model, axis_name="batch", in_axes=(0, None), out_axes=(0, None)
            )(inputs, state)
        return jax.vmap(self.loss)(predictions, targets), state

    def reduce(self, terms):
        return self.reduction(terms)


class PerSample(AbstractObjective):
    """A user loss on one example, `fn(model, example) -> scalar`, reduced over the batch:
    physics losses, inverse problems, residuals at one collocation point.

    **Arguments:**

    - `fn`: `(model, example) -> scalar`.
    - `reduction`: `(batch,) -> ()` (default mean).
    """

    fn: Callable
    reduction: Callable = eqx.field(static=True)

    def __init__(self, fn: Callable, *, reduction: Callable = jnp.mean):
        self.fn = _check_callable("fn", fn, "fn(model, example) -> scalar")
        self.reduction = _check_callable("reduction", reduction, "reduction(losses) -> scalar")

    def terms(self, model, batch, state=None):
        refuse_state(state, "PerSample")
        return vmap_terms(self.fn, model, batch), state

    def reduce(self, terms):
        return self.reduction(terms)


class BatchLoss(AbstractObjective):
    """A user loss on a whole batch, `fn(model, batch) -> scalar`; for a model with
    `eqx.nn.State`, `fn(model, batch, state) -> (scalar, state)`.

    It does not split into per-example terms (`decomposable = False`): its full loss over a
    data set is `fn` on all examples as one batch. A plain function given to a `Trainer` as
    its objective becomes a `BatchLoss`.

    **Arguments:**

    - `fn`: the batch loss.
    """

    decomposable: ClassVar[bool] = False
    fn: Callable

    def __init__(self, fn: Callable):
        self.fn = _check_callable("fn", fn, "fn(model, batch) -> scalar")

    def terms(self, model, batch, state=None):
        if state is None:
            return self.fn(model, batch), state
        return self.fn(model, batch, state)

    def reduce(self, terms):
        return terms


def as_objective(objective, reduction: Callable = jnp.mean) -> AbstractObjective:
    """`objective` as an `AbstractObjective`: a configuration becomes a `WindowObjective`
    (with `reduction`), a plain function `fn(model, batch)` a `BatchLoss`."""
    if isinstance(objective, AbstractObjective):
        return objective
    if isinstance(objective, AbstractConfiguration):
        return WindowObjective(objective, reduction)
    if callable(objective):
        return BatchLoss(objective)
    raise TypeError(
        "`objective` must be an `AbstractObjective`, an `AbstractConfiguration` or a function "
        f"`loss(model, batch) -> scalar`, got {type(objective).__name__}."
    )
