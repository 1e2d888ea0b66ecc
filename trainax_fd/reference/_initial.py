"""Initial-condition generators on a `Grid`; random ones take an explicit `key`, or a batch of
keys for a batch of samples in one compiled program."""

import functools
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .._checks import check_int, check_key
from .._custom_types import State
from ..stencil import Grid


def _batched(generator):
    """`generator(grid, key=keys, ...)` for a batch of keys (typed keys `(n, ...)`, raw keys
    `(n, ..., 2)`) returns `(n, ..., channels, *spatial)`: the samples of each key, vmapped
    inside the one compiled program."""

    @functools.wraps(generator)
    def call(grid: Grid, *, key, **kwargs):
        check_key(key, batch=True)
        single = 0 if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else 1
        if key.ndim > single:
            return jax.vmap(lambda k: call(grid, key=k, **kwargs))(key)
        return generator(grid, key=key, **kwargs)

    return call


def _relative_mesh(grid: Grid) -> tuple[jax.Array, ...]:
    """Coordinates divided by the extent: every axis runs over `[0, 1)` or `(0, 1)`."""
    return tuple(x / length for x, length in zip(grid.mesh(), grid.extent))


def sine(grid: Grid, frequencies: float | Sequence[float] = 1.0, amplitude: float = 1.0) -> State:
    """`amplitude * prod_a sin(2 pi f_a x_a / L_a)`, shape `(1, *spatial)`.

    Integer `f` is periodic; `f = 0.5` is the half sine that vanishes at both ends (the
    Dirichlet mode on a `"vertex"` grid). `frequencies` are concrete numbers (one program per
    set of them); `amplitude` may be an array or traced (a new value does not recompile).
    """
    freqs = (frequencies,) * grid.ndim if np.ndim(frequencies) == 0 else tuple(frequencies)
    if len(freqs) != grid.ndim:
        raise ValueError(
            f"`frequencies` must be a scalar or one per axis ({grid.ndim}), got {freqs}."
        )
    return _sine(grid, tuple(float(f) for f in freqs), jnp.asarray(amplitude))


@eqx.filter_jit  # one program, not one per operation
def _sine(grid: Grid, freqs: tuple[float, ...], amplitude) -> State:
    out = amplitude * jnp.ones(grid.shape)
    for x, f in zip(_relative_mesh(grid), freqs):
        out = out * jnp.sin(2 * np.pi * f * x)
    return out[None]


@eqx.filter_jit  # one compiled program per configuration, also when called eagerly
@_batched
def random_fourier(
    grid: Grid,
    *,
    key: PRNGKeyArray,
    max_wavenumber: int = 5,
    channels: int = 1,
    zero_mean: bool = True,
    basis: str = "fourier",
) -> State:
    """A random truncated Fourier series, normalised to a maximum magnitude of 1.

    Each mode `kappa` with `|kappa_a| <= max_wavenumber` gets a normal coefficient scaled by
    `1 / (1 + |kappa|^2)`; `basis="fourier"` is periodic (complex exponentials), `"sine"`
    uses `prod_a sin(pi m_a x_a / L_a)`, `m_a >= 1`, which vanishes on every boundary.
    `zero_mean` drops the constant mode of the Fourier basis.

    **Returns:** shape `(channels, *spatial)`; `(n, channels, *spatial)` for a batch of `n`
    keys (`key=jax.random.split(key, n)`), in one compiled program.
    """
    check_int("max_wavenumber", max_wavenumber)
    check_int("channels", channels)
    if basis not in ("fourier", "sine"):
        raise ValueError(f"`basis` must be 'fourier' or 'sine', got {basis!r}.")
    coords = [jnp.asarray(grid.coordinates(a) / grid.extent[a]) for a in range(grid.ndim)]
    if basis == "fourier":
        modes = np.arange(-max_wavenumber, max_wavenumber + 1)
        phases = [2 * np.pi * jnp.asarray(modes[:, None], c.dtype) * c[None] for c in coords]
        per_axis = [jax.lax.complex(jnp.cos(p), jnp.sin(p)) for p in phases]
    else:
        modes = np.arange(1, max_wavenumber + 1)
        per_axis = [jnp.sin(np.pi * jnp.asarray(modes[:, None], c.dtype) * c[None]) for c in coords]
    k2 = sum(np.meshgrid(*[modes**2] * grid.ndim, indexing="ij"))
    weight = 1.0 / (1.0 + k2)
    if basis == "fourier" and zero_mean:
        weight[(max_wavenumber,) * grid.ndim] = 0.0
    weight = jnp.asarray(weight[None])
    key_re, key_im = jax.random.split(key)
    shape = (channels, *weight.shape[1:])
    coef = jax.random.normal(key_re, shape) * weight
    if basis == "fourier":
        coef = jax.lax.complex(coef, jax.random.normal(key_im, shape) * weight)
    out = coef  # (channels, *modes); each contraction turns the leading mode axis into space
    for basis_a in per_axis:
        out = jnp.tensordot(out, basis_a, axes=([1], [0]))
    out = jnp.real(out)
    return out / jnp.max(jnp.abs(out), axis=tuple(range(1, out.ndim)), keepdims=True)


def _features(grid: Grid, key: PRNGKeyArray, count: int, channels: int, sizes, size_axes: int):
    """Random features in relative coordinates, with the mesh they are evaluated on.

    **Returns:** `(x, centre, size, amplitude)`: `x` of shape `(1, 1, dim, *spatial)`, then per
    feature `(channels, count, ...)` arrays padded with one axis per spatial dimension so that
    they broadcast against `x`: centres uniform in `[0.2, 0.8]` per axis, `size_axes` sizes
    uniform in `sizes`, amplitudes uniform in `[-1, 1]`.
    """
    keys = jax.random.split(key, 3)
    expand = (...,) + (None,) * grid.ndim
    centre = jax.random.uniform(keys[0], (channels, count, grid.ndim), minval=0.2, maxval=0.8)
    size = jax.random.uniform(
        keys[1], (channels, count, size_axes), minval=sizes[0], maxval=sizes[1]
    )
    amplitude = jax.random.uniform(keys[2], (channels, count), minval=-1.0, maxval=1.0)
    x = jnp.stack(_relative_mesh(grid))[None, None]
    return x, centre[expand], size[expand], amplitude[expand]


@eqx.filter_jit
@_batched
def random_soft_rectangles(
    grid: Grid,
    *,
    key: PRNGKeyArray,
    count: int = 3,
    channels: int = 1,
    softness: float = 0.02,
) -> State:
    """A sum of `count` smoothed boxes per channel (random centre, size and amplitude in [-1, 1]).

    Each box is `prod_a [sigmoid((x_a - lo_a) / w) - sigmoid((x_a - hi_a) / w)]` in coordinates
    relative to the extent, with edge width `w = softness`.

    **Returns:** shape `(channels, *spatial)`; `(n, channels, *spatial)` for a batch of `n`
    keys (`key=jax.random.split(key, n)`), in one compiled program.
    """
    check_int("count", count)
    check_int("channels", channels)
    if not softness > 0:
        raise ValueError(f"`softness` must be positive, got {softness!r}.")
    x, centre, size, amplitude = _features(grid, key, count, channels, (0.05, 0.2), grid.ndim)
    lo, hi = centre - size, centre + size  # (channels, count, dim, *ones)
    box = jax.nn.sigmoid((x - lo) / softness) - jax.nn.sigmoid((x - hi) / softness)
    return jnp.sum(amplitude * jnp.prod(box, axis=2), axis=1)


@eqx.filter_jit
@_batched
def gaussian_blobs(
    grid: Grid,
    *,
    key: PRNGKeyArray,
    count: int = 3,
    channels: int = 1,
    width: tuple[float, float] = (0.03, 0.1),
) -> State:
    """A sum of `count` Gaussian blobs per channel, `a exp(-|x - c|^2 / (2 s^2))`.

    Centres uniform in the inner 60 % of the domain, amplitudes in `[-1, 1]`, widths `s`
    uniform in `width` (relative to the extent).

    **Returns:** shape `(channels, *spatial)`; `(n, channels, *spatial)` for a batch of `n`
    keys (`key=jax.random.split(key, n)`), in one compiled program.
    """
    check_int("count", count)
    check_int("channels", channels)
    if np.ndim(width) != 1 or len(width) != 2 or not 0 < width[0] <= width[1]:
        raise ValueError(f"`width` must be (low, high) with 0 < low <= high, got {width!r}.")
    x, centre, sigma, amplitude = _features(grid, key, count, channels, width, 1)
    r2 = jnp.sum((x - centre) ** 2, axis=2)  # (channels, count, *spatial)
    return jnp.sum(amplitude * jnp.exp(-r2 / (2 * sigma[:, :, 0] ** 2)), axis=1)
