"""The operators multigrid works with: `A u = c u - div(k grad u)` on each level, homogeneous.

Two forms, both Modules with `__call__` (apply `A`), `diagonal()` and `colours()`:

- `FaceOperator`: the conservative 5-point (7-point in 3D) operator of the stencil core's
  `div_k_grad`, stored as face coefficients `k_{i+1/2} / h^2` per axis. The homogeneous
  boundary condition is folded into the boundary faces (doubled for Dirichlet on cells, zero for
  Neumann), so that ghosts are plain zeros (or wrap around on periodic axes). Smoothed with
  red-black Gauss-Seidel.
- `StencilOperator`: a general `(2r+1)^d`-point stencil with one coefficient array per offset,
  the Galerkin coarse operators `R A P`. Smoothed with multi-colour Gauss-Seidel.

`A` is symmetric positive (semi-)definite: the negative of `div_k_grad` plus the reaction `c`.
"""

import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from ..stencil import Grid
from ._transfer import prolong, restrict

_FOLD = {"dirichlet": {"cell": 2.0, "vertex": 1.0}, "neumann": {"cell": 0.0}}


def _sl(u: Array, ax: int, start: int, stop: int) -> Array:
    return lax.slice_in_dim(u, start, stop, axis=ax)


def _pad(u: Array, widths: tuple[int, ...], periodic: tuple[bool, ...]) -> Array:
    """`widths[a]` ghost layers on both sides of every spatial axis `a`: zeros, or wrapped
    around on periodic axes (one pad, so that the stencil fuses into one loop)."""
    cfg = [(0, 0, 0)]
    for axis, (w, p) in enumerate(zip(widths, periodic)):
        ax = axis + 1
        if p and w:
            n = u.shape[ax]
            u = lax.concatenate([_sl(u, ax, n - w, n), u, _sl(u, ax, 0, w)], ax)
        cfg.append((0, 0, 0) if p else (w, w, 0))
    return lax.pad(u, jnp.zeros((), u.dtype), cfg)


def _shifted(up: Array, widths: tuple[int, ...], offset: tuple[int, ...], shape) -> Array:
    """The window of a padded `up` shifted by `offset` from the unpadded points."""
    start = [0] + [w + o for w, o in zip(widths, offset)]
    stop = [up.shape[0]] + [s + n for s, n in zip(start[1:], shape)]
    return lax.slice(up, start, stop)


def _mask(shape: tuple[int, ...], colour: Array, modulus: tuple[int, ...] | None) -> Array:
    """Where the points of `colour` (traced) are: red-black (`(sum of indices + colour)` even)
    or, per axis, index `= digit of colour (mod modulus)`. Built from iotas with `colour` in
    every term, so that the compiler does not hoist a mask array out of the smoothing loop."""
    idx = [lax.broadcasted_iota(jnp.int32, shape, a) for a in range(len(shape))]
    colour = jnp.asarray(colour, jnp.int32)
    one = jnp.ones((), jnp.int32)
    if modulus is None:  # indices are non-negative: `&` and `lax.rem` need no sign fixes
        total = functools.reduce(lax.add, idx, colour)
        return lax.bitwise_and(total, one) == 0
    inside = None
    for axis in range(len(shape) - 1, -1, -1):
        m = jnp.asarray(modulus[axis], jnp.int32)
        digit, colour = lax.rem(colour, m), lax.div(colour, m)
        term = lax.rem(idx[axis] + (m - digit), m) == 0
        inside = term if inside is None else inside & term
    return inside


class FaceOperator(eqx.Module):
    """`A u = c u - sum_a (F_{a, i+1/2} - F_{a, i-1/2})`, `F = k_face (u_{i+1} - u_i) / h_a^2`.

    **Arguments:**

    - `faces`: per axis `a`, `k_face / h_a^2` on the `N_a + 1` faces, boundary faces folded
      (shape `(1 or channels, *spatial)` with `N_a + 1` along axis `a`).
    - `reaction`: `c`, scalar or `(1 or channels, *spatial)`.
    - `periodic`: per axis, whether it wraps around.
    """

    faces: tuple[Array, ...]
    reaction: Array
    periodic: tuple[bool, ...] = eqx.field(static=True)

    def __init__(self, faces: tuple[Array, ...], reaction: Array, periodic: tuple[bool, ...]):
        self.faces, self.periodic = tuple(faces), tuple(periodic)
        self.reaction = jnp.asarray(reaction, self.faces[0].dtype)

    def neighbours(self, u: Array) -> Array:
        """`sum_a F_{a,i-1/2} u_{i-1} + F_{a,i+1/2} u_{i+1}`: `D u - A u`."""
        ndim = u.ndim - 1
        up = _pad(u, (1,) * ndim, self.periodic)
        out = None
        for axis, face in enumerate(self.faces):
            ax, n = axis + 1, u.shape[axis + 1]
            for side, (start, stop) in ((-1, (0, n)), (1, (1, n + 1))):
                offset = tuple(side if a == axis else 0 for a in range(ndim))
                term = _sl(face, ax, start, stop) * _shifted(up, (1,) * ndim, offset, u.shape[1:])
                out = term if out is None else out + term
        return out

    def diagonal(self) -> Array:
        out = self.reaction
        for axis, face in enumerate(self.faces):
            n = face.shape[axis + 1] - 1
            out = out + _sl(face, axis + 1, 0, n) + _sl(face, axis + 1, 1, n + 1)
        return out

    def __call__(self, u: Array) -> Array:
        return self.diagonal() * u - self.neighbours(u)

    colours = 2  # red-black

    def mask(self, shape: tuple[int, ...], colour: Array) -> Array:
        """Where the points of `colour` are (red: even sum of indices)."""
        return _mask(shape, colour, None)

    @property
    def reach(self) -> tuple[int, ...]:
        return (1,) * len(self.faces)


class StencilOperator(eqx.Module):
    """`(A u)_i = sum_o coefficients[o]_i u_{i+o}` over offsets `o` in `[-r, r]^d`, zero
    outside the grid (the boundary conditions are inside the coefficients).

    **Arguments:**

    - `coefficients`: one array per offset, in `itertools.product` order.
    - `reach`: `r` per axis.
    """

    coefficients: Float[Array, "offsets channels *spatial"]
    reach: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, coefficients: Array, reach: tuple[int, ...]):
        self.coefficients, self.reach = coefficients, tuple(reach)

    @property
    def offsets(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*[range(-r, r + 1) for r in self.reach]))

    def neighbours(self, u: Array) -> Array:
        """`D u - A u`: minus the off-diagonal part applied to `u`."""
        up = _pad(u, self.reach, (False,) * len(self.reach))
        out = jnp.zeros(jnp.broadcast_shapes(u.shape, self.coefficients.shape[1:]), u.dtype)
        for m, offset in enumerate(self.offsets):
            if any(offset):
                out = out - self.coefficients[m] * _shifted(up, self.reach, offset, u.shape[1:])
        return out

    def __call__(self, u: Array) -> Array:
        return self.diagonal() * u - self.neighbours(u)

    def diagonal(self) -> Array:
        return self.coefficients[len(self.offsets) // 2]

    @property
    def colours(self) -> int:
        """Points `r + 1` apart along some axis do not couple: `prod(r + 1)` colours."""
        return int(np.prod([r + 1 for r in self.reach]))

    def mask(self, shape: tuple[int, ...], colour: Array) -> Array:
        """Where the points of `colour` are."""
        return _mask(shape, colour, tuple(r + 1 for r in self.reach))


def face_operator(grid: Grid, rules: tuple, conductivity: Array, reaction: Array) -> FaceOperator:
    """The stencil core's `-div_k_grad` (plus `c`) with homogeneous boundary conditions.

    `k` is averaged to the faces as in `div_k_grad` (the edge value repeated beyond a wall,
    wrapped on periodic axes); the boundary faces are then folded: doubled for Dirichlet on
    cells (the ghost is the odd reflection), zero for Neumann (the even one).
    """
    k = jnp.asarray(conductivity)
    if k.ndim == 0:
        k = jnp.broadcast_to(k, (1, *grid.shape))
    faces = []
    for axis, (placement, low, high) in enumerate(rules):
        ax = axis + 1
        n = grid.shape[axis]
        if low == "periodic":
            kp = lax.concatenate([_sl(k, ax, n - 1, n), k, _sl(k, ax, 0, 1)], ax)
        else:
            kp = lax.concatenate([_sl(k, ax, 0, 1), k, _sl(k, ax, n - 1, n)], ax)
        face = 0.5 * (_sl(kp, ax, 0, n + 1) + _sl(kp, ax, 1, n + 2))
        if low != "periodic":
            scale = np.ones(n + 1)
            scale[0], scale[n] = _FOLD[low][placement], _FOLD[high][placement]
            shape = [1] * k.ndim
            shape[ax] = n + 1
            face = face * jnp.asarray(scale.reshape(shape), face.dtype)
        faces.append(face / jnp.asarray(grid.spacing[axis] ** 2, face.dtype))
    return FaceOperator(tuple(faces), reaction, tuple(low == "periodic" for _, low, _ in rules))


def galerkin(fine, rules: tuple, coarse: Grid) -> StencilOperator:
    """The Galerkin coarse operator `R A P` of `fine`, read off by probing.

    Coarse basis functions `2r + 1` apart along every axis have disjoint images, so
    `prod(2r + 1)` probes give every coefficient.
    """
    width = {"vertex": 2, "cell": 3}
    reach = tuple((width[p] + r) // 2 for (p, _, _), r in zip(rules, fine.reach))
    modulus = tuple(2 * r + 1 for r in reach)
    if isinstance(fine, FaceOperator):  # a multi-channel reaction makes a multi-channel operator
        reaction = fine.reaction
        channels = max(fine.faces[0].shape[0], reaction.shape[0] if reaction.ndim else 1)
    else:
        channels = fine.coefficients[0].shape[0]
    shape = coarse.shape
    idx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    classes = list(itertools.product(*[range(m) for m in modulus]))
    dtype = (fine.faces[0] if isinstance(fine, FaceOperator) else fine.coefficients).dtype
    probes = np.stack(
        [np.all([i % m == c for i, m, c in zip(idx, modulus, cls)], axis=0) for cls in classes]
    )
    probes = jnp.asarray(np.broadcast_to(probes[:, None], (len(classes), channels, *shape)), dtype)
    images = lax.map(lambda e: restrict(fine(prolong(e, rules)), rules), probes)
    coefficients = []
    for offset in itertools.product(*[range(-r, r + 1) for r in reach]):
        target = [i + o for i, o in zip(idx, offset)]
        inside = np.all([(t >= 0) & (t < n) for t, n in zip(target, shape)], axis=0)
        number = np.zeros(shape, np.int32)
        for t, m in zip(target, modulus):
            number = number * m + t % m
        index = jnp.asarray(np.broadcast_to(number[None, None], (1, channels, *shape)))
        picked = jnp.take_along_axis(images, index, axis=0)[0]
        coefficients.append(jnp.where(jnp.asarray(inside), picked, 0))
    return StencilOperator(jnp.stack(coefficients), reach)


def dense(op, grid: Grid, channels: int, dtype) -> Float[Array, "channels n n"]:
    """The matrix of `op` on a small grid, one per coefficient channel."""
    n = grid.size
    basis = jnp.eye(n, dtype=dtype).reshape(n, 1, *grid.shape)
    basis = jnp.broadcast_to(basis, (n, channels, *grid.shape))
    columns = jax.vmap(op)(basis).reshape(n, channels, n)
    return jnp.transpose(columns, (1, 2, 0))


def inverse(matrix: Float[Array, "channels n n"]) -> Float[Array, "channels n n"]:
    """Inverses of symmetric positive definite matrices by Gauss-Jordan elimination without
    pivoting (safe for them), in plain array operations: no LAPACK call, whose threads
    contend with XLA's on a busy CPU, and little to compile."""

    def one(a: Array) -> Array:
        def step(k, a):
            pivot = a[k, k]
            row, col = a[k] / pivot, a[:, k]
            a = (a - jnp.outer(col, row)).at[k].set(row).at[:, k].set(-col / pivot)
            return a.at[k, k].set(1 / pivot)

        return lax.fori_loop(0, a.shape[-1], step, a)

    return jax.vmap(one)(matrix)
