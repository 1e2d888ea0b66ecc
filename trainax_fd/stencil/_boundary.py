"""Boundary conditions as Modules that own ghost-cell padding."""

import abc
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from .._custom_types import AnyArray, Coefficient, Padded, State
from ._grid import Grid


def _slab(u: Array, axis: int, start: int, stop: int) -> Array:
    """`u[start:stop]` along array `axis`; negative bounds count from the end, 0 stops at it."""
    n = u.shape[axis]
    return lax.slice_in_dim(u, start % n, stop if stop > 0 else n + stop, axis=axis)


def _face_value(value: Array, u: Array, axis: int, grid: Grid, lead) -> Array:
    """Broadcast a boundary value to the face of spatial `axis`, kept one layer thick.

    `u` may already carry `lead` ghost layers `(low, high)` on the spatial axes before `axis`;
    the value is extended into them by repeating its edge.
    """
    value = jnp.asarray(value, dtype=u.dtype)
    if value.ndim == 0:
        return value
    face = (u.shape[0], *grid.shape[:axis], *grid.shape[axis + 1 :])
    try:
        value = jnp.broadcast_to(value, face)
    except ValueError:
        raise ValueError(
            f"A boundary value of shape {value.shape} does not broadcast to the face shape "
            f"{face} (channels, then the spatial axes other than axis {axis})."
        ) from None
    widths = [(0, 0), *lead, *[(0, 0)] * (len(face) - 1 - len(lead))]
    return jnp.expand_dims(jnp.pad(value, widths, mode="edge"), axis + 1)


def _odd_weights(width: int, dtype, low: bool) -> Array:
    """`[2w-1, ..., 3, 1]` on the low side (outermost ghost first), reversed on the high side."""
    w = jnp.arange(1, 2 * width, 2, dtype=dtype)
    return w[::-1] if low else w


class AbstractBoundary(eqx.Module):
    """A boundary condition on one side of one axis; it fills ghost points.

    Subclasses are final and implement `ghost` and `ghost_slope`.
    """

    placements: eqx.AbstractClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def ghost(
        self, u: Array, axis: int, low: bool, width: int, grid: Grid, lead: tuple = ()
    ) -> Array:
        """Ghost points beyond one side of spatial `axis`.

        **Arguments:**

        - `u`: one sample, shape `(channels, *spatial)`.
        - `axis`: the spatial axis (0-based, not counting channels).
        - `low`: the side at `x = 0` (`True`) or at `x = L` (`False`).
        - `width`: number of ghost layers.
        - `grid`: the grid `u` lives on.
        - `lead`: `(low, high)` ghost layers `u` already carries on the axes before `axis`.

        **Returns:** the ghost layers in array order, `u`'s shape with `width` along `axis`.
        """

    @abc.abstractmethod
    def ghost_slope(self, grid: Grid, axis: int) -> float:
        """How the first ghost value changes with the adjacent unknown (for Jacobi diagonals)."""


class Periodic(AbstractBoundary):
    """Periodic wrap-around; must be used on both sides of an axis."""

    placements = ("cell", "periodic")

    def ghost(self, u, axis, low, width, grid, lead=()):
        a = axis + 1
        return _slab(u, a, -width, 0) if low else _slab(u, a, 0, width)

    def ghost_slope(self, grid, axis):
        return 1.0 if grid.shape[axis] == 1 else 0.0


class Dirichlet(AbstractBoundary):
    """A prescribed value on the boundary: `u = value`.

    On a `"cell"` grid the boundary is the face half a cell beyond the last point and ghosts
    are odd reflections about it (`g = 2 value - u`); on a `"vertex"` grid the first ghost is
    the boundary vertex itself. `value` is a scalar or an array broadcastable to the face
    `(channels, *spatial without this axis)`; it is an array leaf (vmappable, differentiable).
    """

    value: AnyArray
    placements = ("cell", "vertex")

    def __init__(self, value: Coefficient = 0.0):
        self.value = jnp.asarray(value)

    def ghost(self, u, axis, low, width, grid, lead=()):
        a = axis + 1
        v = _face_value(self.value, u, axis, grid, lead)
        if grid.placement[axis] == "cell":
            inner = _slab(u, a, 0, width) if low else _slab(u, a, -width, 0)
            return 2 * v - jnp.flip(inner, axis=a)
        shape = list(u.shape)
        shape[a] = 1
        edge = jnp.broadcast_to(v, shape)
        if width == 1:
            return edge
        inner = _slab(u, a, 0, width - 1) if low else _slab(u, a, -(width - 1), 0)
        mirrored = 2 * v - jnp.flip(inner, axis=a)
        return jnp.concatenate([mirrored, edge] if low else [edge, mirrored], axis=a)

    def ghost_slope(self, grid, axis):
        return -1.0 if grid.placement[axis] == "cell" else 0.0


class Neumann(AbstractBoundary):
    """A prescribed outward normal derivative on the boundary: `du/dn = flux`.

    Needs a `"cell"` grid; ghosts are even reflections about the face plus the flux,
    `g_j = u_{j-1} + (2j - 1) h flux`. `Neumann()` is the zero-flux (insulated) wall.
    """

    flux: AnyArray
    placements = ("cell",)

    def __init__(self, flux: Coefficient = 0.0):
        self.flux = jnp.asarray(flux)

    def ghost(self, u, axis, low, width, grid, lead=()):
        a = axis + 1
        q = _face_value(self.flux, u, axis, grid, lead)
        inner = _slab(u, a, 0, width) if low else _slab(u, a, -width, 0)
        shape = [1] * u.ndim
        shape[a] = width
        odd = _odd_weights(width, u.dtype, low).reshape(shape)
        return jnp.flip(inner, axis=a) + odd * (grid.spacing[axis] * q)

    def ghost_slope(self, grid, axis):
        return 1.0


_NAMED = {"periodic": Periodic, "dirichlet": Dirichlet, "neumann": Neumann}

BoundarySpec = AbstractBoundary | str | Sequence
"""One condition for all sides, or per axis a condition or a `(low, high)` pair."""


def _one(bc) -> AbstractBoundary:
    if isinstance(bc, AbstractBoundary):
        return bc
    if isinstance(bc, str):
        if bc.lower() not in _NAMED:
            raise ValueError(
                f"Unknown boundary condition {bc!r}; expected one of {sorted(_NAMED)} or a "
                "`Periodic()`, `Dirichlet(value)` or `Neumann(flux)` instance."
            )
        return _NAMED[bc.lower()]()
    raise TypeError(
        "A boundary condition must be `Periodic()`, `Dirichlet(value)`, `Neumann(flux)` or one "
        f"of the names {sorted(_NAMED)}, got {type(bc).__name__}: {bc!r}."
    )


def boundary_pairs(
    bc: BoundarySpec, grid: Grid
) -> tuple[tuple[AbstractBoundary, AbstractBoundary], ...]:
    """Normalise a boundary specification to one `(low, high)` pair per axis and check it.

    `bc` is one condition for every side, or one entry per axis, each a condition or a
    `(low, high)` pair. Strings `"periodic"`, `"dirichlet"`, `"neumann"` mean the
    homogeneous condition.
    """
    if isinstance(bc, (AbstractBoundary, str)) or not isinstance(bc, Sequence):
        per_axis = [bc] * grid.ndim  # anything else fails in `_one` with a TypeError
    else:
        per_axis = list(bc)
        if grid.ndim == 1 and len(per_axis) == 2:
            per_axis = [tuple(per_axis)]  # on a 1D grid two entries can only mean (low, high)
        if len(per_axis) != grid.ndim:
            raise ValueError(
                f"`bc` must give one entry per axis ({grid.ndim} for this grid), got "
                f"{len(per_axis)}."
            )
    pairs = []
    for axis, entry in enumerate(per_axis):
        if isinstance(entry, (tuple, list)) and len(entry) == 2:
            low, high = _one(entry[0]), _one(entry[1])
        else:
            low = high = _one(entry)
        if isinstance(low, Periodic) != isinstance(high, Periodic):
            raise ValueError(
                f"Axis {axis}: `Periodic` must be used on both sides, got "
                f"({type(low).__name__}, {type(high).__name__})."
            )
        placement = grid.placement[axis]
        for side in (low, high):
            if placement not in side.placements:
                raise ValueError(
                    f"Axis {axis}: `{type(side).__name__}` does not fit a grid with placement "
                    f"{placement!r}; it needs placement in {side.placements}."
                )
        pairs.append((low, high))
    return tuple(pairs)


def pad(
    u: State,
    grid: Grid,
    bc: BoundarySpec,
    width: int | Sequence[int | tuple[int, int]] = 1,
) -> Padded:
    """Pad one sample with ghost points from its boundary conditions.

    **Arguments:**

    - `u`: one sample, shape `(channels, *grid.shape)`.
    - `grid`: the grid.
    - `bc`: boundary specification (see `boundary_pairs`).
    - `width`: ghost layers: one int for every side, or per axis an int or `(low, high)`.

    **Returns:** shape `(channels, *padded)` with `padded[a] = N_a + low_a + high_a`.
    """
    grid.check_state(u)
    pairs = boundary_pairs(bc, grid)
    widths = _widths(width, grid.ndim)
    for axis, ((low, high), (wl, wh)) in enumerate(zip(pairs, widths)):
        if max(wl, wh) > grid.shape[axis]:
            raise ValueError(
                f"`width` {max(wl, wh)} exceeds the {grid.shape[axis]} points of axis {axis}."
            )
        # later axes pad the already padded array, so corners are filled consistently
        lead = widths[:axis]
        parts = [low.ghost(u, axis, True, wl, grid, lead)] if wl else []
        parts.append(u)
        if wh:
            parts.append(high.ghost(u, axis, False, wh, grid, lead))
        u = jnp.concatenate(parts, axis=axis + 1) if len(parts) > 1 else u
    return u


def _widths(width, ndim: int) -> tuple[tuple[int, int], ...]:
    if isinstance(width, int):
        if width < 0:
            raise ValueError(f"`width` must be non-negative, got {width}.")
        return ((width, width),) * ndim
    width = tuple(width)
    if len(width) != ndim:
        raise ValueError(f"`width` must be an int or one entry per axis ({ndim}), got {width}.")
    out = []
    for w in width:
        lo, hi = (w, w) if isinstance(w, int) else tuple(w)
        if lo < 0 or hi < 0:
            raise ValueError(f"`width` must be non-negative, got {width}.")
        out.append((int(lo), int(hi)))
    return tuple(out)
