"""Differential operators built from stencils: gradient, Laplacian, `div(k grad u)`.

Each is compiled as one program (`eqx.filter_jit`; inlined when called inside a compiled
function): called eagerly, their ~20 array operations would each compile on their own."""

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from .._custom_types import Coefficient, State
from ._boundary import BoundarySpec, Periodic, boundary_pairs, pad
from ._grid import Grid
from ._named import central, second


@eqx.filter_jit
def derivative(
    u: State, grid: Grid, bc: BoundarySpec, axis: int = 0, order: int = 1, accuracy: int = 2
) -> State:
    """Central finite-difference derivative of `order` along spatial `axis`; same shape back."""
    return central(order, accuracy)(u, grid, bc, axis)


@eqx.filter_jit
def gradient(
    u: State, grid: Grid, bc: BoundarySpec, accuracy: int = 2
) -> Float[Array, "dim channels *spatial"]:
    """Central-difference gradient of one sample.

    **Returns:** shape `(dim, channels, *spatial)`: the derivative along each spatial axis.
    """
    stencil = central(1, accuracy)
    return jnp.stack([stencil(u, grid, bc, a) for a in range(grid.ndim)])


@eqx.filter_jit
def laplacian(u: State, grid: Grid, bc: BoundarySpec, accuracy: int = 2) -> State:
    """Sum of central second differences over every spatial axis; same shape back."""
    stencil = second(accuracy)
    out = stencil(u, grid, bc, 0)
    for a in range(1, grid.ndim):
        out = out + stencil(u, grid, bc, a)
    return out


def _coefficient(k: Coefficient, u: State, grid: Grid, name: str = "k") -> Array:
    k = jnp.asarray(k, dtype=u.dtype)
    if k.ndim == 0:
        return k
    if k.ndim != u.ndim or k.shape[1:] != grid.shape or k.shape[0] not in (1, u.shape[0]):
        raise ValueError(
            f"`{name}` must be a scalar or have shape (1 or channels, "
            f"{', '.join(map(str, grid.shape))}), got {k.shape}."
        )
    return k


def _faces(k: Array, grid: Grid, bc: BoundarySpec, axis: int) -> Array:
    """Arithmetic means of `k` on the `N + 1` faces along `axis` (scalar `k` stays scalar)."""
    if k.ndim == 0:
        return k
    low, _ = boundary_pairs(bc, grid)[axis]
    widths = [(0, 0)] * k.ndim
    widths[axis + 1] = (1, 1)
    kp = jnp.pad(k, widths, mode="wrap" if isinstance(low, Periodic) else "edge")
    n = grid.shape[axis]
    left = lax.slice_in_dim(kp, 0, n + 1, axis=axis + 1)
    return 0.5 * (left + lax.slice_in_dim(kp, 1, n + 2, axis=axis + 1))


@eqx.filter_jit
def div_k_grad(u: State, k: Coefficient, grid: Grid, bc: BoundarySpec) -> State:
    """The conservative second-order discretisation of `div(k grad u)`.

    Along each axis, `(k_{i+1/2} (u_{i+1} - u_i) - k_{i-1/2} (u_i - u_{i-1})) / h^2` with `k`
    averaged arithmetically to the faces; at a boundary the face value repeats the edge point
    (wraps on periodic axes) and `u` takes its ghost from `bc`.

    **Arguments:**

    - `u`: one sample, shape `(channels, *spatial)`.
    - `k`: a scalar or a field of shape `(1 or channels, *spatial)`.
    - `grid`, `bc`: the grid and boundary specification.

    **Returns:** shape `(channels, *spatial)`.
    """
    k = _coefficient(k, u, grid)
    out = jnp.zeros_like(u)
    for axis in range(grid.ndim):
        widths = [(0, 0)] * grid.ndim
        widths[axis] = (1, 1)
        up = pad(u, grid, bc, widths)
        flux = _faces(k, grid, bc, axis) * jnp.diff(up, axis=axis + 1)
        out = out + jnp.diff(flux, axis=axis + 1) / grid.spacing[axis] ** 2
    return out


@eqx.filter_jit
def div_k_grad_diagonal(u: State, k: Coefficient, grid: Grid, bc: BoundarySpec) -> State:
    """The diagonal of the linear operator `u -> div_k_grad(u, k, ...)`, ghosts included.

    Used by Jacobi and Gauss-Seidel sweeps. **Returns:** shape of `u` broadcast with `k`.
    """
    grid.check_state(u)
    k = _coefficient(k, u, grid)
    pairs = boundary_pairs(bc, grid)
    diag = jnp.zeros_like(u)
    for axis in range(grid.ndim):
        faces = jnp.broadcast_to(_faces(k, grid, bc, axis), _face_shape(u, axis))
        n, h2 = grid.shape[axis], grid.spacing[axis] ** 2
        moved = jnp.moveaxis(faces, axis + 1, 0)
        d = -(moved[:-1] + moved[1:])
        low, high = pairs[axis]
        d = d.at[0].add(low.ghost_slope(grid, axis) * moved[0])
        d = d.at[n - 1].add(high.ghost_slope(grid, axis) * moved[n])
        diag = diag + jnp.moveaxis(d, 0, axis + 1) / h2
    return diag


def _face_shape(u: State, axis: int) -> tuple[int, ...]:
    shape = list(u.shape)
    shape[axis + 1] += 1
    return tuple(shape)
