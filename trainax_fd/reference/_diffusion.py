"""Diffusion `u_t = div(k grad u) + s`: explicit finite differences and exact Fourier steps."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._custom_types import AnyArray, Coefficient, State
from ..stencil import BoundarySpec, Grid, boundary_pairs, div_k_grad, laplacian
from ._base import AbstractStepper, array_module, as_array, check_coefficient, check_dt


def coefficient_field(value: Coefficient, grid: Grid, name: str) -> AnyArray:
    """A scalar, or a field of shape `(1 or channels, *spatial)` (checked against the grid)."""
    k = as_array(value, name)
    if k.ndim != 0 and (k.ndim != grid.ndim + 1 or k.shape[1:] != grid.shape):
        raise ValueError(
            f"`{name}` must be a scalar or have shape (1 or channels, "
            f"{', '.join(map(str, grid.shape))}), got {k.shape}."
        )
    return k


class Diffusion(AbstractStepper):
    """One forward-Euler step of `u_t = div(k grad u) + source`, any channels.

    A scalar diffusivity uses the Laplacian stencil; a field `k(x)` the conservative
    `div(k grad u)` with face-averaged `k`. Stable for `dt * max(k) * sum_a 2 / h_a^2 <= 1`.

    **Arguments:**

    - `grid`, `bc`: the grid and boundary specification.
    - `diffusivity`: scalar or field `(1 or channels, *spatial)`, finite and `>= 0`; an
      array leaf.
    - `dt`: time step, finite and positive; an array leaf.
    - `source`: optional constant source, scalar or `(1 or channels, *spatial)`, finite.
    """

    grid: Grid = eqx.field(static=True)
    bc: tuple
    diffusivity: AnyArray
    dt: AnyArray
    source: AnyArray

    def __init__(
        self,
        grid: Grid,
        bc: BoundarySpec,
        diffusivity: Coefficient,
        dt: Coefficient,
        source: Coefficient = 0.0,
    ):
        self.grid, self.bc = grid, boundary_pairs(bc, grid)
        self.diffusivity = check_coefficient(
            coefficient_field(diffusivity, grid, "diffusivity"), "diffusivity", nonnegative=True
        )
        self.source = check_coefficient(coefficient_field(source, grid, "source"), "source")
        inv_h2 = sum(2.0 / h**2 for h in grid.spacing)
        xp = array_module(self.diffusivity)
        limit = 1.0 / (xp.maximum(xp.max(xp.asarray(self.diffusivity)), 1e-30) * inv_h2)
        self.dt = check_dt(
            as_array(dt, "dt"), limit, "explicit diffusion", "dt max(k) sum 2/h^2 <= 1"
        )

    def step(self, u: State) -> State:
        k = self.diffusivity.astype(u.dtype)
        if k.ndim == 0:
            rate = k * laplacian(u, self.grid, self.bc)
        else:
            rate = div_k_grad(u, k, self.grid, self.bc)
        return u + self.dt.astype(u.dtype) * (rate + self.source.astype(u.dtype))


def wavenumber_squared(grid: Grid) -> np.ndarray:
    """`|kappa|^2` on the `rfftn` grid of a periodic `grid`, shape `(N_0, ..., N_last // 2 + 1)`."""
    axes = []
    for a, (n, length) in enumerate(zip(grid.shape, grid.extent)):
        freq = np.fft.rfftfreq(n) if a == grid.ndim - 1 else np.fft.fftfreq(n)
        axes.append((2 * np.pi * n / length * freq) ** 2)
    return sum(np.meshgrid(*axes, indexing="ij"))


class FourierHeat(AbstractStepper):
    """One exact step of periodic heat diffusion `u_t = k Laplace(u)` in Fourier space.

    Every Fourier mode `exp(i kappa . x)` is multiplied by `exp(-k |kappa|^2 dt)`; no stability
    limit. Needs a periodic domain (`placement="periodic"` or `"cell"` on every axis).

    **Arguments:**

    - `grid`: the grid; every axis is treated as periodic.
    - `diffusivity`: scalar `k`, finite and `>= 0`; an array leaf.
    - `dt`: time step, finite and positive; an array leaf.
    """

    grid: Grid = eqx.field(static=True)
    diffusivity: AnyArray
    dt: AnyArray

    def __init__(self, grid: Grid, diffusivity: Coefficient, dt: Coefficient):
        if "vertex" in grid.placement:
            raise ValueError(
                "`grid` must be periodic for FourierHeat (placement 'periodic' or 'cell' on "
                f"every axis), got placement {grid.placement}."
            )
        self.grid = grid
        self.diffusivity = as_array(diffusivity, "diffusivity")
        if self.diffusivity.ndim != 0:
            raise ValueError(
                "`diffusivity` of FourierHeat must be a scalar, got shape "
                f"{self.diffusivity.shape}."
            )
        self.diffusivity = check_coefficient(self.diffusivity, "diffusivity", nonnegative=True)
        self.dt = check_dt(as_array(dt, "dt"), np.inf, "the exact Fourier heat step", "dt > 0")

    def step(self, u: State) -> State:
        axes = tuple(range(1, u.ndim))
        k2 = jnp.asarray(wavenumber_squared(self.grid)[None], dtype=u.dtype)
        decay = jnp.exp(-(self.diffusivity * self.dt).astype(u.dtype) * k2)
        u_hat = jnp.fft.rfftn(u, axes=axes)
        u_hat = u_hat * decay.astype(u_hat.dtype)
        return jnp.fft.irfftn(u_hat, s=self.grid.shape, axes=axes).astype(u.dtype)
