"""Linear advection `u_t + c . grad u = 0` with upwind, central or Lax-Wendroff stencils."""

from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import warn
from .._custom_types import AnyArray, Coefficient, State
from ..stencil import BoundarySpec, Grid, boundary_pairs, central, second, upwind
from ._base import AbstractStepper, array_module, as_array, check_coefficient, check_dt

SCHEMES = ("upwind", "central", "lax_wendroff")


def velocity_vector(velocity: Coefficient, grid: Grid) -> AnyArray:
    """A finite velocity as one component per axis, shape `(dim,)`; a scalar applies to every
    axis."""
    c = check_coefficient(as_array(velocity, "velocity"), "velocity")
    if c.ndim == 0:
        xp = array_module(c)
        return jnp.asarray(xp.broadcast_to(xp.asarray(c), (grid.ndim,)))
    if c.shape != (grid.ndim,):
        raise ValueError(
            f"`velocity` must be a scalar or have shape ({grid.ndim},) (one component per axis), "
            f"got {c.shape}."
        )
    return c


class Advection(AbstractStepper):
    """One explicit step of linear advection `u_t + sum_a c_a du/dx_a = 0`, any channels.

    - `"upwind"`: first order, one-sided against the flow for either sign of `c`; stable for
      `dt * sum_a |c_a| / h_a <= 1`.
    - `"lax_wendroff"`: second order, applied axis by axis (exact splitting: the axis
      operators commute for constant `c` on periodic grids); stable for `|c_a| dt / h_a <= 1`.
    - `"central"`: forward Euler with the central difference (FTCS). It is unconditionally
      unstable for pure advection; it is offered as a reference stencil and warns.

    **Arguments:**

    - `grid`, `bc`: the grid and boundary specification.
    - `velocity`: scalar or one component per axis, shape `(dim,)`, finite; an array leaf.
    - `dt`: time step, finite and positive; an array leaf.
    - `scheme`: one of `"upwind"`, `"central"`, `"lax_wendroff"`.
    """

    grid: Grid = eqx.field(static=True)
    bc: tuple
    velocity: AnyArray
    dt: AnyArray
    scheme: str = eqx.field(static=True)

    def __init__(
        self,
        grid: Grid,
        bc: BoundarySpec,
        velocity: Coefficient,
        dt: Coefficient,
        scheme: Literal["upwind", "central", "lax_wendroff"] = "upwind",
    ):
        if scheme not in SCHEMES:
            raise ValueError(f"`scheme` must be one of {SCHEMES}, got {scheme!r}.")
        self.grid, self.bc, self.scheme = grid, boundary_pairs(bc, grid), scheme
        self.velocity = velocity_vector(velocity, grid)
        xp = array_module(self.velocity)
        spacing = xp.asarray(grid.spacing, dtype=self.velocity.dtype)
        speed = xp.abs(xp.asarray(self.velocity)) / spacing
        dt = as_array(dt, "dt")
        if scheme == "upwind":
            limit = 1.0 / xp.maximum(xp.sum(speed), 1e-30)
            self.dt = check_dt(dt, limit, "upwind advection", "dt * sum_a |c_a| / h_a <= 1")
        elif scheme == "lax_wendroff":
            limit = 1.0 / xp.maximum(xp.max(speed), 1e-30)
            self.dt = check_dt(dt, limit, "Lax-Wendroff advection", "|c_a| dt / h_a <= 1")
        else:
            if xp is np and bool(np.any(np.asarray(self.velocity) != 0)):
                warn(
                    "Central (FTCS) advection is unconditionally unstable: every mode grows by "
                    "sqrt(1 + (c dt/h)^2 sin^2(kh)) per step. Use 'upwind' or 'lax_wendroff' "
                    "for long rollouts."
                )
            self.dt = check_dt(dt, np.inf, "central advection", "dt > 0")

    def step(self, u: State) -> State:
        c = self.velocity.astype(u.dtype)
        dt = self.dt.astype(u.dtype)
        if self.scheme == "lax_wendroff":
            for a in range(self.grid.ndim):
                nu = c[a] * dt
                u = (
                    u
                    - nu * central()(u, self.grid, self.bc, a)
                    + 0.5 * nu**2 * second()(u, self.grid, self.bc, a)
                )
            return u
        rate = jnp.zeros_like(u)
        for a in range(self.grid.ndim):
            if self.scheme == "upwind":
                du = upwind(u, c[a], self.grid, self.bc, a)
            else:
                du = central()(u, self.grid, self.bc, a)
            rate = rate - c[a] * du
        return u + dt * rate
