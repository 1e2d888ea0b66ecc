"""A batch of initial states from any generator: the package's (`random_fourier(grid, key=)`)
or exponax's (`RandomTruncatedFourierSeries(...)(num_points, key=)`)."""

from collections.abc import Callable

import equinox as eqx
import jax

from .._checks import check_int, check_key
from ..stencil import Grid


def _is_exponax_style(generator) -> bool:
    """exponax's generators are Modules called as `generator(num_points, *, key)` that know
    their `num_spatial_dims`; the package's are functions of a `Grid`."""
    return isinstance(generator, eqx.Module) and hasattr(generator, "num_spatial_dims")


@eqx.filter_jit  # one program for the whole batch
def _draw(generator, where, keys):
    return jax.vmap(lambda k: generator(where, key=k))(keys)


def initial_conditions(generator: Callable, where: Grid | int, num_samples: int, *, key):
    """`num_samples` initial states from `generator`, in one compiled program.

    **Arguments:**

    - `generator`: a generator of the package (`random_fourier`, `gaussian_blobs`, ... or
        any `generator(grid, *, key) -> (channels, *grid.shape)`), or an exponax initial-
        condition generator (`generator(num_points, *, key) -> (channels, *(num_points,) * d)`,
        e.g. `exponax.ic.RandomTruncatedFourierSeries(1, cutoff=5)`).
    - `where`: a `Grid`, or for an exponax generator the points per axis (an int); a `Grid`
        given to an exponax generator must have `d` equal sides of periodic placement.
    - `num_samples`: how many states, an int `>= 1`.
    - `key`: a `jax.random.key` (keyword-only), split into one key per sample.

    **Returns:** shape `(num_samples, channels, *spatial)`, ready for `trajectories`.
    """
    if not callable(generator):
        raise TypeError(f"`generator` must be callable, got {type(generator).__name__}.")
    check_int("num_samples", num_samples)
    check_key(key)
    if _is_exponax_style(generator):
        if isinstance(where, Grid):
            d = generator.num_spatial_dims
            if grid_fits := (
                where.ndim == d
                and len(set(where.shape)) == 1
                and all(p == "periodic" for p in where.placement)
            ):
                where = where.shape[0]
            if not grid_fits:
                raise ValueError(
                    f"`where` must be a periodic grid of {d} equal sides for this exponax "
                    f"generator (or the points per axis, an int), got {where}."
                )
        check_int("where", where)
    elif not isinstance(where, Grid):
        raise TypeError(
            f"`where` must be a `Grid` for the generator {generator!r} (an int only for exponax "
            f"generators), got {type(where).__name__}."
        )
    return _draw(generator, where, jax.random.split(key, num_samples))
