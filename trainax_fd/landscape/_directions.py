"""Random filter-normalised directions in parameter space (Li et al. 2018)."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._checks import check_key

_VECTORS = ("zero", "copy", "normalise")


def _normalised(d: Array, w: Array, axes: tuple[int, ...]) -> Array:
    """`d` scaled so that its norm over `axes` equals that of `w` (zero where `d` has none)."""
    norm_d = jnp.sqrt(jnp.sum(jnp.abs(d) ** 2, axis=axes, keepdims=True))
    norm_w = jnp.sqrt(jnp.sum(jnp.abs(w) ** 2, axis=axes, keepdims=True))
    scale = jnp.where(norm_d > 0, norm_w / jnp.where(norm_d > 0, norm_d, 1), 0)
    return d * scale.astype(d.dtype)


def _is_vector(path, w: Array) -> bool:
    """Biases and arrays of rank 0 or 1: not a stack of filters."""
    last = path[-1] if path else None
    return w.ndim < 2 or getattr(last, "name", None) == "bias"


@eqx.filter_jit
def _draw(params, key):
    """A standard normal array of each array's shape: one draw per dtype, cut into pieces (one
    random-number program to compile, however many arrays)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    dtypes = sorted({w.dtype for w in leaves}, key=str)
    keys = dict(zip(dtypes, jax.random.split(key, len(dtypes))))
    flat = {
        t: jax.random.normal(keys[t], (sum(w.size for w in leaves if w.dtype == t),), t)
        for t in dtypes
    }
    offsets = dict.fromkeys(dtypes, 0)
    draws = []
    for w in leaves:
        start = offsets[w.dtype]
        draws.append(flat[w.dtype][start : start + w.size].reshape(w.shape))
        offsets[w.dtype] = start + w.size
    return jax.tree_util.tree_unflatten(treedef, draws)


@eqx.filter_jit
def _direction(params, draws, vectors: Array):
    """`vectors` is an index into `_VECTORS`, traced: one compilation for all three."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    out = []
    for (path, w), d in zip(flat, jax.tree_util.tree_leaves(draws)):
        if _is_vector(path, w):
            choices = [jnp.zeros_like(w), w, _normalised(d, w, tuple(range(w.ndim)))]
            out.append(jnp.select([vectors == i for i in range(3)], choices))
        else:  # one filter (conv) or row (linear) per leading index
            out.append(_normalised(d, w, tuple(range(1, w.ndim))))
    return jax.tree_util.tree_unflatten(treedef, out)


def random_direction(
    stepper, *, key: Array, vectors: Literal["zero", "copy", "normalise"] = "zero"
) -> PyTree[Array]:
    """A random filter-normalised direction around `stepper` (Li et al. 2018).

    Each floating-point array `w` of the stepper gets a Gaussian direction `d` of its shape.
    Arrays with two or more axes are taken as a stack of filters along their leading axis
    (Equinox's `Conv` weights `(out, in, *kernel)`, `Linear` weights `(out, in)`): filter `i`
    of `d` is rescaled to the norm of filter `i` of `w`, so a plot shows changes relative to
    each filter's scale. Arrays with fewer axes (scales, scalar coefficients) and arrays named
    `bias` (Equinox's `Conv` biases are `(out, 1, ...)`) follow `vectors`.

    **Arguments:**

    - `stepper`: the stepper (usually a trained one); its floating-point arrays are perturbed.
    - `key`: a `jax.random` key (keyword-only; split per array inside).
    - `vectors`: what happens to arrays of rank 0 or 1: `"zero"` (not perturbed, as in Li et
        al.'s plots), `"copy"` (the direction is the array itself), `"normalise"` (a random
        direction with the array's norm, the array being one filter).

    **Returns:** a PyTree like `eqx.filter(stepper, eqx.is_inexact_array)`: each array has the
    shape of the stepper's array, `None` elsewhere. Pass it to `Direction`.
    """
    if vectors not in _VECTORS:
        raise ValueError(f"`vectors` must be one of {_VECTORS}, got {vectors!r}.")
    check_key(key)
    params = eqx.filter(stepper, eqx.is_inexact_array)
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    if not flat:
        raise ValueError(
            f"`stepper` must hold floating-point arrays to perturb, got {type(stepper).__name__} "
            "with none."
        )
    if vectors == "zero" and all(_is_vector(path, w) for path, w in flat):
        raise ValueError(
            "`vectors` is 'zero' but every array of the stepper is a bias or has fewer than 2 "
            f"axes (shapes {[w.shape for _, w in flat]}), so the direction would be zero; pass "
            "`vectors='normalise'` or use `Parameter` axes."
        )
    code = jnp.asarray(_VECTORS.index(vectors), jnp.int32)
    return _direction(params, _draw(params, key), code)
