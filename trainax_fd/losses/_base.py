"""The loss interface and the pointwise losses: MSE, MAE, RMSE, normalised, weighted."""

import abc
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._custom_types import AnyArray, Coefficient, Scalar, State


def difference(prediction: State, target: State | None) -> State:
    """`prediction - target`, or `prediction` itself when `target` is `None` (zero)."""
    return prediction if target is None else prediction - target


class AbstractLoss(eqx.Module):
    """A time-level loss on one sample: a PyTree of arrays `(channels, *spatial)` to a scalar.

    Subclasses are final and implement `leaf_loss`. Calling a loss checks the inputs and
    returns the **sum over leaves** of `leaf_loss`, so a state made of several fields (e.g.
    velocity and pressure of different shapes) contributes each field's loss once,
    unweighted. A loss acts on one sample; batch with `jax.vmap` at the call site.
    """

    @abc.abstractmethod
    def leaf_loss(self, prediction_leaf: State, target_leaf: State | None) -> Scalar:
        """The loss of one leaf.

        **Arguments:**

        - `prediction_leaf`: one array of the sample, shape `(channels, *spatial)`.
        - `target_leaf`: an array of the same shape, or `None` for a zero target.

        **Returns:** a scalar of the leaf's dtype.
        """

    def __call__(self, prediction: PyTree[Array], target: PyTree[Array] | None = None) -> Scalar:
        """The loss of one sample.

        **Arguments:**

        - `prediction`: a PyTree of arrays, each of shape `(channels, *spatial)`.
        - `target`: a PyTree of the same structure and leaf shapes, or `None` to compare
            against zero (residuum losses).

        **Returns:** a scalar: the sum over leaves of `leaf_loss`.
        """
        leaves, structure = jax.tree_util.tree_flatten(prediction)
        if not leaves:
            raise ValueError(
                f"`prediction` must hold at least one array leaf, got the structure {structure}."
            )
        leaves = [jnp.asarray(p) for p in leaves]
        if target is None:
            targets = [None] * len(leaves)
        else:
            targets, target_structure = jax.tree_util.tree_flatten(target)
            if target_structure != structure:
                raise ValueError(
                    f"`target` must have the PyTree structure of `prediction`, {structure}, "
                    f"got {target_structure}."
                )
            targets = [jnp.asarray(t) for t in targets]
            for i, (p, t) in enumerate(zip(leaves, targets)):
                if p.shape != t.shape:
                    raise ValueError(
                        f"`prediction` and `target` must have the same shape, got {p.shape} "
                        f"and {t.shape} (leaf {i}). Losses act on one sample "
                        "`(channels, *spatial)`; batch with `jax.vmap` at the call site."
                    )
        losses = [self.leaf_loss(p, t) for p, t in zip(leaves, targets)]
        total = losses[0]
        for loss in losses[1:]:
            total = total + loss
        return total


def _mse(prediction: State, target: State | None) -> Scalar:
    return jnp.mean(jnp.square(difference(prediction, target)))


def _mae(prediction: State, target: State | None) -> Scalar:
    return jnp.mean(jnp.abs(difference(prediction, target)))


class MSE(AbstractLoss):
    """Mean squared error, `mean((prediction - target)^2)` over channels and space."""

    def leaf_loss(self, prediction_leaf, target_leaf):
        return _mse(prediction_leaf, target_leaf)


class MAE(AbstractLoss):
    """Mean absolute error, `mean(|prediction - target|)` over channels and space."""

    def leaf_loss(self, prediction_leaf, target_leaf):
        return _mae(prediction_leaf, target_leaf)


class RMSE(AbstractLoss):
    """Root mean squared error, `sqrt(MSE)` per leaf.

    Its gradient is `nan` where prediction and target agree exactly (`sqrt` at zero).
    """

    def leaf_loss(self, prediction_leaf, target_leaf):
        return jnp.sqrt(_mse(prediction_leaf, target_leaf))


def _check_eps(eps: float) -> float:
    if not float(eps) >= 0.0:
        raise ValueError(f"`eps` must be a non-negative float, got {eps!r}.")
    return float(eps)


def _normalized(name: str, base, eps: float, prediction: State, target: State | None):
    if target is None:
        raise ValueError(
            f"`target` must be given for `{name}`: it normalises by the target's size, got None."
        )
    eps = jnp.asarray(eps, dtype=prediction.dtype)
    return base(prediction, target) / (base(target, None) + eps)


class NormalizedMSE(AbstractLoss):
    """`MSE(prediction, target) / (MSE(target, 0) + eps)` per leaf; scale invariant.

    With the default `eps = 0.0` (the semantics of trainax) a zero target gives `inf` or `nan`;
    a positive `eps` guards against it at the price of exact scale invariance.

    **Arguments:**

    - `eps`: a non-negative float added to the denominator (static).
    """

    eps: float = eqx.field(static=True)

    def __init__(self, eps: float = 0.0):
        self.eps = _check_eps(eps)

    def leaf_loss(self, prediction_leaf, target_leaf):
        return _normalized("NormalizedMSE", _mse, self.eps, prediction_leaf, target_leaf)


class NormalizedMAE(AbstractLoss):
    """`MAE(prediction, target) / (MAE(target, 0) + eps)` per leaf; scale invariant.

    With the default `eps = 0.0` (the semantics of trainax) a zero target gives `inf` or `nan`;
    a positive `eps` guards against it at the price of exact scale invariance.

    **Arguments:**

    - `eps`: a non-negative float added to the denominator (static).
    """

    eps: float = eqx.field(static=True)

    def __init__(self, eps: float = 0.0):
        self.eps = _check_eps(eps)

    def leaf_loss(self, prediction_leaf, target_leaf):
        return _normalized("NormalizedMAE", _mae, self.eps, prediction_leaf, target_leaf)


class Weighted(AbstractLoss):
    """A weighted sum of losses, `sum_i weights[i] * losses[i](prediction, target)`.

    **Arguments:**

    - `losses`: a non-empty sequence of losses.
    - `weights`: one weight per loss, shape `(n_losses,)`; an array leaf (vmappable,
        differentiable).

    !!! example
        ```python
        loss = Weighted((MSE(), Sobolev(grid, "periodic")), weights=[1.0, 0.1])
        ```
    """

    losses: tuple[AbstractLoss, ...]
    weights: AnyArray

    def __init__(self, losses: Sequence[AbstractLoss], weights: Sequence[Coefficient] | Array):
        losses = tuple(losses)
        if not losses:
            raise ValueError("`losses` must hold at least one loss, got an empty sequence.")
        for loss in losses:
            if not isinstance(loss, AbstractLoss):
                raise TypeError(
                    f"`losses` must hold `AbstractLoss` instances, got {type(loss).__name__}."
                )
        weights = jnp.asarray(weights)
        if weights.shape != (len(losses),):
            raise ValueError(
                f"`weights` must have shape ({len(losses)},), one weight per loss, got "
                f"{weights.shape}."
            )
        self.losses = losses
        self.weights = weights

    def leaf_loss(self, prediction_leaf, target_leaf):
        weights = self.weights.astype(prediction_leaf.dtype)
        total = weights[0] * self.losses[0].leaf_loss(prediction_leaf, target_leaf)
        for i in range(1, len(self.losses)):
            total = total + weights[i] * self.losses[i].leaf_loss(prediction_leaf, target_leaf)
        return total
