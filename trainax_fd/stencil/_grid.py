"""A static, hashable description of a uniform Cartesian grid."""

import dataclasses
import math
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

Placement = Literal["cell", "vertex", "periodic"]
PLACEMENTS: tuple[str, ...] = ("cell", "vertex", "periodic")


def _per_axis(name: str, value, ndim: int) -> tuple:
    if isinstance(value, str) or np.ndim(value) == 0:
        return (value,) * ndim
    value = tuple(value)
    if len(value) != ndim:
        raise ValueError(
            f"`{name}` must be a single value or one per axis ({ndim} values for a {ndim}D "
            f"grid), got {len(value)}: {value!r}."
        )
    return value


@dataclasses.dataclass(frozen=True)
class Grid:
    """A uniform grid in 1, 2 or 3 dimensions; static (hashable), never traced.

    Where the `N` points of an axis of length `L` sit is stated by `placement`:

    - `"cell"`: cell centres, `x_i = (i + 1/2) h` with `h = L / N`. Boundaries lie on cell
      faces half a cell beyond the first and last point. Works with every boundary condition.
    - `"vertex"`: the interior vertices of a vertex grid, `x_i = (i + 1) h` with `h = L / (N + 1)`;
      the boundary vertices `x = 0` and `x = L` carry the Dirichlet values and are not unknowns.
    - `"periodic"`: `x_i = i h` with `h = L / N`; the vertex at `L` is the one at `0`.

    **Arguments:**

    - `shape`: points per axis, e.g. `(64,)` or `(32, 32)`.
    - `extent`: domain length per axis, finite and positive (a single float applies to every
      axis).
    - `placement`: one of `"cell"`, `"vertex"`, `"periodic"`, or one per axis.

    !!! example
        ```python
        grid = Grid((40,), extent=1.0, placement="vertex")  # 40 interior points, h = 1/41
        ```
    """

    shape: tuple[int, ...]
    extent: tuple[float, ...] = 1.0  # type: ignore[assignment]
    placement: tuple[Placement, ...] = "cell"  # type: ignore[assignment]

    def __post_init__(self):
        if isinstance(self.shape, (int, np.integer)):
            shape = (int(self.shape),)
        else:
            try:
                shape = tuple(self.shape)
            except TypeError:
                raise TypeError(
                    f"`shape` must be a tuple of ints, got {type(self.shape).__name__}."
                ) from None
        if not 1 <= len(shape) <= 3:
            raise ValueError(f"`shape` must have 1, 2 or 3 axes, got {len(shape)}: {shape}.")
        if not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
            raise ValueError(f"`shape` must hold positive ints, got {shape}.")
        extent = _per_axis("extent", self.extent, len(shape))
        try:
            if any(isinstance(e, str | bytes | bool | np.bool_) for e in extent):
                raise TypeError
            extent = tuple(float(e) for e in extent)
        except TypeError:
            raise TypeError(
                f"`extent` must be a number or one number per axis, got {self.extent!r}."
            ) from None
        if not all(math.isfinite(e) and e > 0 for e in extent):
            raise ValueError(f"`extent` must be finite and positive, got {extent}.")
        placement = _per_axis("placement", self.placement, len(shape))
        for p in placement:
            if p not in PLACEMENTS:
                raise ValueError(f"`placement` must be one of {PLACEMENTS}, got {p!r}.")
        object.__setattr__(self, "shape", tuple(int(n) for n in shape))
        object.__setattr__(self, "extent", extent)
        object.__setattr__(self, "placement", placement)

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of points (unknowns) of the grid."""
        return int(np.prod(self.shape))

    @property
    def spacing(self) -> tuple[float, ...]:
        """Grid spacing `h` per axis."""
        return tuple(
            length / (n + 1 if p == "vertex" else n)
            for n, length, p in zip(self.shape, self.extent, self.placement)
        )

    def coordinates(self, axis: int) -> np.ndarray:
        """Point positions along `axis`, shape `(N_axis,)` (NumPy, float64)."""
        n, h, p = self.shape[axis], self.spacing[axis], self.placement[axis]
        offset = {"cell": 0.5, "vertex": 1.0, "periodic": 0.0}[p]
        return (np.arange(n) + offset) * h

    def mesh(self, dtype=None) -> tuple[Array, ...]:
        """Coordinates of every point: one array of shape `spatial` per axis."""
        return _mesh(self, None if dtype is None else jnp.dtype(dtype))

    def check_state(self, u, name: str = "u") -> None:
        """Raise a `ValueError` unless `u` has shape `(channels, *self.shape)`."""
        shape = getattr(u, "shape", None)
        if shape is None or len(shape) != self.ndim + 1 or tuple(shape[1:]) != self.shape:
            raise ValueError(
                f"`{name}` must have shape (channels, {', '.join(map(str, self.shape))}) for "
                f"this {self.ndim}D grid, got {shape}. Steppers and operators act on one "
                "sample; batch with `jax.vmap`."
            )


@eqx.filter_jit  # one program, not one per broadcast
def _mesh(grid: Grid, dtype) -> tuple[Array, ...]:
    axes = [jnp.asarray(grid.coordinates(a), dtype=dtype) for a in range(grid.ndim)]
    return tuple(jnp.meshgrid(*axes, indexing="ij"))
