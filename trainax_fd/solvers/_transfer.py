"""Grid transfers of geometric multigrid: coarse grids, bilinear prolongation, full weighting.

Every transfer is a tensor product of one-dimensional ones, one per axis, chosen by where the
points sit (`Grid.placement`) and by the boundary condition on each side:

- `"vertex"` axes (Dirichlet) hold `N = 2 n + 1` interior vertices; coarse point `j` is fine
  point `2 j + 1`, and the boundary vertices carry zero corrections.
- `"periodic"` axes hold `N = 2 n` points; coarse point `j` is fine point `2 j`, wrapping.
- `"cell"` axes hold `N = 2 n` cells; two fine cells make one coarse cell, and prolongation
  reads one ghost beyond each side from the homogeneous condition there (odd reflection for
  Dirichlet, even for Neumann, wrap-around for periodic).

Prolongation `P` is (bi/tri)linear interpolation; restriction is its scaled transpose
`R = P^T / 2^d`, the full weighting, so that `R A P` is symmetric and a V-cycle with symmetric
smoothing is a symmetric preconditioner.
"""

import functools
import itertools

import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array

from ..stencil import Grid, Neumann, Periodic

MAX_COARSE = 1024
"""Most points of the coarsest grid, which is solved directly with a dense matrix."""

STOP = 256
"""Coarsening stops at the first grid with at most this many points (dense solve there)."""


def axis_rules(grid: Grid, pairs: tuple) -> tuple[tuple[str, str, str], ...]:
    """Per axis `(placement, low rule, high rule)`, rules `"dirichlet"|"neumann"|"periodic"`."""
    rules = []
    for placement, (low, high) in zip(grid.placement, pairs):
        rules.append((placement, _rule(low), _rule(high)))
    return tuple(rules)


def _rule(side) -> str:
    if isinstance(side, Periodic):
        return "periodic"
    return "neumann" if isinstance(side, Neumann) else "dirichlet"


def _coarse_size(n: int, placement: str) -> int | None:
    """Points of the coarse axis, or `None` where the axis does not halve."""
    if placement == "vertex":
        return (n - 1) // 2 if n >= 3 and n % 2 == 1 else None
    return n // 2 if n >= 2 and n % 2 == 0 else None


def coarse_grids(grid: Grid, max_levels: int | None = None) -> tuple[Grid, ...]:
    """The grid hierarchy, finest first: halve every axis while all of them halve.

    Coarsening stops at the first grid with at most `STOP` points or after `max_levels` grids.

    **Raises:** `ValueError` if the coarsest grid has more than `MAX_COARSE` points.
    """
    grids = [grid]
    while max_levels is None or len(grids) < max_levels:
        g = grids[-1]
        if g.size <= STOP:
            break
        sizes = [_coarse_size(n, p) for n, p in zip(g.shape, g.placement)]
        if any(s is None for s in sizes):
            break
        grids.append(Grid(tuple(sizes), g.extent, g.placement))
    coarsest = grids[-1]
    if coarsest.size > MAX_COARSE:
        stuck = [
            f"axis {a} ({n} {p} points)"
            for a, (n, p) in enumerate(zip(coarsest.shape, coarsest.placement))
            if _coarse_size(n, p) is None
        ]
        why = (
            f"after {len(grids) - 1} halving(s) at {coarsest.shape}, where {', '.join(stuck)} "
            "does not halve"
            if stuck
            else f"within `max_levels`={max_levels} grids"
        )
        raise ValueError(
            f"`grid` of shape {grid.shape} does not coarsen to at most {MAX_COARSE} points "
            f"for the direct coarse solve: it stops {why}, with {coarsest.size} points. "
            "Multigrid halves every axis: 'cell' and 'periodic' axes need N = c 2^m points, "
            "'vertex' axes N = c 2^m - 1, with a small c (e.g. 1024 cells or 1023 vertices)."
        )
    return tuple(grids)


def _sl(u: Array, ax: int, start: int, stop: int, stride: int = 1) -> Array:
    return lax.slice_in_dim(u, start, stop, stride, axis=ax)


def _ghosts(u: Array, ax: int, low: str, high: str) -> tuple[Array, Array]:
    """One homogeneous ghost layer beyond each side of axis `ax` (cell axes)."""
    n = u.shape[ax]
    first, last = _sl(u, ax, 0, 1), _sl(u, ax, n - 1, n)
    sign = {"dirichlet": -1.0, "neumann": 1.0}
    lo = last if low == "periodic" else sign[low] * first
    hi = first if high == "periodic" else sign[high] * last
    return lo, hi


def _prolong_pieces(c: Array, ax: int, rule: tuple[str, str, str]) -> list:
    """Interpolation along `ax` as pieces `(values, low, high)`: the fine axis is the sum of
    the pieces dilated (a zero between neighbours) and padded by `low`/`high` zeros."""
    placement, low, high = rule
    n = c.shape[ax]
    if placement == "vertex":  # fine 2j+1 = c_j, fine 2j = (c_{j-1} + c_j) / 2, zero outside
        cfg = [(0, 0, 0)] * c.ndim
        cfg[ax] = (1, 1, 0)
        cp = lax.pad(c, jnp.zeros((), c.dtype), cfg)
        return [(c, 1, 1), (0.5 * (_sl(cp, ax, 0, n + 1) + _sl(cp, ax, 1, n + 2)), 0, 0)]
    if placement == "periodic":  # fine 2j = c_j, fine 2j+1 = (c_j + c_{j+1}) / 2
        nxt = lax.concatenate([_sl(c, ax, 1, n), _sl(c, ax, 0, 1)], ax)
        return [(c, 0, 1), (0.5 * (c + nxt), 1, 0)]
    lo, hi = _ghosts(c, ax, low, high)  # cells: 3/4 own coarse cell, 1/4 the nearer neighbour
    cp = lax.concatenate([lo, c, hi], ax)
    left, right = _sl(cp, ax, 0, n), _sl(cp, ax, 2, n + 2)
    return [(0.75 * c + 0.25 * left, 0, 1), (0.75 * c + 0.25 * right, 1, 0)]


def _restrict_axis(f: Array, ax: int, rule: tuple[str, str, str]) -> Array:
    placement, low, high = rule
    nf = f.shape[ax]
    if placement == "vertex":  # (f_{2j} + 2 f_{2j+1} + f_{2j+2}) / 4
        return 0.25 * (_sl(f, ax, 0, nf - 2, 2) + _sl(f, ax, 2, nf, 2)) + 0.5 * _sl(f, ax, 1, nf, 2)
    even, odd = _sl(f, ax, 0, nf, 2), _sl(f, ax, 1, nf, 2)
    n = nf // 2
    if placement == "periodic":  # (f_{2j-1} + 2 f_{2j} + f_{2j+1}) / 4, wrapping
        before = lax.concatenate([_sl(odd, ax, n - 1, n), _sl(odd, ax, 0, n - 1)], ax)
        return 0.25 * (before + odd) + 0.5 * even
    # cells: (f_{2j-1} + 3 f_{2j} + 3 f_{2j+1} + f_{2j+2}) / 8, ghosts folded back
    lo, hi = _ghosts(f, ax, low, high)
    before = lax.concatenate([lo, _sl(odd, ax, 0, n - 1)], ax)
    after = lax.concatenate([_sl(even, ax, 1, n), hi], ax)
    return 0.375 * (even + odd) + 0.125 * (before + after)


def prolong(c: Array, rules: tuple) -> Array:
    """Bilinear (trilinear) interpolation of a coarse correction `(channels, *coarse)`.

    Built axis by axis into `2^d` coarse-sized pieces, then interleaved in one sum of dilated
    pieces: one loop over the fine points, no intermediate fine arrays.
    """
    zero = jnp.zeros((), c.dtype)
    if all(placement == "vertex" for placement, _, _ in rules):  # one stencil, one pad
        z = lax.pad(c, zero, [(0, 0, 0)] + [(2, 2, 1)] * len(rules))
        fine = []
        for offset in itertools.product((-1, 0, 1), repeat=len(rules)):
            weight = 0.5 ** sum(map(abs, offset))
            start = [0] + [1 + o for o in offset]
            stop = [c.shape[0]] + [s + 2 * n + 1 for s, n in zip(start[1:], c.shape[1:])]
            fine.append(weight * lax.slice(z, start, stop))
        return functools.reduce(lax.add, fine)
    terms = [(c, [])]
    for axis, rule in enumerate(rules):
        terms = [
            (piece, [*cfg, (lo, hi, 1)])
            for values, cfg in terms
            for piece, lo, hi in _prolong_pieces(values, axis + 1, rule)
        ]
    fine = [lax.pad(values, zero, [(0, 0, 0), *cfg]) for values, cfg in terms]
    return functools.reduce(lax.add, fine)


def restrict(f: Array, rules: tuple) -> Array:
    """Full weighting `P^T / 2^d` of a fine residual `(channels, *fine)`."""
    for axis, rule in enumerate(rules):
        f = _restrict_axis(f, axis + 1, rule)
    return f


def coarsen_field(k: Array, rules: tuple) -> Array:
    """A point coefficient `(channels, *fine)` (the reaction `c`) on the coarse grid; scalars
    stay scalars. Cells average their two children per axis; vertices take the full weighting
    of the fine points around them (wrapping on periodic axes), which keeps constants."""
    if k.ndim == 0:
        return k
    for axis, (placement, _, _) in enumerate(rules):
        ax = axis + 1
        if placement == "cell":
            even, odd = _halves(k, ax)
            k = 0.5 * (even + odd)
        else:
            k = _restrict_axis(k, ax, (placement, "dirichlet", "dirichlet"))
    return k


def _halves(u: Array, ax: int) -> tuple[Array, Array]:
    """Even and odd entries along `ax`."""
    n = u.shape[ax]
    return _sl(u, ax, 0, n, 2), _sl(u, ax, 1, n, 2)


def _series(*terms: tuple[float, Array]) -> Array:
    """`1 / sum(w / K)`: conductances in series. A zero `K` (a Neumann face) blocks the flux
    and an infinite one (no face) adds nothing, by IEEE arithmetic."""
    return 1 / functools.reduce(lax.add, [w / k for w, k in terms])


def coarsen_faces(faces: tuple[Array, ...], rules: tuple) -> tuple[Array, ...]:
    """Coarse face coefficients `k_face / H^2` from the fine ones `k_face / h^2`, per axis.

    A face coefficient is a conductance: `h` over the resistance `int dx / k` between two
    unknowns (or an unknown and the boundary, where the folded boundary face of
    `FaceOperator` holds the half cell). Along the flux the fine resistances between two coarse
    unknowns add up (the harmonic mean of the fine faces in series); across it the coarse face
    samples the fine faces on its line (vertices) or averages the two it covers (cells).
    """
    coarse = []
    for axis, face in enumerate(faces):
        for b, (placement, low, _) in enumerate(rules):
            bx = b + 1
            if b != axis:  # across the flux
                if placement == "cell":
                    even, odd = _halves(face, bx)
                    face = 0.5 * (even + odd)
                else:  # the coarse line is fine line 2j+1 (vertex) or 2j (periodic)
                    start = 1 if placement == "vertex" else 0
                    face = _sl(face, bx, start, face.shape[bx], 2)
                continue
            n = face.shape[bx] - 1  # fine points
            if placement == "vertex":  # coarse face m spans fine faces 2m, 2m+1
                even, odd = _halves(face, bx)
                face = _series((0.5, even), (0.5, odd))
            elif placement == "periodic":  # coarse face m spans fine faces 2m-1, 2m
                even = _sl(face, bx, 0, n + 1, 2)
                before = lax.concatenate([_sl(face, bx, n - 1, n), _sl(face, bx, 1, n, 2)], bx)
                face = _series((0.5, before), (0.5, even))
            else:  # cells: coarse face m is fine face 2m, with half of 2m-1 and 2m+1 around it
                even = _sl(face, bx, 0, n + 1, 2)
                odd = _sl(face, bx, 1, n, 2)
                if low == "periodic":
                    last = _sl(odd, bx, n // 2 - 1, n // 2)
                    before = lax.concatenate([last, odd], bx)
                    after = lax.concatenate([odd, _sl(odd, bx, 0, 1)], bx)
                    face = _series((0.25, before), (0.5, even), (0.25, after))
                else:  # at a wall: the folded half cell and half of the next face
                    nothing = jnp.full_like(_sl(odd, bx, 0, 1), jnp.inf)
                    before = lax.concatenate([nothing, odd], bx)
                    after = lax.concatenate([odd, nothing], bx)
                    face = _series((0.25, before), (0.5, even), (0.25, after))
            face = face / 4  # h^2 -> H^2 along the flux
        coarse.append(face)
    return tuple(coarse)


def parity(shape: tuple[int, ...], modulus: tuple[int, ...] | int = 2) -> np.ndarray:
    """The colour of every point, `shape`: red-black (sum of indices mod 2) for `modulus=2`,
    else the mixed-radix number of the indices mod `modulus` per axis (multi-colour)."""
    idx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    if modulus == 2:
        return (sum(idx) % 2).astype(np.int32)
    colour = np.zeros(shape, np.int32)
    for i, m in zip(idx, modulus):
        colour = colour * m + i % m
    return colour
