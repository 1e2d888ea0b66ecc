"""Point sets as data: `key -> points` callables that `trainax_fd.data.Sampler` runs inside
the compiled training loop, so every step trains on fresh collocation points."""

from collections.abc import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Float, PyTree

from .._checks import check_int, check_key
from ..data import Fixed
from ._domains import AbstractDomain, Boundary, _sample
from ._sequences import DETERMINISTIC, METHODS, Method, check_method, grid_side


def _check_region(region) -> None:
    if not isinstance(region, AbstractDomain | Boundary):
        raise TypeError(
            "`region` must be a domain (`Box`, `Interval`, `Parallelogram`, `Ball`) or its "
            f"`.boundary`, got {type(region).__name__}."
        )


class Points(eqx.Module):
    """`n` points of a domain or of its boundary, drawn from a key: `points(key) -> (n, dim)`.

    Give it to `trainax_fd.data.Sampler` (alone, or inside a `Collocation`) and each training
    step draws its own points from the step's key.

    **Arguments:**

    - `region`: a domain, or `domain.boundary`.
    - `n`: points per draw, an int `>= 1`.
    - `method`: `"uniform"` (default), `"grid"`, `"lhs"`, `"halton"` or `"sobol"` (see
        `unit_cube`). Called with a key, the deterministic methods are randomly shifted per
        draw; called with `None`, they give their fixed points.

    !!! example
        ```python
        interior = Points(Box([0.0, 0.0], [1.0, 1.0]), 1024, method="lhs")
        x = interior(jax.random.key(0))  # (1024, 2)
        ```
    """

    region: AbstractDomain | Boundary
    n: int = eqx.field(static=True)
    method: str = eqx.field(static=True)

    def __init__(self, region: AbstractDomain | Boundary, n: int, *, method: Method = "uniform"):
        _check_region(region)
        check_int("n", n)
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
        boundary = isinstance(region, Boundary)
        domain = region.domain if boundary else region
        dim = domain._cube_dim(boundary)
        check_method(method, dim, None if method in DETERMINISTIC else jax.random.key(0))
        if method == "grid":
            grid_side(n, dim)
        self.region, self.n, self.method = region, n, method

    def __call__(self, key=None) -> Float[Array, "n dim"]:
        """The points drawn from `key` (`None`: the fixed points of a deterministic method)."""
        boundary = isinstance(self.region, Boundary)
        domain = self.region.domain if boundary else self.region
        return _sample(domain, self.n, key, self.method, boundary)


class Labelled(eqx.Module):
    """Points with labels computed from them: `labelled(key) -> (x (n, dim), fn(x) (n, ...))`,
    `fn` applied to each point (boundary values, a source term, an exact solution).

    **Arguments:** `points` (a `key -> (n, dim)` sampler such as `Points`), `fn` (one point
    `(dim,)` to its label).
    """

    points: Callable
    fn: Callable

    def __init__(self, points: Callable, fn: Callable):
        for name, value, form in (("points", points, "points(key) -> (n, dim)"),
                                  ("fn", fn, "fn(x) -> label")):  # fmt: skip
            if not callable(value):
                raise TypeError(f"`{name}` must be callable as `{form}`, got {value!r}.")
        self.points, self.fn = points, fn

    def __call__(self, key=None) -> tuple[Float[Array, "n dim"], PyTree[Array]]:
        x = self.points(key)
        return x, jax.vmap(self.fn)(x)


class Collocation(eqx.Module):
    """Several point sets drawn together: `collocation(key) -> (set_0(k_0), set_1(k_1), ...)`
    with the key split once per set. The batch of a `PINN`: interior points first, then one
    set per boundary condition.

    **Arguments:** `*sets`: `key -> batch` samplers (`Points`, `Labelled`, your own).

    !!! example
        ```python
        draw = Collocation(Points(square, 1024), Points(square.boundary, 256))
        source = trainax_fd.data.Sampler(draw)  # fresh points at every step
        ```
    """

    sets: tuple[Callable, ...]

    def __init__(self, *sets: Callable):
        if not sets:
            raise ValueError("`sets` must hold at least one sampler, got none.")
        for i, s in enumerate(sets):
            if not callable(s):
                raise TypeError(
                    f"`sets[{i}]` must be callable as `sample(key) -> batch`, got {s!r}."
                )
        self.sets = tuple(sets)

    def __call__(self, key=None) -> tuple:
        if key is None:
            return tuple(s(None) for s in self.sets)
        check_key(key)
        keys = jax.random.split(key, len(self.sets))
        return tuple(s(k) for s, k in zip(self.sets, keys))

    def fixed(self, *, key=None) -> Fixed:
        """One draw kept for every step (`Fixed(self(key))`): the fixed training points of a
        full-batch training, the only kind a line search (L-BFGS) can follow."""
        return Fixed(self(key))
