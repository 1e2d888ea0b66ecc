"""The equation as a linear system, solved with implicit derivatives.

`div(k grad u) - c u + s = 0` with boundary values `g` is the linear system `A u = f`,
`A u = c u - div_k_grad(u, k, homogeneous bc)` and `f = s + div_k_grad(0, k, bc)`: the boundary
values enter the right-hand side through the ghosts. `jax.lax.custom_linear_solve` then
differentiates the solution without unrolling a single cycle: the tangent is one more solve,
`A du = df - dA u`, and a gradient one adjoint solve (`A` is symmetric), so the cost of a
derivative is that of one solve, whatever the number of cycles.
"""

from collections.abc import Callable

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from ..stencil import Dirichlet, Grid, Neumann, Periodic, div_k_grad


def homogeneous(pairs: tuple) -> tuple:
    """The same boundary conditions with zero values and fluxes."""

    def zero(side):
        if isinstance(side, Periodic):
            return side
        return Neumann() if isinstance(side, Neumann) else Dirichlet()

    return tuple((zero(low), zero(high)) for low, high in pairs)


def linear_system(
    grid: Grid, pairs: tuple, conductivity: Array, source: Array, reaction, shape: tuple
) -> tuple[Callable, Array]:
    """`(matvec, f)` of the system `A u = f`; `matvec` is the stencil core's operator, so the
    derivatives with respect to `k` and `c` are those of `div_k_grad`.

    `f = s + div_k_grad(0, k, grid, bc)`: at zero the stencil sees only the ghosts, so the
    boundary term is, next to each wall, the wall's face conductance (the edge `k`, as
    `div_k_grad` averages it) times the ghost the boundary condition gives, over `h^2`. It is
    built from the thin ghost layers alone (the boundary conditions' own `ghost`), not by a
    stencil pass over the grid.
    """
    hom = homogeneous(pairs)
    zero = jnp.zeros(shape, source.dtype)
    k = jnp.asarray(conductivity, source.dtype)
    f = jnp.broadcast_to(source, shape)
    for axis, (low, high) in enumerate(pairs):
        if isinstance(low, Periodic):
            continue
        n, h2 = grid.shape[axis], grid.spacing[axis] ** 2
        for side, is_low in ((low, True), (high, False)):
            ghost = side.ghost(zero, axis, is_low, 1, grid)  # (channels, ..., 1, ...)
            edge = (
                k
                if k.ndim == 0
                else lax.slice_in_dim(k, *((0, 1) if is_low else (n - 1, n)), axis=axis + 1)
            )
            widths = [(0, 0, 0)] * len(shape)
            widths[axis + 1] = (0, n - 1, 0) if is_low else (n - 1, 0, 0)
            term = jnp.broadcast_to(edge * ghost / h2, ghost.shape)
            f = f + lax.pad(term, jnp.zeros((), f.dtype), widths)

    def matvec(u: Array) -> Array:
        out = -div_k_grad(u, conductivity, grid, hom)
        return out if reaction is None else out + reaction * u

    return matvec, f


def implicit_solve(matvec: Callable, f: Array, solver: Callable, adjoint_solver: Callable):
    """`(u, aux)` with `A u = f`: `solver(f)` gives `(u, aux)`; derivatives come from
    `adjoint_solver` (`A` is symmetric), never from differentiating `solver`'s iterations."""
    return lax.custom_linear_solve(
        matvec,
        f,
        lambda _, b: solver(b),
        lambda _, b: adjoint_solver(b),
        symmetric=True,
        has_aux=True,
    )
