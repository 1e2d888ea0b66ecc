"""Losses that look at spatial structure: the Sobolev (H1) loss and a Fourier band loss."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._custom_types import AnyArray, Coefficient
from ..stencil import AbstractBoundary, BoundarySpec, Grid, boundary_pairs, gradient
from ._base import AbstractLoss, difference


class Sobolev(AbstractLoss):
    """The H1 loss: `MSE(d) + order_weight * sum_a mean((d/dx_a d)^2)`, `d = prediction - target`.

    Derivatives are second-order central differences (`trainax_fd.stencil.gradient`) with
    ghosts from `bc`. The boundary condition is applied to the difference `d` (or to the
    prediction when `target` is `None`): for two states that meet the same inhomogeneous
    condition, pass the homogeneous one.

    **Arguments:**

    - `grid`: the grid every leaf lives on; leaves have shape `(channels, *grid.shape)`.
    - `bc`: the boundary specification (anything `boundary_pairs` accepts).
    - `order_weight`: the weight of the derivative term; an array leaf.
    """

    grid: Grid = eqx.field(static=True)
    bc: tuple[tuple[AbstractBoundary, AbstractBoundary], ...]
    order_weight: AnyArray

    def __init__(self, grid: Grid, bc: BoundarySpec, order_weight: Coefficient = 1.0):
        if not isinstance(grid, Grid):
            raise TypeError(f"`grid` must be a `Grid`, got {type(grid).__name__}.")
        self.grid = grid
        self.bc = boundary_pairs(bc, grid)
        self.order_weight = jnp.asarray(order_weight)
        if self.order_weight.ndim != 0:
            raise ValueError(
                f"`order_weight` must be a scalar, got shape {self.order_weight.shape}."
            )

    def leaf_loss(self, prediction_leaf, target_leaf):
        self.grid.check_state(prediction_leaf, "prediction")
        d = difference(prediction_leaf, target_leaf)
        g = gradient(d, self.grid, self.bc)
        per_axis = jnp.mean(jnp.square(g), axis=tuple(range(1, g.ndim)))
        weight = self.order_weight.astype(d.dtype)
        return jnp.mean(jnp.square(d)) + weight * jnp.sum(per_axis)


def _band_weights(spatial: tuple[int, ...], low: int, high: int, derivative: int = 0) -> np.ndarray:
    """Parseval weights of the `rfftn` half spectrum, zero outside the band `[low, high]`;
    with `derivative` `s > 0`, times `sum_a |k_a|^(2 s)` (the `s`-th derivative along each
    axis, summed over the axes)."""
    ks = [np.abs(np.fft.fftfreq(n) * n) for n in spatial[:-1]]
    last = spatial[-1]
    ks.append(np.fft.rfftfreq(last) * last)
    k = np.meshgrid(*ks, indexing="ij")
    kmax = np.rint(np.max(np.stack(k), axis=0)).astype(int)
    # The half spectrum stands for the whole: each last-axis mode other than 0 and the
    # Nyquist mode (even length) also stands for its conjugate partner.
    double = np.full(last // 2 + 1, 2.0)
    double[0] = 1.0
    if last % 2 == 0:
        double[-1] = 1.0
    inside = (kmax >= low) & (kmax <= high)
    weights = np.where(inside, double, 0.0)
    if derivative:
        weights = weights * sum(np.abs(ka) ** (2 * derivative) for ka in k)
    return weights


class FourierBand(AbstractLoss):
    """The part of the MSE carried by the Fourier modes with `low <= max_a |k_a| <= high`.

    `sum_{k in band} |D_k|^2 / n_points`, with `D = rfftn(d, norm="ortho")` over the spatial
    axes of `d = prediction - target` (`k_a` integer wavenumbers) and `n_points` the number
    of entries of `d` (channels included). Modes of the half spectrum that stand for a
    conjugate pair count twice, so by Parseval the full band (`low = 0`, `high` at least the
    largest `|k|`, `max(spatial) // 2`) equals `MSE`. Assumes periodic data.

    With `derivative` `s > 0`, each mode's power is weighted by `sum_a |k_a|^(2 s)`: the band's
    part of the mean square of the `s`-th spectral derivative with respect to `2 pi x_a / L_a`,
    summed over the axes (the Fourier-band metrics of `trainax_fd.evaluation` normalise it,
    which removes the `2 pi / L` scale).

    **Arguments:**

    - `low`: the smallest wavenumber magnitude in the band, an int `>= 0` (static).
    - `high`: the largest wavenumber magnitude in the band, an int `>= low` (static).
    - `derivative`: the order `s >= 0` of the derivative whose power is taken (static).
    """

    low: int = eqx.field(static=True)
    high: int = eqx.field(static=True)
    derivative: int = eqx.field(static=True)

    def __init__(self, low: int, high: int, derivative: int = 0):
        for name, value in (("low", low), ("high", high), ("derivative", derivative)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative int, got {value!r}.")
        if high < low:
            raise ValueError(f"`high` must be at least `low` = {low}, got {high}.")
        self.low = int(low)
        self.high = int(high)
        self.derivative = int(derivative)

    def leaf_loss(self, prediction_leaf, target_leaf):
        if prediction_leaf.ndim < 2:
            raise ValueError(
                "`prediction` must have shape (channels, *spatial) with at least one spatial "
                f"axis, got {prediction_leaf.shape}. Losses act on one sample; batch with "
                "`jax.vmap` at the call site."
            )
        d = difference(prediction_leaf, target_leaf)
        axes = tuple(range(1, d.ndim))
        spectrum = jnp.fft.rfftn(d, axes=axes, norm="ortho")
        power = jnp.square(jnp.real(spectrum)) + jnp.square(jnp.imag(spectrum))
        weights = _band_weights(d.shape[1:], self.low, self.high, self.derivative)[None]
        weights = jnp.asarray(weights, dtype=d.dtype)
        return jnp.sum(weights * power) / jnp.asarray(d.size, dtype=d.dtype)
