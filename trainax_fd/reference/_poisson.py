"""Relaxation sweeps for `div(k grad u) + s = 0` as a stepper."""

from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._custom_types import AnyArray, Coefficient, State
from ..stencil import BoundarySpec, Grid, boundary_pairs, div_k_grad, div_k_grad_diagonal
from ._base import AbstractStepper, as_array, check_coefficient, is_concrete
from ._diffusion import coefficient_field

METHODS = ("jacobi", "red_black")


class PoissonRelaxation(AbstractStepper):
    """One relaxation sweep for `div(k grad u) + source = 0` per call, any channels.

    With the residual `r = div(k grad u) + source` and `D` the diagonal of `div(k grad .)`
    (boundary ghosts included), a sweep updates `u <- u - omega r / D`:

    - `"jacobi"`: every point at once (weighted Jacobi; converges for `0 < omega <= 1`, and
      `omega = 2/3` is the classic multigrid smoother);
    - `"red_black"`: first the points with even index sum, then, with the residual refreshed,
      the odd ones (Gauss-Seidel for `omega = 1`, SOR for `1 < omega < 2`).

    Rolled out, the stepper converges to the discrete steady state.

    **Arguments:**

    - `grid`, `bc`: the grid and boundary specification (non-zero Dirichlet values or Neumann
      fluxes enter through the ghosts).
    - `conductivity`: `k`, scalar or field `(1 or channels, *spatial)`; an array leaf.
    - `source`: `s`, scalar or field `(1 or channels, *spatial)`; an array leaf.
    - `omega`: relaxation weight; an array leaf.
    - `method`: `"jacobi"` or `"red_black"`.
    """

    grid: Grid = eqx.field(static=True)
    bc: tuple
    conductivity: AnyArray
    source: AnyArray
    omega: AnyArray
    method: str = eqx.field(static=True)

    def __init__(
        self,
        grid: Grid,
        bc: BoundarySpec,
        conductivity: Coefficient = 1.0,
        source: Coefficient = 0.0,
        omega: Coefficient = 1.0,
        method: Literal["jacobi", "red_black"] = "jacobi",
    ):
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
        self.grid, self.bc, self.method = grid, boundary_pairs(bc, grid), method
        self.conductivity = check_coefficient(
            coefficient_field(conductivity, grid, "conductivity"), "conductivity"
        )
        self.source = check_coefficient(coefficient_field(source, grid, "source"), "source")
        self.omega = as_array(omega, "omega")
        upper = 1.0 if method == "jacobi" else 2.0
        if is_concrete(self.omega) and not 0.0 < float(self.omega) <= upper:
            raise ValueError(
                f"`omega` must lie in (0, {upper:g}] for {method} to converge, "
                f"got {float(self.omega)}."
            )

    @eqx.filter_jit  # one compiled program, also when called eagerly
    def residual(self, u: State) -> State:
        """`div(k grad u) + source`, zero at the discrete solution; shape of `u`."""
        self.grid.check_state(u)
        k = self.conductivity.astype(u.dtype)
        return div_k_grad(u, k, self.grid, self.bc) + self.source.astype(u.dtype)

    def step(self, u: State) -> State:
        k = self.conductivity.astype(u.dtype)
        diagonal = div_k_grad_diagonal(u, k, self.grid, self.bc)
        update = self.omega.astype(u.dtype) / diagonal
        if self.method == "jacobi":
            return u - update * self.residual(u)
        parity = sum(np.meshgrid(*[np.arange(n) for n in self.grid.shape], indexing="ij")) % 2
        for colour in (0, 1):
            mask = jnp.asarray(parity[None] == colour, dtype=u.dtype)
            u = u - mask * update * self.residual(u)
        return u
