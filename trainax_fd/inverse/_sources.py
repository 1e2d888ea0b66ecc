"""Random heat sources of the SIP heat-inversion experiment, and a sampler of
(observation, source) pairs drawn fresh at every training step."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .._checks import check_int, check_key
from .._custom_types import State
from ..data import Sampler
from ..reference import FourierHeat
from ..stencil import Grid


def _check_grid(grid) -> Grid:
    if not isinstance(grid, Grid):
        raise TypeError(f"`grid` must be a `Grid`, got {type(grid).__name__}.")
    if "vertex" in grid.placement:
        raise ValueError(
            "`grid` must have cells (placement 'periodic' or 'cell' on every axis): a source "
            f"covers fractions of cells; got placement {grid.placement}."
        )
    return grid


def check_float_dtype(dtype) -> jnp.dtype:
    """`dtype` as a floating dtype JAX can give now (float64 needs 64-bit mode)."""
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype, got {dtype}.")
    if dtype.itemsize == 8 and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"`dtype` {dtype} needs JAX's 64-bit mode: call "
            "`jax.config.update('jax_enable_x64', True)` first (or pass dtype=jnp.float32)."
        )
    return dtype


def _check_sources(candidates, min_active, centre_fraction, max_half_size) -> None:
    check_int("candidates", candidates)
    check_int("min_active", min_active, 0)
    if min_active > candidates:
        raise ValueError(
            f"`min_active` must not exceed `candidates` ({candidates}), got {min_active}."
        )
    if not (isinstance(centre_fraction, float | int) and 0 <= centre_fraction <= 1):
        raise ValueError(f"`centre_fraction` must be a number in [0, 1], got {centre_fraction!r}.")
    if not (isinstance(max_half_size, float | int) and max_half_size > 0):
        raise ValueError(f"`max_half_size` must be a positive number, got {max_half_size!r}.")


def random_heat_sources(
    grid: Grid,
    *,
    key: PRNGKeyArray,
    candidates: int = 10,
    min_active: int = 4,
    centre_fraction: float = 0.8,
    max_half_size: float = 10.0,
    dtype=jnp.float32,
) -> State:
    """One random heat source: a sum of boxes, as in the SIP heat-inversion experiment.

    Of `candidates` boxes, the first `min_active + floor((candidates - min_active + 1) U)` are
    active (4 to 10 of 10 by default). Per box and axis: a centre uniform in the central
    `centre_fraction` of the extent, a half-size of `U * max_half_size` cells (at most half the
    extent); per box a strength in `[0, 1)`. Each box is shifted to lie inside the domain
    (centre clipped to `[half, extent - half]`), rasterised as the fraction of every cell it
    covers (the product over axes of the covered fraction of the cell's interval), and the
    boxes are added where they overlap. So the sum of the source over the cells times the cell
    volume is `sum strength * prod 2 half`.

    (The original rasterised PhiFlow's `SoftGeometryMask`, a ramp of width `sqrt(1/2)` cells
    across each box edge from the L-infinity distance; the exact coverage here differs from it
    only in the edge cells.)

    **Arguments:**

    - `grid`: a grid with cells (`"periodic"` or `"cell"` placement), any dimension.
    - `key`: a `jax.random.key`; draw a batch with `jax.vmap` over split keys.
    - `candidates`, `min_active`: the number of boxes and the fewest active ones.
    - `centre_fraction`: the central fraction of the extent the centres are drawn from.
    - `max_half_size`: the largest half-size, in cells (`10`: the original, on unit cells).
    - `dtype`: float dtype of the result (float64 needs JAX's 64-bit mode).

    **Returns:** shape `(1, *grid.shape)`.
    """
    _check_grid(grid)
    check_key(key)
    _check_sources(candidates, min_active, centre_fraction, max_half_size)
    dtype = check_float_dtype(dtype)
    return _draw(grid, key, candidates, min_active, float(centre_fraction),
                 float(max_half_size), dtype)  # fmt: skip


@eqx.filter_jit  # eagerly, each small random operation would compile a program of its own
def _draw(grid, key, candidates, min_active, centre_fraction, max_half_size, dtype):
    low, high, strength = _boxes(grid, key, candidates, min_active, centre_fraction,
                                 max_half_size, dtype)  # fmt: skip
    return _rasterise(grid, low, high, strength)


def _boxes(grid, key, candidates, min_active, centre_fraction, max_half_size, dtype):
    """The boxes of one source: `(low, high)` corners `(candidates, d)` (inside the domain)
    and strengths `(candidates,)`, zero for the inactive ones."""
    count_key, centre_key, size_key, strength_key = jax.random.split(key, 4)
    d = grid.ndim
    extent = jnp.asarray(grid.extent, dtype)[None]
    u = jax.random.uniform(count_key, (), dtype)
    active = min_active + jnp.floor((candidates - min_active + 1) * u).astype(jnp.int32)
    centre = jax.random.uniform(centre_key, (candidates, d), dtype) - 0.5
    centre = centre * (centre_fraction * extent) + 0.5 * extent
    cell = extent / jnp.asarray(grid.shape, dtype)[None]
    half = jax.random.uniform(size_key, (candidates, d), dtype) * (max_half_size * cell)
    half = jnp.minimum(half, 0.5 * extent)  # a box never exceeds the domain
    on = (jnp.arange(candidates, dtype=jnp.int32) < active).astype(dtype)
    strength = jax.random.uniform(strength_key, (candidates,), dtype) * on
    centre = jnp.clip(centre, half, extent - half)
    return centre - half, centre + half, strength


def _rasterise(grid, low, high, strength):
    """`sum_b strength_b * coverage_b`: the fraction of every cell each box covers.

    **Returns:** `(1, *grid.shape)`.
    """
    candidates, dtype = strength.shape[0], strength.dtype
    image = strength
    for a in range(grid.ndim):
        h = grid.extent[a] / grid.shape[a]
        faces = np.arange(grid.shape[a] + 1) * h
        left, right = jnp.asarray(faces[None, :-1], dtype), jnp.asarray(faces[None, 1:], dtype)
        covered = jnp.minimum(high[:, a, None], right) - jnp.maximum(low[:, a, None], left)
        cover = jnp.clip(covered / h, 0.0, 1.0)  # (candidates, N_a)
        image = image.reshape((*image.shape, 1)) * cover.reshape(
            (candidates, *(1,) * a, grid.shape[a])
        )
    return jnp.sum(image, axis=0)[None]


def heat_inversion_sampler(
    physics: FourierHeat,
    *,
    batch_size: int = 128,
    candidates: int = 10,
    min_active: int = 4,
    centre_fraction: float = 0.8,
    max_half_size: float = 10.0,
    dtype=jnp.float64,
) -> Sampler:
    """A `trainax_fd.data.Sampler` of `(observations, sources)`: fresh `random_heat_sources`
    `x` at every step and their diffused observations `y = physics(x)`.

    **Arguments:**

    - `physics`: the forward diffusion, a `FourierHeat` (the SIP experiment:
        `FourierHeat(Grid((64, 64), extent=64.0, placement="periodic"), 8.0, 1.0)`, i.e.
        `exp(-4 pi^2 |k|^2 8)` with `k` in cycles per cell).
    - `batch_size`: examples per step (`128`).
    - `candidates`, `min_active`, `centre_fraction`, `max_half_size`: as in
        `random_heat_sources`.
    - `dtype`: dtype of sources and observations (float64, the original's physics precision;
        needs JAX's 64-bit mode).

    **Returns:** a `Sampler`; its batches are `(y, x)`, both `(batch_size, 1, *grid.shape)`.
    """
    if not isinstance(physics, FourierHeat):
        raise TypeError(f"`physics` must be a `FourierHeat`, got {type(physics).__name__}.")
    _check_grid(physics.grid)
    check_int("batch_size", batch_size)
    _check_sources(candidates, min_active, centre_fraction, max_half_size)
    dtype = check_float_dtype(dtype)
    options = (candidates, min_active, float(centre_fraction), float(max_half_size), dtype)
    return Sampler(_PairDraw(physics, options), batch_size=batch_size)


class _PairDraw(eqx.Module):
    """`key -> (physics(x), x)` for one random source `x`."""

    physics: FourierHeat
    options: tuple = eqx.field(static=True)

    def __call__(self, key):
        candidates, min_active, centre_fraction, max_half_size, dtype = self.options
        x = _draw(self.physics.grid, key, candidates, min_active, centre_fraction,
                  max_half_size, dtype)  # fmt: skip
        return self.physics.step(x), x
