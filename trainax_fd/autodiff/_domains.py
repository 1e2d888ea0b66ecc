"""Domains for collocation: interval, box, parallelogram, ball; their boundaries, membership,
outward normals, a smooth distance-like function, and points sampled on them.

Every method on points takes one point `(dim,)` (batches with `jax.vmap`); `sample` draws a
whole set `(n, dim)`. Sampling maps points of the unit cube (`unit_cube`) through a map that
keeps uniform points uniform, so a stratified or low-discrepancy set in the cube stays one on
the domain.
"""

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri
from jaxtyping import Array, Bool, Float

from .._checks import check_int
from .._custom_types import Scalar
from ._derivatives import check_point
from ._sequences import Method, _unit_cube, check_method, grid_side

Points = Float[Array, "n dim"]


def _vector(name: str, value, dim: int | None = None) -> np.ndarray:
    """`value` as a finite float vector `(dim,)` in NumPy (checked before anything traces)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a vector of numbers, got {value!r}.") from None
    if array.ndim != 1 or array.shape[0] < 1 or (dim is not None and array.shape[0] != dim):
        want = "(dim,)" if dim is None else f"({dim},)"
        raise ValueError(f"`{name}` must have shape {want}, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must be finite, got {array.tolist()}.")
    return array


def _stored(array: np.ndarray) -> Array:
    return jnp.asarray(array, dtype=jnp.result_type(float))


class AbstractDomain(eqx.Module):
    """A closed region of `R^dim` on which points are sampled and PDEs are posed.

    **Methods** (on one point `x` of shape `(dim,)`; vmap for many):

    - `contains(x, atol=None)`: whether `x` lies in the closed domain.
    - `distance(x)`: a smooth function that is zero on the boundary, positive inside, and
        grows like the distance to the nearest face near the middle of the faces, times
        `min(L) / L_a` for a box of edge lengths `L` (the
        approximate distance function that imposes Dirichlet values exactly:
        `u = g + distance * network`).
    - `sample(n, key=, method=)`: `n` points of the domain, `(n, dim)`.
    - `boundary`: the `Boundary` (membership, outward normals, points on it).
    """

    dim: eqx.AbstractVar[int]

    @eqx.filter_jit
    def contains(self, x: Float[Array, "dim"], *, atol: float | None = None) -> Bool[Array, ""]:  # noqa: F821
        """Whether `x` (one point) lies in the closed domain, up to `atol` (default: 64 float
        roundings of the domain's size)."""
        x = self._point(x)
        return self._inside(x, self._atol(x, atol))

    @eqx.filter_jit
    def distance(self, x: Float[Array, "dim"]) -> Scalar:  # noqa: F821
        """Zero on the boundary, positive inside, smooth; `~` the distance near the middle of
        the faces (`u = g + distance * network` imposes `u = g` on the boundary exactly)."""
        return self._distance(self._point(x))

    @abc.abstractmethod
    def _inside(self, x: Array, tol: Array) -> Array:
        """Membership of a checked point, up to `tol`."""

    @abc.abstractmethod
    def _distance(self, x: Array) -> Array:
        """The distance-like function at a checked point."""

    @abc.abstractmethod
    def _size(self) -> Array:
        """A length scale (for tolerances)."""

    @abc.abstractmethod
    def _cube_dim(self, boundary: bool) -> int:
        """Unit-cube coordinates per point of the interior or of the boundary."""

    @abc.abstractmethod
    def _from_cube(self, s: Array, boundary: bool) -> Array:
        """A point of the interior or boundary from unit-cube coordinates, uniform to uniform."""

    @abc.abstractmethod
    def _faces(self, x: Array) -> tuple[Array, Array]:
        """`(distances, normals)`: the distance of `x` to each face (or to the sphere), `(F,)`,
        and each face's outward unit normal at `x`, `(F, dim)`."""

    def _point(self, x) -> Array:
        x = check_point(x)
        if x.shape[0] != self.dim:
            raise ValueError(
                f"`x` must be one point of shape ({self.dim},) in this {self.dim}D domain "
                f"(batch points with `jax.vmap`), got shape {tuple(x.shape)}."
            )
        return x

    def _atol(self, x: Array, atol: float | None) -> Array:
        if atol is None:
            return 64 * jnp.finfo(x.dtype).eps * self._size().astype(x.dtype)
        if isinstance(atol, bool) or not isinstance(atol, int | float) or not atol >= 0:
            raise ValueError(f"`atol` must be a float >= 0 or None, got {atol!r}.")
        return jnp.asarray(atol, x.dtype)

    @property
    def boundary(self) -> "Boundary":
        """The boundary of this domain."""
        return Boundary(self)

    def sample(self, n: int, *, key=None, method: Method = "uniform") -> Points:
        """`n` points of the closed domain.

        **Arguments:**

        - `n`: how many points, an int `>= 1`.
        - `key`: a `jax.random.key`, keyword-only; `None` only for the deterministic
            methods (`"grid"`, `"halton"`, `"sobol"`), which a key randomly shifts.
        - `method`: `"uniform"`, `"grid"`, `"lhs"`, `"halton"` or `"sobol"` (see
            `unit_cube`), in the domain's parametrisation (a polar grid on a disk).

        **Returns:** shape `(n, dim)`, the domain's dtype.
        """
        return _sample(self, n, key, method, boundary=False)


def _sample(domain: AbstractDomain, n, key, method, boundary: bool) -> Points:
    check_int("n", n)
    dim = domain._cube_dim(boundary)
    check_method(method, dim, key)
    if method == "grid":
        grid_side(n, dim)
    return _draw(domain, n, key, method, boundary)


@eqx.filter_jit
def _draw(domain, n, key, method, boundary):
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(eqx.filter(domain, eqx.is_array)))
    s = _unit_cube(n, domain._cube_dim(boundary), method, key, jnp.dtype(dtype))
    return jax.vmap(lambda p: domain._from_cube(p, boundary))(s)


class Boundary(eqx.Module):
    """The boundary of a domain: membership, outward unit normals, points on it.

    Built by `domain.boundary`. **Methods** (on one point `x` `(dim,)`; vmap for many):
    `contains(x, atol=None)`, `normal(x)`, and `sample(n, key=, method=)` for `(n, dim)`
    points spread uniformly over the boundary's length, area or volume (each face gets its
    share of the points).
    """

    domain: AbstractDomain

    @property
    def dim(self) -> int:
        return self.domain.dim

    @eqx.filter_jit
    def contains(self, x: Float[Array, "dim"], *, atol: float | None = None) -> Bool[Array, ""]:
        """Whether `x` (one point) lies on the boundary, up to `atol`."""
        x = self.domain._point(x)
        tol = self.domain._atol(x, atol)
        distances, _ = self.domain._faces(x)
        return self.domain._inside(x, tol) & (jnp.min(jnp.abs(distances)) <= tol)

    @eqx.filter_jit
    def normal(self, x: Float[Array, "dim"]) -> Float[Array, "dim"]:
        """The outward unit normal at a boundary point `x`: that of the nearest face (on an
        edge or corner, the first of the nearest faces, axis by axis)."""
        x = self.domain._point(x)
        distances, normals = self.domain._faces(x)
        return normals[jnp.argmin(jnp.abs(distances))]

    def sample(self, n: int, *, key=None, method: Method = "uniform") -> Points:
        """`n` points on the boundary, `(n, dim)`; `key` and `method` as for
        `AbstractDomain.sample`. On a box the first unit-cube coordinate runs along the faces
        one after the other, so a grid or a stratified set spreads evenly along them."""
        return _sample(self.domain, n, key, method, boundary=True)


def _face_point(s: Array, weights: Array) -> Array:
    """Unit-cube coordinates `(max(d - 1, 1),)` to a point `(d,)` on the boundary of the unit
    cube; face `2k` is `y_k = 0`, face `2k + 1` is `y_k = 1`, with shares `weights (2d,)`."""
    d = weights.shape[0] // 2
    edges = jnp.concatenate([jnp.zeros(1, s.dtype), jnp.cumsum(weights) / jnp.sum(weights)])
    face = jnp.clip(jnp.searchsorted(edges, s[0], side="right") - 1, 0, 2 * d - 1)
    along = (s[0] - edges[face]) / (edges[face + 1] - edges[face])
    free = jnp.concatenate([along[None], s[1:]])
    axis, side = face // 2, (face % 2).astype(s.dtype)
    k = jnp.arange(d)
    index = jnp.clip(jnp.where(k < axis, k, k - 1), 0, free.shape[0] - 1)
    return jnp.where(k == axis, side, free[index])


def _pair_distances(low: Array, high: Array) -> Array:
    """`(2d,)`: distances to faces `low_0, high_0, low_1, ...`."""
    return jnp.stack([low, high], axis=1).reshape(-1)


def _pair_normals(directions: Array) -> Array:
    """`(2d, d)`: outward normals `-n_0, +n_0, -n_1, ...` from unit directions `(d, d)`."""
    return jnp.stack([-directions, directions], axis=1).reshape(-1, directions.shape[1])


class Box(AbstractDomain):
    """An axis-aligned box `[lower_0, upper_0] x ... x [lower_{d-1}, upper_{d-1}]`, any `dim`:
    an interval (`Interval`), a rectangle, a cube.

    **Arguments:** `lower`, `upper`: the corners, vectors `(dim,)` with `lower < upper`.

    !!! example
        ```python
        square = Box([0.0, 0.0], [1.0, 1.0])
        x = square.sample(1000, key=jax.random.key(0), method="halton")  # (1000, 2)
        ```
    """

    lower: Float[Array, "dim"]
    upper: Float[Array, "dim"]
    dim: int = eqx.field(static=True)

    def __init__(self, lower, upper):
        low = _vector("lower", lower)
        high = _vector("upper", upper, low.shape[0])
        if not np.all(low < high):
            raise ValueError(
                f"`lower` must be below `upper` on every axis, got lower={low.tolist()}, "
                f"upper={high.tolist()}."
            )
        self.lower, self.upper, self.dim = _stored(low), _stored(high), low.shape[0]

    def _bounds(self, dtype):
        return self.lower.astype(dtype), self.upper.astype(dtype)

    def _inside(self, x, tol):
        low, high = self._bounds(x.dtype)
        return jnp.all((x >= low - tol) & (x <= high + tol))

    def _distance(self, x):
        low, high = self._bounds(x.dtype)
        length = high - low
        return jnp.min(length) / 4 * jnp.prod(4 * (x - low) * (high - x) / length**2)

    def _size(self):
        return jnp.max(self.upper - self.lower)

    def _cube_dim(self, boundary):
        return max(self.dim - 1, 1) if boundary else self.dim

    def _from_cube(self, s, boundary):
        low, high = self._bounds(s.dtype)
        if not boundary:
            return low + (high - low) * s
        length = high - low
        areas = jnp.prod(length) / length if self.dim > 1 else jnp.ones(1, s.dtype)
        return low + length * _face_point(s, jnp.repeat(areas, 2))

    def _faces(self, x):
        low, high = self._bounds(x.dtype)
        return _pair_distances(x - low, high - x), _pair_normals(jnp.eye(self.dim, dtype=x.dtype))


def Interval(lower: float, upper: float) -> Box:
    """The interval `[lower, upper]`: a one-dimensional `Box` (points have shape `(1,)`; the
    boundary is the two ends, with normals `-1` and `+1`)."""
    for name, value in (("lower", lower), ("upper", upper)):
        if np.ndim(value) != 0:
            raise ValueError(f"`{name}` must be a number, got shape {np.shape(value)}.")
    return Box([lower], [upper])


class Parallelogram(AbstractDomain):
    """The parallelogram `{origin + Σ_k s_k edges[k] : 0 <= s_k <= 1}` (a parallelepiped in
    3D and above).

    **Arguments:**

    - `origin`: a corner, `(dim,)`, `dim >= 2`.
    - `edges`: the edge vectors from that corner, one per row, `(dim, dim)`, linearly
        independent.

    !!! example
        ```python
        skewed = Parallelogram([0.0, 0.0], [[2.0, 0.0], [1.0, 1.0]])
        ```
    """

    origin: Float[Array, "dim"]
    edges: Float[Array, "dim dim"]
    dim: int = eqx.field(static=True)

    def __init__(self, origin, edges):
        o = _vector("origin", origin)
        d = o.shape[0]
        if d < 2:
            raise ValueError(
                f"`origin` must have dim >= 2 for a parallelogram (use `Interval` in 1D), got "
                f"shape {o.shape}."
            )
        try:
            e = np.asarray(edges, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"`edges` must be an array of numbers, got {edges!r}.") from None
        if e.shape != (d, d):
            raise ValueError(
                f"`edges` must have shape ({d}, {d}): {d} edge vectors of the {d}D origin, one "
                f"per row, got shape {e.shape}."
            )
        if not np.all(np.isfinite(e)):
            raise ValueError(f"`edges` must be finite, got {e.tolist()}.")
        if abs(np.linalg.det(e)) <= 1e-12 * np.prod(np.linalg.norm(e, axis=1)):
            raise ValueError(
                f"`edges` must be linearly independent (a non-degenerate parallelogram), got "
                f"{e.tolist()}."
            )
        self.origin, self.edges, self.dim = _stored(o), _stored(e), d

    def _frame(self, dtype):
        """`(origin, edges, inverse)`: `x = origin + s @ edges`, `s = (x - origin) @ inverse`."""
        edges = self.edges.astype(dtype)
        return self.origin.astype(dtype), edges, jnp.linalg.inv(edges)

    def _widths(self, inverse):
        """Distance between the two faces of each pair: `1 / |∇ s_k|`."""
        return 1 / jnp.linalg.norm(inverse, axis=0)

    def _inside(self, x, tol):
        distances, _ = self._faces(x)
        return jnp.all(distances >= -tol)

    def _distance(self, x):
        origin, _, inverse = self._frame(x.dtype)
        s = (x - origin) @ inverse
        return jnp.min(self._widths(inverse)) / 4 * jnp.prod(4 * s * (1 - s))

    def _size(self):
        return jnp.sum(jnp.linalg.norm(self.edges, axis=1))

    def _cube_dim(self, boundary):
        return self.dim - 1 if boundary else self.dim

    def _from_cube(self, s, boundary):
        origin, edges, _ = self._frame(s.dtype)
        if not boundary:
            return origin + s @ edges
        areas = []
        for k in range(self.dim):  # a face's (d-1)-volume from the other edges' Gram matrix
            others = jnp.delete(edges, k, axis=0)
            areas.append(jnp.sqrt(jnp.abs(jnp.linalg.det(others @ others.T))))
        return origin + _face_point(s, jnp.repeat(jnp.stack(areas), 2)) @ edges

    def _faces(self, x):
        origin, _, inverse = self._frame(x.dtype)
        s = (x - origin) @ inverse
        widths = self._widths(inverse)
        directions = (inverse * widths[None]).T  # row k: the unit normal of the faces s_k = const
        return _pair_distances(s * widths, (1 - s) * widths), _pair_normals(directions)


class Ball(AbstractDomain):
    """The closed ball `|x - center| <= radius`, any `dim` (a disk in 2D).

    **Arguments:** `center` (`(dim,)`), `radius` (a number `> 0`).

    Sampling maps the unit cube area-preservingly: in 2D by radius `radius * sqrt(s_0)` and
    angle `2 pi s_1` (a `"grid"` is a polar grid of equal-area rings); in 3D and above by a
    direction from the normal quantiles of `dim` coordinates and a radius from one more.
    """

    center: Float[Array, "dim"]
    radius: Scalar
    dim: int = eqx.field(static=True)

    def __init__(self, center, radius):
        c = _vector("center", center)
        if isinstance(radius, bool) or np.ndim(radius) != 0:
            raise ValueError(f"`radius` must be a number > 0, got {radius!r}.")
        r = float(radius)
        if not (math.isfinite(r) and r > 0):
            raise ValueError(f"`radius` must be a number > 0, got {radius!r}.")
        self.center, self.radius, self.dim = _stored(c), _stored(np.float64(r)), c.shape[0]

    def _geometry(self, dtype):
        return self.center.astype(dtype), self.radius.astype(dtype)

    def _inside(self, x, tol):
        center, radius = self._geometry(x.dtype)
        return jnp.linalg.norm(x - center) <= radius + tol

    def _distance(self, x):
        center, radius = self._geometry(x.dtype)
        return (radius**2 - jnp.sum((x - center) ** 2)) / (2 * radius)

    def _size(self):
        return 2 * self.radius

    def _cube_dim(self, boundary):
        if self.dim <= 2:
            return 1 if boundary else self.dim
        return self.dim if boundary else self.dim + 1

    def _direction(self, s):
        if self.dim == 1:
            return jnp.where(s[:1] < 0.5, -1.0, 1.0).astype(s.dtype)
        if self.dim == 2:
            angle = 2 * jnp.pi * s[0]
            return jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        tiny = jnp.finfo(s.dtype).tiny
        z = ndtri(jnp.clip(s[: self.dim], tiny, 1 - jnp.finfo(s.dtype).epsneg))
        return z / jnp.linalg.norm(z)

    def _from_cube(self, s, boundary):
        center, radius = self._geometry(s.dtype)
        if boundary:
            return center + radius * self._direction(s)
        if self.dim == 1:
            return center + radius * (2 * s - 1)
        if self.dim == 2:
            return center + radius * jnp.sqrt(s[0]) * self._direction(s[1:])
        return center + radius * s[self.dim] ** (1 / self.dim) * self._direction(s)

    def _faces(self, x):
        center, radius = self._geometry(x.dtype)
        offset = x - center
        r = jnp.linalg.norm(offset)
        safe = jnp.where(r > 0, r, 1.0)
        first = (jnp.arange(self.dim) == 0).astype(x.dtype)
        normal = jnp.where(r > 0, offset / safe, first)  # the centre: any direction
        return (radius - r)[None], normal[None]
