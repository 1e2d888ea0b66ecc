"""Viscous Burgers `u_t + (u . grad) u = nu Laplace(u)` with upwind convection."""

import equinox as eqx
import jax.numpy as jnp

from .._custom_types import AnyArray, Coefficient, State
from ..stencil import BoundarySpec, Grid, boundary_pairs, laplacian, upwind
from ._base import AbstractStepper, array_module, as_array, check_coefficient, check_dt


class Burgers(AbstractStepper):
    """One explicit step of viscous Burgers with first-order upwind convection.

    The state has one velocity component per spatial axis (`dim` channels). Each component is
    convected by `u . grad`, with the upwind side chosen per point by the sign of the local
    velocity; viscosity uses the Laplacian stencil. The viscous limit
    `dt * nu * sum_a 2 / h_a^2 <= 1` is checked here; the convective limit
    `dt * (sum_a max|u_a| / h_a + nu sum_a 2 / h_a^2) <= 1` depends on the state (see
    `max_stable_dt`). `trajectories` checks it at every step of the data it makes and warns,
    naming the first sample and time level over the limit (a warning, not an error: the limit
    is sufficient, not necessary). A step itself does not check it, so the stepper can serve
    as the reference of a loss on a network's predictions, whatever their size.

    **Arguments:**

    - `grid`, `bc`: the grid and boundary specification.
    - `viscosity`: scalar `nu`, finite and `>= 0`; an array leaf.
    - `dt`: time step, finite and positive; an array leaf.
    """

    grid: Grid = eqx.field(static=True)
    bc: tuple
    viscosity: AnyArray
    dt: AnyArray

    def __init__(self, grid: Grid, bc: BoundarySpec, viscosity: Coefficient, dt: Coefficient):
        self.grid, self.bc = grid, boundary_pairs(bc, grid)
        self.viscosity = as_array(viscosity, "viscosity")
        if self.viscosity.ndim != 0:
            raise ValueError(f"`viscosity` must be a scalar, got shape {self.viscosity.shape}.")
        self.viscosity = check_coefficient(self.viscosity, "viscosity", nonnegative=True)
        inv_h2 = sum(2.0 / h**2 for h in grid.spacing)
        xp = array_module(self.viscosity)
        limit = 1.0 / (xp.maximum(xp.asarray(self.viscosity), 1e-30) * inv_h2)
        condition = "dt nu sum_a 2/h_a^2 <= 1"
        self.dt = check_dt(as_array(dt, "dt"), limit, "viscous Burgers", condition)

    @property
    def num_channels(self) -> int:
        return self.grid.ndim

    def max_stable_dt(self, u: State) -> AnyArray:
        """The largest stable `dt` for state `u`: viscous and convective limits combined."""
        rate = self.viscosity.astype(u.dtype) * sum(2.0 / h**2 for h in self.grid.spacing)
        for a, h in enumerate(self.grid.spacing):
            rate = rate + jnp.max(jnp.abs(u[a])) / h
        return 1.0 / rate

    def step(self, u: State) -> State:
        rate = self.viscosity.astype(u.dtype) * laplacian(u, self.grid, self.bc)
        for a in range(self.grid.ndim):
            velocity = u[a : a + 1]
            rate = rate - velocity * upwind(u, velocity, self.grid, self.bc, a)
        return u + self.dt.astype(u.dtype) * rate
