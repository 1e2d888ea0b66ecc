"""Argument checks shared across the package."""


def check_int(name: str, value, minimum: int = 1) -> int:
    """`value` itself if it is an int `>= minimum` (bools refused), else a `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")
    return value


def check_key(key, name: str = "key", *, batch: bool = False) -> None:
    """A `TypeError` unless `key` is one PRNG key: a `jax.random.key` (shape `()`) or a raw
    `jax.random.PRNGKey` (`uint32`, shape `(2,)`, or `(4,)` for the "rbg" implementations);
    with `batch`, leading batch axes are allowed too. Traced keys are checked by shape."""
    import jax
    import numpy as np

    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    raw = dtype == np.uint32 and len(shape) >= 1 and shape[-1] in (2, 4)
    if (typed and (batch or shape == ())) or (raw and (batch or len(shape) == 1)):
        return
    got = type(key).__name__ if dtype is None else f"dtype {dtype} and shape {shape}"
    hint = ""
    if typed or raw:
        hint = "; one key: build several things with `eqx.filter_vmap` over split keys"
    raise TypeError(
        f"`{name}` must be a `jax.random.key` (or a raw `jax.random.PRNGKey`){hint}, got {got}."
    )
