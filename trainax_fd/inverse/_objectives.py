"""Objectives of the heat inversion: the SIP proxy loss and plain gradient descent through the
physics, and the metrics of a reconstruction."""

from collections.abc import Callable, Hashable, Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PyTree

from .._checks import check_int
from .._custom_types import Scalar
from ..objectives import AbstractObjective
from ..objectives._base import refuse_state
from ..reference import FourierHeat
from ..trainers import AbstractMetric
from ._damping import BAND, check_band, check_prior, inverse_diffusion

Batch = tuple[Float[Array, "batch 1 *spatial"], Float[Array, "batch 1 *spatial"]]


def _check_physics(physics) -> FourierHeat:
    if not isinstance(physics, FourierHeat):
        raise TypeError(f"`physics` must be a `FourierHeat`, got {type(physics).__name__}.")
    return physics


def _check_callable(name: str, fn) -> Callable:
    if not callable(fn):
        raise TypeError(f"`{name}` must be callable, got {type(fn).__name__}.")
    return fn


def reconstruct(
    model, batch: Batch, *, axis_name: Hashable = "batch", network_dtype=jnp.float32
) -> Float[Array, "batch 1 *spatial"]:
    """The network's reconstructions of a batch's sources, with each source's mean.

    The network sees the observations in `network_dtype` (float32: the SIP experiments' float32
    network), vmapped with `axis_name` (batch statistics of batch normalisation); its output is
    cast to the observations' dtype (float64 physics) and shifted to the mean of the true source
    (the experiment's convention: diffusion keeps the mean, so the observation knows it).

    **Arguments:**

    - `model`: a network, one sample `(1, *spatial) -> (1, *spatial)`.
    - `batch`: `(observations y, sources x)`, both `(batch, 1, *spatial)`.
    - `axis_name`: the `jax.vmap` axis name of the batch (`"batch"`, as `SIPUNet`'s).
    - `network_dtype`: the dtype the network is called in.

    **Returns:** `(batch, 1, *spatial)`, in the observations' dtype.
    """
    y, x = batch
    if y.shape != x.shape:
        raise ValueError(
            f"`batch` must be (observations, sources) of one shape, got {y.shape} and {x.shape}."
        )
    spatial = tuple(range(1, y.ndim))
    pred = jax.vmap(model, axis_name=axis_name)(y.astype(network_dtype)).astype(y.dtype)
    if pred.shape != x.shape:
        raise ValueError(
            f"The model must map each observation {y.shape[1:]} to a source of that shape, got "
            f"{pred.shape[1:]}."
        )
    shift = jnp.mean(x, axis=spatial, keepdims=True) - jnp.mean(pred, axis=spatial, keepdims=True)
    return pred + shift


def _half_sum_sq(e: Array) -> Array:
    """`1/2 sum e^2` over all but the leading (batch) axis."""
    return 0.5 * jnp.sum(jnp.square(e), axis=tuple(range(1, e.ndim)))


class SIPLoss(AbstractObjective):
    """The scale-invariant physics (SIP) proxy loss of the heat inversion:
    `1/2 sum (pred - stop_gradient(pred + dx))^2` per example, where
    `dx = inverse_diffusion(y - physics(pred))` is the damped inverse physics applied to the
    observation misfit, with uncertainty `relative_uncertainty * |y - physics(pred)|`.

    Its gradient with respect to the prediction is `-dx`: the update the inverse physics asks
    for, which the optimizer then carries into the network's weights. The physics runs in the
    batch's dtype (float64 in the experiment), the network in `network_dtype`.

    A batch is `(observations y, sources x)` as `heat_inversion_sampler` draws it; the model is
    called by `reconstruct` (vmapped with `axis_name`; its prediction gets the source's mean).
    The per-example terms are reduced with `reduction` (default `jnp.sum`: the original summed
    over the batch). Batch statistics couple the examples, so the loss is not split into
    chunks (`decomposable = False`).

    **Arguments:**

    - `physics`: the forward diffusion, a `FourierHeat`.
    - `relative_uncertainty`: the noise of the misfit relative to its size (`1e-6`).
    - `signal_scale`, `signal_prior`, `band`: as in `inverse_diffusion`.
    - `axis_name`, `network_dtype`: as in `reconstruct`.
    - `reduction`: `(batch,) -> ()` (`jnp.sum`).
    """

    decomposable: ClassVar[bool] = False
    physics: FourierHeat
    relative_uncertainty: float = eqx.field(static=True)
    signal_scale: float | None = eqx.field(static=True)
    signal_prior: float = eqx.field(static=True)
    band: tuple[float, float] = eqx.field(static=True)
    axis_name: Hashable = eqx.field(static=True)
    network_dtype: jnp.dtype = eqx.field(static=True)
    reduction: Callable = eqx.field(static=True)

    def __init__(
        self,
        physics: FourierHeat,
        *,
        relative_uncertainty: float = 1e-6,
        signal_scale: float | None = None,
        signal_prior: float = 0.5,
        band: Sequence[float] = BAND,
        axis_name: Hashable = "batch",
        network_dtype=jnp.float32,
        reduction: Callable = jnp.sum,
    ):
        self.physics = _check_physics(physics)
        if not (isinstance(relative_uncertainty, float | int) and relative_uncertainty > 0):
            raise ValueError(
                f"`relative_uncertainty` must be a positive number, got {relative_uncertainty!r}."
            )
        if signal_scale is not None and not (
            isinstance(signal_scale, float | int) and signal_scale > 0
        ):
            raise ValueError(
                f"`signal_scale` must be None or a positive number, got {signal_scale!r}."
            )
        self.relative_uncertainty = float(relative_uncertainty)
        self.signal_scale = None if signal_scale is None else float(signal_scale)
        self.signal_prior = check_prior(signal_prior)
        self.band = check_band(band)
        self.axis_name = axis_name
        self.network_dtype = jnp.dtype(network_dtype)
        self.reduction = _check_callable("reduction", reduction)

    def update(self, prediction: Array, observations: Array) -> Array:
        """The SIP update `dx` of a batch of predictions `(batch, 1, *spatial)` (no gradient)."""
        heat = self.physics
        x = lax.stop_gradient(prediction)
        misfit = observations - jax.vmap(heat.step)(x)
        amount = heat.diffusivity * heat.dt

        def one(m):
            return inverse_diffusion(
                m, heat.grid, amount, uncertainty=self.relative_uncertainty * jnp.abs(m),
                signal_scale=self.signal_scale, signal_prior=self.signal_prior, band=self.band,
            )  # fmt: skip

        return lax.stop_gradient(jax.vmap(one)(misfit))

    def terms(self, model, batch: Batch, state=None):
        refuse_state(state, "SIPLoss")
        y, _ = batch
        pred = reconstruct(model, batch, axis_name=self.axis_name, network_dtype=self.network_dtype)
        target = lax.stop_gradient(pred + self.update(pred, y))
        return _half_sum_sq(pred - target), state

    def reduce(self, terms) -> Scalar:
        return self.reduction(terms)


class PhysicsLoss(AbstractObjective):
    """Plain gradient descent through the physics: `1/2 sum (physics(pred) - y)^2` per
    example, differentiated through the diffusion (which diffuses the gradient once more).

    Batches, the call of the model and the reduction as in `SIPLoss`.

    **Arguments:** `physics` (a `FourierHeat`), `axis_name`, `network_dtype`, `reduction`
    (`jnp.sum`).
    """

    decomposable: ClassVar[bool] = False
    physics: FourierHeat
    axis_name: Hashable = eqx.field(static=True)
    network_dtype: jnp.dtype = eqx.field(static=True)
    reduction: Callable = eqx.field(static=True)

    def __init__(
        self,
        physics: FourierHeat,
        *,
        axis_name: Hashable = "batch",
        network_dtype=jnp.float32,
        reduction: Callable = jnp.sum,
    ):
        self.physics = _check_physics(physics)
        self.axis_name = axis_name
        self.network_dtype = jnp.dtype(network_dtype)
        self.reduction = _check_callable("reduction", reduction)

    def terms(self, model, batch: Batch, state=None):
        refuse_state(state, "PhysicsLoss")
        y, _ = batch
        pred = reconstruct(model, batch, axis_name=self.axis_name, network_dtype=self.network_dtype)
        return _half_sum_sq(jax.vmap(self.physics.step)(pred) - y), state

    def reduce(self, terms) -> Scalar:
        return self.reduction(terms)


def inversion_errors(
    model, batch: Batch, physics: FourierHeat, *, axis_name="batch", network_dtype=jnp.float32
) -> dict[str, Array]:
    """The errors of a reconstruction, batch means:

    - `"x_l2"`: `1/2 sum (x - pred)^2` over the grid (the experiment's metric);
    - `"x_mae"`: `mean |x - pred|` per cell;
    - `"y_l2"`: `1/2 sum (physics(pred) - y)^2` over the grid.

    **Returns:** a dict of scalars (the batch's dtype).
    """
    y, x = batch
    pred = reconstruct(model, batch, axis_name=axis_name, network_dtype=network_dtype)
    return {
        "x_l2": jnp.mean(_half_sum_sq(x - pred)),
        "x_mae": jnp.mean(jnp.abs(x - pred)),
        "y_l2": jnp.mean(_half_sum_sq(jax.vmap(physics.step)(pred) - y)),
    }


class InversionErrors(AbstractMetric):
    """`inversion_errors` of the step's batch, recorded in the training loop before every
    `every`-th update: `result.metrics[name]["x_l2"]` etc., `(records,)` each.

    **Arguments:** `physics` (a `FourierHeat`), `every` (`1`), `axis_name`, `network_dtype`,
    `name` (`"errors"`).
    """

    physics: FourierHeat
    every: int = eqx.field(static=True)
    axis_name: Hashable = eqx.field(static=True)
    network_dtype: jnp.dtype = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(
        self,
        physics: FourierHeat,
        every: int = 1,
        *,
        axis_name: Hashable = "batch",
        network_dtype=jnp.float32,
        name: str = "errors",
    ):
        self.physics = _check_physics(physics)
        self.every = check_int("every", every)
        self.axis_name, self.network_dtype = axis_name, jnp.dtype(network_dtype)
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
        self.name = name

    def __call__(self, step, model, batch: PyTree[Array], trainer) -> dict[str, Array]:
        return inversion_errors(
            model, batch, self.physics, axis_name=self.axis_name, network_dtype=self.network_dtype
        )
