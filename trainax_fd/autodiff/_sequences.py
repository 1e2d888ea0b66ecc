"""Points in the unit cube `[0, 1)^dim`: uniform random, a regular grid, Latin hypercube,
Halton and Sobol sequences. Domains map them onto themselves (`AbstractDomain.sample`)."""

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import check_int, check_key

METHODS = ("uniform", "grid", "lhs", "halton", "sobol")
#: Methods that draw nothing without a key (with one, they are randomly shifted).
DETERMINISTIC = ("grid", "halton", "sobol")
Method = Literal["uniform", "grid", "lhs", "halton", "sobol"]

_PRIMES = tuple(p for p in range(2, 200) if all(p % q for q in range(2, int(p**0.5) + 1)))

# Joe & Kuo's direction numbers (new-joe-kuo-6.21201) for dimensions 2-32: the primitive
# polynomial (leading and trailing bits included) and the initial m_1..m_s. Dimension 1 is
# the van der Corput sequence in base 2.
_SOBOL = (
    (3, (1,)), (7, (1, 3)), (11, (1, 3, 1)), (13, (1, 1, 1)), (19, (1, 1, 3, 3)),
    (25, (1, 3, 5, 13)), (37, (1, 1, 5, 5, 17)), (41, (1, 1, 5, 5, 5)), (47, (1, 1, 7, 11, 19)),
    (55, (1, 1, 5, 1, 1)), (59, (1, 1, 1, 3, 11)), (61, (1, 3, 5, 5, 31)),
    (67, (1, 3, 3, 9, 7, 49)), (91, (1, 1, 1, 15, 21, 21)), (97, (1, 3, 1, 13, 27, 49)),
    (103, (1, 1, 1, 15, 7, 5)), (109, (1, 3, 1, 15, 13, 25)), (115, (1, 1, 5, 5, 19, 61)),
    (131, (1, 3, 7, 11, 23, 15, 103)), (137, (1, 3, 7, 13, 13, 15, 69)),
    (143, (1, 1, 3, 13, 7, 35, 63)), (145, (1, 3, 5, 9, 1, 25, 53)),
    (157, (1, 3, 1, 13, 9, 35, 107)), (167, (1, 3, 1, 5, 27, 61, 31)),
    (171, (1, 1, 5, 11, 19, 41, 61)), (185, (1, 3, 5, 3, 3, 13, 69)),
    (191, (1, 1, 7, 13, 1, 19, 1)), (193, (1, 3, 7, 5, 13, 19, 59)),
    (203, (1, 1, 3, 9, 25, 29, 41)), (211, (1, 3, 5, 13, 23, 1, 55)),
    (213, (1, 3, 7, 3, 13, 59, 17)),
)  # fmt: skip
MAX_SOBOL_DIM = len(_SOBOL) + 1
MAX_HALTON_DIM = len(_PRIMES)
_BITS = 32


def _sobol_directions() -> np.ndarray:
    """Direction numbers `v[k, b]` (uint32, `b`-th bit of dimension `k`), 32 bits."""
    v = np.zeros((MAX_SOBOL_DIM, _BITS), np.uint64)
    v[0] = [1 << (_BITS - 1 - b) for b in range(_BITS)]
    for k, (poly, initial) in enumerate(_SOBOL, start=1):
        s = poly.bit_length() - 1
        m = list(initial)
        for i in range(s, _BITS):
            new = m[i - s] ^ (m[i - s] << s)
            for r in range(1, s):
                if (poly >> (s - r)) & 1:
                    new ^= m[i - r] << r
            m.append(new)
        v[k] = [m[b] << (_BITS - 1 - b) for b in range(_BITS)]
    return v.astype(np.uint32)


_SOBOL_V = _sobol_directions()


def _mantissa(dtype) -> int:
    return min(_BITS, jnp.finfo(dtype).nmant + 1)


def _below_one(s: Array) -> Array:
    """`s` with values rounded up to 1 moved to the largest float below 1."""
    return jnp.minimum(s, jnp.asarray(1.0 - jnp.finfo(s.dtype).epsneg, s.dtype))


def _halton(n: int, dim: int, dtype) -> Array:
    index = jnp.arange(1, n + 1, dtype=jnp.int32)  # from 1: the point 0 lies on the boundary
    columns = []
    for base in _PRIMES[:dim]:
        digits = math.ceil(math.log(n + 1) / math.log(base)) + 1
        i, value, scale = index, jnp.zeros(n, dtype), 1.0 / base
        for _ in range(digits):
            value = value + (i % base).astype(dtype) * jnp.asarray(scale, dtype)
            i, scale = i // base, scale / base
        columns.append(value)
    return jnp.stack(columns, axis=1)


def _sobol_bits(n: int, dim: int) -> Array:
    index = jnp.arange(1, n + 1, dtype=jnp.uint32)  # from 1: the point 0 lies on the boundary
    gray = index ^ (index >> jnp.uint32(1))
    v = jnp.asarray(_SOBOL_V[:dim])
    out = jnp.zeros((n, dim), jnp.uint32)
    for b in range(_BITS):
        bit = ((gray >> jnp.uint32(b)) & jnp.uint32(1)).astype(bool)
        out = out ^ jnp.where(bit[:, None], v[None, :, b], jnp.uint32(0))
    return out


def _to_unit(bits: Array, dtype) -> Array:
    keep = _mantissa(dtype)
    return (bits >> jnp.uint32(_BITS - keep)).astype(dtype) * jnp.asarray(2.0**-keep, dtype)


def grid_side(n: int, dim: int) -> int:
    """Points per axis of a regular grid of `n` points in `dim` dimensions; `ValueError`
    unless `n` is a `dim`-th power."""
    side = round(n ** (1.0 / dim))
    if side**dim != n:
        low = max(1, math.floor(n ** (1.0 / dim)))
        raise ValueError(
            f"`n` must be a perfect {'square' if dim == 2 else f'{dim}-th power'} for a regular "
            f"grid in {dim} dimensions, got {n}; {low**dim} or {(low + 1) ** dim} would do."
        )
    return side


def check_method(method, dim: int, key) -> None:
    """Refuse an unknown method, a missing key, or too many dimensions (before tracing)."""
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
    if key is None and method not in DETERMINISTIC:
        raise ValueError(
            f"`key` must be given for method {method!r} (only {DETERMINISTIC} draw without "
            "one); pass `key=jax.random.key(...)`."
        )
    if key is not None:
        check_key(key)
    if method == "sobol" and dim > MAX_SOBOL_DIM:
        raise ValueError(
            f"method 'sobol' has direction numbers for up to {MAX_SOBOL_DIM} dimensions, the "
            f"points need {dim}; use method='halton' (up to {MAX_HALTON_DIM}) or 'uniform'."
        )
    if method == "halton" and dim > MAX_HALTON_DIM:
        raise ValueError(
            f"method 'halton' has primes for up to {MAX_HALTON_DIM} dimensions, the points "
            f"need {dim}; use method='uniform' or 'lhs'."
        )


def unit_cube(
    n: int, dim: int, method: Method = "uniform", *, key=None, dtype=None
) -> Float[Array, "n dim"]:
    """`n` points in the unit cube `[0, 1)^dim`.

    **Arguments:**

    - `n`, `dim`: how many points, in how many dimensions (ints `>= 1`).
    - `method`:
        - `"uniform"`: independent uniform draws (needs `key`);
        - `"grid"`: the cell centres of a regular grid, `n` a `dim`-th power; with `key`, the
            whole grid shifted by one uniform offset within a cell;
        - `"lhs"`: a Latin hypercube: in every dimension, exactly one point in each of the `n`
            slices `[i/n, (i+1)/n)` (needs `key`);
        - `"halton"`: the Halton sequence (prime bases, up to 46 dimensions), from index 1;
            with `key`, shifted by one uniform offset modulo 1 (a Cranley-Patterson rotation);
        - `"sobol"`: the Sobol sequence (Joe and Kuo's direction numbers, up to 32
            dimensions), from index 1 (the sequence of `scipy.stats.qmc.Sobol(dim,
            scramble=False)` without its first point 0); with `key`, a random digital shift
            (XOR), which keeps its net structure.
    - `key`: a `jax.random.key`, keyword-only; may be `None` for the deterministic methods.
    - `dtype`: a floating dtype (default: JAX's default float).

    **Returns:** shape `(n, dim)`, every value in `[0, 1)`.
    """
    check_int("n", n)
    check_int("dim", dim)
    check_method(method, dim, key)
    dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype, got {dtype}.")
    if method == "grid":
        grid_side(n, dim)
    return _unit_cube(n, dim, method, key, dtype)


@eqx.filter_jit
def _unit_cube(n: int, dim: int, method: str, key, dtype) -> Array:
    if key is not None and not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    if method == "uniform":
        return jax.random.uniform(key, (n, dim), dtype)
    if method == "grid":
        side = grid_side(n, dim)
        axes = jnp.meshgrid(*[jnp.arange(side, dtype=dtype)] * dim, indexing="ij")
        cells = jnp.stack([a.reshape(-1) for a in axes], axis=1)
        offset = (
            jnp.full((dim,), 0.5, dtype) if key is None else jax.random.uniform(key, (dim,), dtype)
        )
        return _below_one((cells + offset[None]) / jnp.asarray(side, dtype))
    if method == "lhs":
        order_key, jitter_key = jax.random.split(key)
        ranks = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(order_key, dim))
        jitter = jax.random.uniform(jitter_key, (n, dim), dtype)
        return _below_one((ranks.T.astype(dtype) + jitter) / jnp.asarray(n, dtype))
    if method == "halton":
        points = _halton(n, dim, dtype)
        if key is not None:
            points = jnp.mod(points + jax.random.uniform(key, (1, dim), dtype), 1.0)
        return _below_one(points)
    bits = _sobol_bits(n, dim)
    if key is not None:
        bits = bits ^ jax.random.bits(key, (1, dim), jnp.uint32)
    return _below_one(_to_unit(bits, dtype))
