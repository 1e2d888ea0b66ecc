"""Backward-Euler diffusion with variable conductivity: one multigrid solve per step."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._custom_types import AnyArray, Coefficient, State
from ..solvers import SolveReport, solve
from ..solvers._solve import prepare
from ..stencil import BoundarySpec, Grid, boundary_pairs
from ._base import AbstractStepper


class ImplicitDiffusion(AbstractStepper):
    """One backward-Euler step of `u_t = div(k grad u) + source`, any channels.

    Each step solves `u_next - dt div(k grad u_next) = u + dt source` with geometric multigrid
    (`trainax_fd.solvers.solve`, from `u` as the first guess), so it is stable for every
    `dt > 0`: large steps go to the steady state `div(k grad u) + source = 0`. Boundary values
    hold at the new time. Differentiable with respect to `u`, the coefficients and the
    boundary values by implicit differentiation (one adjoint solve per step).

    **Arguments:**

    - `grid`, `bc`: the grid and boundary specification; grid sizes must coarsen (e.g. 64 cells
      or 63 vertices per axis).
    - `conductivity`: `k > 0`, scalar or field `(1 or channels, *spatial)`; an array leaf.
    - `dt`: time step `> 0`; an array leaf.
    - `source`: constant source, scalar or `(1 or channels, *spatial)`; an array leaf.
    - `tol`: relative residual of each solve (`None`: the rounding floor, see `solve`).
    - `method`, `cycle`, `smoothing`, `max_iterations`: passed to `solve`.

    !!! example
        ```python
        grid = Grid((63, 63), placement="vertex")
        stepper = ImplicitDiffusion(grid, "dirichlet", k, dt=0.1)  # 400x the explicit limit
        u1 = stepper(u0)
        ```
    """

    grid: Grid = eqx.field(static=True)
    bc: tuple
    conductivity: AnyArray
    dt: AnyArray
    source: AnyArray
    tol: float | None = eqx.field(static=True)
    method: str = eqx.field(static=True)
    cycle: str = eqx.field(static=True)
    smoothing: tuple[int, int] = eqx.field(static=True)
    max_iterations: int = eqx.field(static=True)

    def __init__(
        self,
        grid: Grid,
        bc: BoundarySpec,
        conductivity: Coefficient,
        dt: Coefficient,
        source: Coefficient = 0.0,
        *,
        tol: float | None = None,
        method: Literal["mg", "mgcg"] = "mg",
        cycle: Literal["V", "W", "F"] = "V",
        smoothing: tuple[int, int] = (2, 2),
        max_iterations: int = 50,
    ):
        self.grid, self.bc = grid, boundary_pairs(bc, grid)
        self.conductivity = _array("conductivity", conductivity)
        self.source = _array("source", source)
        self.dt = _array("dt", dt)
        if self.dt.ndim != 0:
            raise ValueError(f"`dt` must be a scalar, got shape {self.dt.shape}.")
        if not isinstance(self.dt, jax.core.Tracer) and not float(self.dt) > 0:
            raise ValueError(f"`dt` must be positive, got {float(self.dt)}.")
        self.tol, self.method, self.cycle = tol, method, cycle
        self.smoothing, self.max_iterations = smoothing, max_iterations
        options = self._options(None, 1.0)
        prepare(grid, bc, self.conductivity, self.source, **options)  # the solver's checks
        self.smoothing = tuple(smoothing)

    def _options(self, u, reaction) -> dict:
        options = dict(reaction=reaction, initial=u, tol=self.tol, method=self.method)
        options.update(cycle=self.cycle, smoothing=self.smoothing, fmg=False)
        options.update(max_iterations=self.max_iterations, coarse="rediscretise", max_levels=None)
        return options

    def solve(self, u: State) -> tuple[State, SolveReport]:
        """`(u_next, report)`: the step and the solver's `SolveReport`."""
        self.grid.check_state(u)
        dt = self.dt.astype(u.dtype)
        source = u / dt + self.source.astype(u.dtype)
        k = self.conductivity.astype(u.dtype)
        return solve(self.grid, self.bc, k, source, **self._options(u, 1 / dt))

    def step(self, u: State) -> State:
        return self.solve(u)[0]


def _array(name: str, value) -> AnyArray:
    try:
        out = jnp.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be a float or an array, got {type(value).__name__}: {value!r}."
        ) from None
    if not jnp.issubdtype(out.dtype, jnp.number) or jnp.issubdtype(out.dtype, jnp.complexfloating):
        raise TypeError(f"`{name}` must be real and numeric, got dtype {out.dtype}.")
    return out.astype(jnp.result_type(float)) if np.issubdtype(out.dtype, np.integer) else out
