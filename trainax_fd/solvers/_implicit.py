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
    derivatives with respect to `k` and `c` are those of `div_k_grad`."""
    zero = jnp.zeros(shape, source.dtype)
    f = jnp.broadcast_to(source, shape) + div_k_grad(zero, conductivity, grid, pairs)
    hom = homogeneous(pairs)

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
