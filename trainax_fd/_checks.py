"""Argument checks shared across the package."""

import os
import sys
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

#: Frames in these packages are never blamed for a warning: the user's line is.
_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (eqx.__file__, jax.__file__, __file__)
)


def check_int(name: str, value, minimum: int = 1) -> int:
    """`value` as a Python int if it is an integer `>= minimum` (NumPy integers too, bools
    refused), else a `ValueError`."""
    integer = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not integer or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")
    return int(value)


def check_key(key, name: str = "key", *, batch: bool = False) -> None:
    """A `TypeError` unless `key` is one PRNG key: a `jax.random.key` (shape `()`) or a raw
    `jax.random.PRNGKey` (`uint32`, shape `(2,)`, or `(4,)` for the "rbg" implementations);
    with `batch`, leading batch axes are allowed too. Traced keys are checked by shape."""
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


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """`warnings.warn` pointing at the first frame outside trainax_fd, Equinox and JAX.

    A fixed `stacklevel` is wrong for code reached through Equinox's Module construction (and
    through the package's own helpers), which adds frames between the user's line and ours.
    """
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level + 1)


def is_concrete(*values) -> bool:
    """Whether none of `values` is traced (so Python-side checks can look at them)."""
    return not any(isinstance(v, jax.core.Tracer) for v in jax.tree_util.tree_leaves(values))


def _describe(values: np.ndarray, bad: np.ndarray) -> str:
    """A value for a message: the scalar itself, or where an array's first bad entry is."""
    if values.ndim == 0:
        return str(values[()])
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return (
        f"an array of shape {values.shape} with {values[index]} at index {index} "
        f"({int(bad.sum())} such entr{'y' if bad.sum() == 1 else 'ies'})"
    )


def check_finite(value, name: str, *, nonnegative: bool = False, why_nonnegative: str = ""):
    """`value` if every entry is finite (and `>= 0` with `nonnegative`; `why_nonnegative` is
    added to that message).

    Concrete values raise a `ValueError` now; traced ones (e.g. coefficients swept under
    `jax.vmap`) are checked when run: the returned value carries an `eqx.error_if`, so store
    and use it.
    """
    if not is_concrete(value):
        bad = ~jnp.isfinite(value)
        if nonnegative:
            bad = bad | (value < 0)
        expected = "finite and >= 0" if nonnegative else "finite"
        return eqx.error_if(value, jnp.any(bad), f"`{name}` must be {expected}.")
    values = np.asarray(value)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"`{name}` must be finite, got {_describe(values, bad)}.")
    if nonnegative and (values < 0).any():
        raise ValueError(
            f"`{name}` must be >= 0{why_nonnegative}, got {_describe(values, values < 0)}."
        )
    return value


def _leaves(tree) -> list[tuple[str, object]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(path) or "<root>", leaf) for path, leaf in flat]


def as_arrays(tree, name: str, expected: str):
    """`tree` with every leaf a JAX array; a `TypeError` naming the first leaf that is not
    array-like (a file name, an object), saying what is `expected`."""

    def convert(path, leaf):
        where = jax.tree_util.keystr(path) or "<root>"
        if isinstance(leaf, str | bytes | os.PathLike):
            got = repr(leaf) if isinstance(leaf, os.PathLike) else f"str {leaf!r}"
            raise TypeError(
                f"`{name}` must hold arrays {expected}, got {got} at {where}. Load the file "
                "first, e.g. `np.load(path)`."
            )
        try:
            if isinstance(leaf, np.ndarray):  # one device copy (`jnp.asarray` keeps two)
                return jax.device_put(leaf)
            return jnp.asarray(leaf)
        except (TypeError, ValueError):
            raise TypeError(
                f"`{name}` must hold arrays {expected}, got {type(leaf).__name__} at {where}."
            ) from None

    return jax.tree_util.tree_map_with_path(convert, tree)


def check_data(tree, name: str, axes: tuple[str, ...], expected: str) -> None:
    """Refuse data a model cannot be trained on: an empty leaf (`ValueError`), a dtype that is
    not floating point (`TypeError`), or a NaN/inf (`ValueError` naming the first bad entry
    along `axes`, e.g. sample and time level). Leaves are JAX arrays with at least `len(axes)`
    axes; `expected` describes their shape.

    The NaN check runs once, on concrete data only (tracers are skipped): arrays on the CPU are
    read in place by NumPy (no compilation); arrays on an accelerator are reduced there by
    one small compiled program, and only copied to the host to find the first bad entry.
    """
    leaves = _leaves(tree)
    for path, leaf in leaves:
        if leaf.size == 0:
            raise ValueError(
                f"`{name}` must not be empty: every axis of {expected} needs size >= 1, got "
                f"shape {leaf.shape} at {path}."
            )
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(
                f"`{name}` must have a floating-point dtype, got dtype {leaf.dtype} at {path}; "
                "convert it, e.g. `data.astype(jnp.float32)`."
            )
    concrete = [(path, leaf) for path, leaf in leaves if is_concrete(leaf)]
    if all(_all_finite(leaf) for _, leaf in concrete):
        return
    first = None  # (index along `axes`, path, value, count) of the earliest bad entry
    for path, leaf in concrete:
        values = np.asarray(leaf)
        bad = ~np.isfinite(values)
        if not bad.any():
            continue
        per_index = bad.reshape(*bad.shape[: len(axes)], -1).any(axis=-1)
        index = tuple(int(i) for i in np.argwhere(per_index)[0])
        if first is None or index < first[0]:
            value = np.atleast_1d(values[index])[np.atleast_1d(bad[index])][0].item()
            first = (index, path, value, int(bad.sum()))
    index, path, value, count = first
    where = ", ".join(f"{axis} {i}" for axis, i in zip(axes, index))
    raise ValueError(
        f"`{name}` must be finite, got {value!r} at {where} (leaf {path}; {count} non-finite "
        f"value{'s' if count > 1 else ''} in that leaf)."
    )


def _all_finite(leaf) -> bool:
    if all(device.platform == "cpu" for device in leaf.devices()):
        values = np.asarray(leaf)  # a view, no copy
        parts = (values.real, values.imag) if np.iscomplexobj(values) else (values,)
        # min and max propagate NaN: two passes, no boolean temporary as big as the data
        return all(np.isfinite(p.min()) and np.isfinite(p.max()) for p in parts)
    return bool(_device_all_finite(leaf))


@jax.jit
def _device_all_finite(leaf):
    return jnp.all(jnp.isfinite(leaf))


def check_stepper(stepper, state, name: str = "stepper") -> None:
    """A `ValueError` unless `stepper(state)` has the structure, shapes and dtypes of `state`
    (`eqx.filter_eval_shape`: traces `stepper`, compiles nothing)."""
    check_step(state, eqx.filter_eval_shape(stepper, state), name)


def check_step(state, next_state, name: str = "stepper") -> None:
    """A `ValueError` unless `next_state`, made by `name` from `state`, has the structure,
    shapes and dtypes of `state` (arrays or `jax.ShapeDtypeStruct`s; at trace time, e.g. in
    a scan's body before the scan compares its carries)."""
    expected = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    got = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if eqx.is_array(x) else x, next_state
    )
    same = jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(expected) and all(
        (getattr(a, "shape", None), getattr(a, "dtype", None)) == (b.shape, b.dtype)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected))
    )
    if not same:
        raise ValueError(
            f"`{name}` must map one state to a state of the same structure, shape and dtype "
            f"(one sample `(channels, *spatial)`; batch with `jax.vmap`), got "
            f"{_shapes(expected)} -> {_shapes(got)}."
        )


class _Shown(str):
    def __repr__(self) -> str:
        return str(self)


def _shapes(tree) -> str:
    """`float32[1, 8]` per array leaf (JAX's notation), the structure kept."""

    def show(x):
        if isinstance(x, jax.ShapeDtypeStruct):
            return _Shown(f"{x.dtype}[{', '.join(map(str, x.shape))}]")
        return x

    return str(jax.tree_util.tree_map(show, tree))
