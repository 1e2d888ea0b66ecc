"""Named stencils (forward, backward, central, second) and sign-switched upwinding."""

import jax.numpy as jnp

from .._checks import check_int
from .._custom_types import Coefficient, State
from ._boundary import BoundarySpec
from ._grid import Grid
from ._stencil import Stencil, _check_axis


def forward(order: int = 1, accuracy: int = 1) -> Stencil:
    """One-sided forward stencil on offsets `0, 1, ..., order + accuracy - 1`.

    `forward()` is `(u[i+1] - u[i]) / h`.
    """
    n = check_int("order", order, 1) + check_int("accuracy", accuracy, 1)
    return Stencil.from_offsets(tuple(range(n)), order)


def backward(order: int = 1, accuracy: int = 1) -> Stencil:
    """One-sided backward stencil on offsets `-(order + accuracy - 1), ..., 0`.

    `backward()` is `(u[i] - u[i-1]) / h`.
    """
    n = check_int("order", order, 1) + check_int("accuracy", accuracy, 1)
    return Stencil.from_offsets(tuple(range(1 - n, 1)), order)


def central(order: int = 1, accuracy: int = 2) -> Stencil:
    """Symmetric stencil of even `accuracy`; `central()` is `(u[i+1] - u[i-1]) / (2h)`."""
    check_int("order", order, 1)
    if check_int("accuracy", accuracy, 2) % 2:
        raise ValueError(f"`accuracy` of a central stencil must be even, got {accuracy}.")
    reach = (order + 1) // 2 - 1 + accuracy // 2
    return Stencil.from_offsets(tuple(range(-reach, reach + 1)), order)


def second(accuracy: int = 2) -> Stencil:
    """The central second difference; `second()` is `(u[i-1] - 2u[i] + u[i+1]) / h^2`."""
    return central(2, accuracy)


def upwind(
    u: State,
    velocity: Coefficient,
    grid: Grid,
    bc: BoundarySpec,
    axis: int = 0,
    accuracy: int = 1,
) -> State:
    """First derivative along `axis`, one-sided against the flow at every point.

    Where `velocity > 0` information comes from the left and the backward stencil is used,
    elsewhere the forward one.

    **Arguments:**

    - `u`: one sample, shape `(channels, *spatial)`.
    - `velocity`: the advecting velocity along `axis`; a scalar or an array broadcastable to
      `u` (a field choosing the side per point).
    - `grid`, `bc`: the grid and boundary specification.
    - `axis`: spatial axis.
    - `accuracy`: order of the one-sided stencils.

    **Returns:** `du/dx_axis`, shape `(channels, *spatial)`.
    """
    _check_axis(axis, grid)
    left = backward(1, accuracy)(u, grid, bc, axis)
    right = forward(1, accuracy)(u, grid, bc, axis)
    return jnp.where(jnp.asarray(velocity) > 0, left, right)
