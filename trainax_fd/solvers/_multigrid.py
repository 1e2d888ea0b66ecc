"""The multigrid hierarchy as a Module: V-, W- and F-cycles and full multigrid."""

from typing import Literal

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from ..stencil import Grid
from ._operator import FaceOperator, dense, face_operator, galerkin, inverse
from ._smooth import smooth
from ._transfer import coarse_grids, coarsen_faces, coarsen_field, prolong, restrict

CYCLES = ("V", "W", "F")
COARSE = ("rediscretise", "galerkin")


class Multigrid(eqx.Module):
    """Geometric multigrid for `A u = f`, `A u = c u - div(k grad u)` with homogeneous
    boundary conditions (the stencil core's `div_k_grad`, negated, plus a reaction `c`).

    Levels halve every axis until a grid has at most 256 points or an axis no longer halves
    (at most 1024 points), and that grid is solved with a dense matrix.
    Red-black Gauss-Seidel smooths, red points first (a `symmetric` cycle sweeps black first
    after the coarse correction, so that with equal pre- and post-smoothing it is a symmetric
    preconditioner; red first converges faster as a solver); full weighting restricts and
    bilinear interpolation prolongs. Coarse operators rediscretise `k` (and `c`) averaged to
    the coarse points, or are the Galerkin products `R A P`.

    Build it inside a compiled function; the solvers do (`solve`). Coefficients are array
    leaves: a new `k` of the same shape does not recompile.

    **Arguments:**

    - `grid`: the finest grid.
    - `rules`: per axis `(placement, low, high)` from `_transfer.axis_rules`.
    - `conductivity`: `k`, scalar or `(1 or channels, *spatial)`.
    - `reaction`: `c >= 0`, scalar or `(1 or channels, *spatial)`.
    - `singular`: whether `A` has the constants as null space (no Dirichlet side, no `c`).
    - `cycle`: `"V"`, `"W"` or `"F"`.
    - `smoothing`: sweeps `(before, after)` the coarse correction.
    - `symmetric`: sweep the colours backwards after the coarse correction.
    - `coarse`: `"rediscretise"` or `"galerkin"`.
    - `max_levels`: most grids in the hierarchy (`None`: as many as halve).
    """

    operators: tuple
    coarse_matrix: Array
    grids: tuple[Grid, ...] = eqx.field(static=True)
    rules: tuple = eqx.field(static=True)
    singular: bool = eqx.field(static=True)
    cycle: str = eqx.field(static=True)
    smoothing: tuple[int, int] = eqx.field(static=True)
    symmetric: bool = eqx.field(static=True)

    def __init__(
        self,
        grid: Grid,
        rules: tuple,
        conductivity: Array,
        reaction: Array,
        *,
        singular: bool = False,
        cycle: Literal["V", "W", "F"] = "V",
        smoothing: tuple[int, int] = (2, 2),
        symmetric: bool = False,
        coarse: Literal["rediscretise", "galerkin"] = "rediscretise",
        max_levels: int | None = None,
    ):
        self.grids = coarse_grids(grid, max_levels)
        self.rules, self.singular = rules, singular
        self.cycle, self.smoothing, self.symmetric = cycle, tuple(smoothing), symmetric
        k, c = jnp.asarray(conductivity), jnp.asarray(reaction)
        dtype = k.dtype
        ops = [face_operator(grid, rules, k, c)]
        for g in self.grids[1:]:
            if coarse == "galerkin":
                ops.append(galerkin(ops[-1], rules, g))
            else:
                c = coarsen_field(c, rules)
                ops.append(FaceOperator(coarsen_faces(ops[-1].faces, rules), c, ops[0].periodic))
        self.operators = tuple(ops)
        channels = max(1 if a.ndim == 0 else a.shape[0] for a in (k, jnp.asarray(reaction)))
        matrix = dense(ops[-1], self.grids[-1], channels, dtype)
        if singular:  # the constants span the null space: lift it, solutions get zero mean
            n = matrix.shape[-1]
            scale = jnp.mean(jnp.diagonal(matrix, axis1=1, axis2=2), axis=1) / n
            matrix = matrix + scale[:, None, None] * jnp.ones((1, n, n), dtype)
        self.coarse_matrix = inverse(matrix)

    @property
    def levels(self) -> int:
        """Number of grids, finest to coarsest."""
        return len(self.grids)

    def apply(self, u: Array) -> Array:
        """`A u` on the finest grid; shape of `u`."""
        return self.operators[0](u)

    def _solve_coarsest(self, f: Array) -> Array:
        if self.singular:
            f = f - jnp.mean(f, axis=tuple(range(1, f.ndim)), keepdims=True)
        flat = f.reshape(f.shape[0], -1, 1)
        return (self.coarse_matrix @ flat).reshape(f.shape)

    def _cycle(self, level: int, u: Array, f: Array, kind: str) -> Array:
        op = self.operators[level]
        if level == self.levels - 1:  # a correction of `u`: a one-level hierarchy still refines
            return u + self._solve_coarsest(f - op(u))
        pre, post = self.smoothing
        u = smooth(op, u, f, pre)
        rc = restrict(f - op(u), self.rules)
        ec = jnp.zeros_like(rc)
        if kind == "V":
            ec = self._cycle(level + 1, ec, rc, "V")
        elif kind == "W":
            ec = lax.fori_loop(0, 2, lambda _, e: self._cycle(level + 1, e, rc, "W"), ec)
        else:  # F: an F-cycle, then a V-cycle on the coarse grid
            ec = self._cycle(level + 1, ec, rc, "F")
            ec = self._cycle(level + 1, ec, rc, "V")
        u = u + prolong(ec, self.rules)
        return smooth(op, u, f, post, reverse=self.symmetric)

    def __call__(self, u: Array, f: Array) -> Array:
        """One cycle on `A u = f` from the iterate `u`, both `(channels, *spatial)`."""
        return self._cycle(0, u, f, self.cycle)

    def precondition(self, r: Array) -> Array:
        """One cycle from zero: `M^-1 r`, symmetric positive definite for equal smoothing."""
        return self(jnp.zeros_like(r), r)

    def full(self, f: Array) -> Array:
        """Full multigrid: solve on the coarsest grid, then interpolate and cycle once on each
        finer grid. **Returns:** an approximation of `A^-1 f`, shape of `f`."""
        rhs = [f]
        for _ in range(self.levels - 1):
            rhs.append(restrict(rhs[-1], self.rules))
        u = self._solve_coarsest(rhs[-1])
        for level in range(self.levels - 2, -1, -1):
            u = self._cycle(level, prolong(u, self.rules), rhs[level], self.cycle)
        return u
