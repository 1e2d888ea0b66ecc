"""The axes of a landscape: how one coordinate value turns the base stepper into another."""

import abc
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from .._custom_types import Scalar


def check_values(values, name: str = "values") -> Float[Array, "points"]:  # noqa: F821
    """`values` as a float array `(points,)`, or a `ValueError` unless it is a non-empty 1D array
    of finite, strictly increasing numbers."""
    try:
        array = np.asarray(values)
    except TypeError as error:  # also a tracer (jax's conversion errors are TypeErrors)
        raise TypeError(
            f"`{name}` must be a concrete 1D array of numbers (e.g. `np.linspace(0.3, 0.9, 50)`), "
            f"got {type(values).__name__}."
        ) from error
    text = np.array2string(array, threshold=8, precision=4)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"`{name}` must be a non-empty 1D array of coordinates (e.g. "
            f"`np.linspace(0.3, 0.9, 50)`), got shape {array.shape}."
        )
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"`{name}` must hold numbers, got dtype {array.dtype}: {text}.")
    if np.iscomplexobj(array) or not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must hold finite real numbers, got {text}.")
    if np.any(np.diff(array) <= 0):
        raise ValueError(f"`{name}` must be strictly increasing, got {text}.")
    return jnp.asarray(array.astype(float))


def _partition(stepper):
    return eqx.partition(stepper, eqx.is_inexact_array)


def _same_structure(a, b) -> bool:
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b):
        return False
    return all(
        (x.shape, x.dtype) == (y.shape, y.dtype)
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    )


def _is_float_shape(x) -> bool:
    return isinstance(x, jax.ShapeDtypeStruct) and jnp.issubdtype(x.dtype, jnp.inexact)


def _shapes(tree):
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


class AbstractAxis(eqx.Module):
    """One axis of a landscape: coordinate values and how a value changes the base stepper.

    Subclasses are final and implement `apply` and `coordinate`.
    """

    values: eqx.AbstractVar[Float[Array, "points"]]  # noqa: F821
    name: eqx.AbstractVar[str | None]

    @abc.abstractmethod
    def apply(self, stepper, value: Scalar):
        """The stepper at coordinate `value` (a scalar, traced and vmapped) on this axis."""

    @abc.abstractmethod
    def coordinate(self, stepper) -> float:
        """Check this axis against the base `stepper` (before tracing) and return the
        coordinate of `stepper` itself on it (`nan` where it has none)."""


class Parameter(AbstractAxis):
    """An axis that sets selected entries of the stepper's parameters to the coordinate value.

    `where` selects, like the `where` of `eqx.tree_at` but down to entries of an array:
    `lambda s: s.w[0]` (one weight), `lambda s: s.conv.weight[..., 1]` (the right tap of every
    filter of a two-tap convolution: all are set to the same value). The selection must pick
    entries of the stepper's floating-point arrays, each at most once, without scaling or
    summing them.

    **Arguments:**

    - `where`: `stepper -> array`, selecting the entries. It is static: define it once and
        reuse it, since a new function (a new `lambda`) compiles the landscape anew.
    - `values`: the coordinates, a non-empty, strictly increasing 1D array `(points,)`.
    - `name`: the axis label (default: the name of `where` if it is a named function).
    """

    where: Callable = eqx.field(static=True)
    values: Float[Array, "points"]  # noqa: F821
    name: str | None = eqx.field(static=True)

    def __init__(self, where: Callable, values, *, name: str | None = None):
        if not callable(where):
            raise TypeError(
                "`where` must be a callable selecting parameters, like `lambda s: s.w[0]`, got "
                f"{type(where).__name__}."
            )
        self.where = where
        self.values = check_values(values)
        if name is None and getattr(where, "__name__", "<lambda>") != "<lambda>":
            name = where.__name__
        self.name = name

    def _select(self, params, static):
        return self.where(eqx.combine(params, static))

    def mask(self, stepper) -> PyTree:
        """The selected entries as a PyTree of the stepper's float arrays: 1 where selected."""
        return _probe(self, stepper)[1]

    def apply(self, stepper, value: Scalar):
        params, static = _partition(stepper)
        x, pull = jax.vjp(lambda p: self._select(p, static), params)
        (mask,) = pull(jnp.ones_like(x))
        # The transpose of a selection scatters `value` onto zeros: exact, no rounding.
        (scattered,) = pull(jnp.full(x.shape, value, x.dtype))
        new = jax.tree_util.tree_map(
            lambda p, m, v: jnp.where(m != 0, v, p), params, mask, scattered
        )
        return eqx.combine(new, static)

    def coordinate(self, stepper) -> float:
        try:
            x, mask, back = _probe(self, stepper)
        except _NotFloat as error:
            raise TypeError(
                "`where` of `Parameter` must return an array of the stepper's floating-point "
                f"parameters, got {error}."
            ) from None
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"`where` of `Parameter` could not select a parameter of the stepper "
                f"{type(stepper).__name__} ({type(error).__name__}: {error})."
            ) from error
        entries = [np.asarray(m) for m in jax.tree_util.tree_leaves(mask)]
        x, back = np.asarray(x), np.asarray(back)
        is_selection = all(np.all((m == 0) | (m == 1)) for m in entries) and np.all(back == 1)
        if x.size == 0 or not is_selection:
            raise ValueError(
                "`where` of `Parameter` must select entries of the stepper's floating-point "
                "parameters, each at most once and unscaled (like `lambda s: s.w[0]` or "
                f"`lambda s: s.weight[..., 0]`); got a selection of shape {x.shape} that is not "
                "(a constant, a sum, a scaled or repeated entry, or a non-array field?)."
            )
        first = float(x.ravel()[0])
        return first if np.all(x == first) else math.nan


class _NotFloat(Exception):
    """`where` returned something other than a float array (raised while tracing)."""


@eqx.filter_jit
def _probe(axis: Parameter, stepper):
    """The selection `x`, its mask (the transpose applied to ones) and the selection of the
    mask (ones for a true selection), in one compiled call per `where`."""
    params, static = _partition(stepper)

    def select(p):
        return axis.where(eqx.combine(p, static))

    x = select(params)
    if not (isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.inexact)):
        dtype = getattr(x, "dtype", None)
        raise _NotFloat(type(x).__name__ + (f" of dtype {dtype}" if dtype else ""))
    x, pull = jax.vjp(select, params)
    (mask,) = pull(jnp.ones_like(x))
    _, back = jax.jvp(select, (params,), (mask,))
    return x, mask, back


class Direction(AbstractAxis):
    """An axis along a direction in parameter space: the stepper plus `value * direction`.

    **Arguments:**

    - `direction`: a PyTree of the stepper's floating-point arrays, e.g. from
        `random_direction` (a whole stepper is filtered to its float arrays).
    - `values`: the coordinates, a non-empty, strictly increasing 1D array `(points,)`;
        `0` is the base stepper.
    - `name`: the axis label.
    """

    direction: PyTree[Array]
    values: Float[Array, "points"]  # noqa: F821
    name: str | None = eqx.field(static=True)

    def __init__(self, direction: PyTree[Array], values, *, name: str | None = None):
        self.direction = eqx.filter(direction, eqx.is_inexact_array)
        self.values = check_values(values)
        self.name = name

    def apply(self, stepper, value: Scalar):
        step = jax.tree_util.tree_map(lambda d: value.astype(d.dtype) * d, self.direction)
        return eqx.apply_updates(stepper, step)

    def coordinate(self, stepper) -> float:
        params = eqx.filter(stepper, eqx.is_inexact_array)
        if not _same_structure(params, self.direction):
            raise ValueError(
                "`direction` of `Direction` must have the structure, shapes and dtypes of the "
                "stepper's floating-point arrays (see `random_direction`), got "
                f"{_shapes(self.direction)} for a stepper with {_shapes(params)}."
            )
        return 0.0


class Custom(AbstractAxis):
    """An axis given by a function `(stepper, value) -> stepper`.

    For changes a `where` cannot express (a tied pair of weights, a coefficient in a log
    scale). The function must be traceable and keep the stepper's structure and shapes.

    **Arguments:**

    - `fn`: `(stepper, value) -> stepper`, `value` a float scalar array.
    - `values`: the coordinates, a non-empty, strictly increasing 1D array `(points,)`.
    - `name`: the axis label.
    - `centre`: the coordinate of the base stepper, if it has one (marked in plots).
    """

    fn: Callable = eqx.field(static=True)
    values: Float[Array, "points"]  # noqa: F821
    name: str | None = eqx.field(static=True)
    centre: float = eqx.field(static=True)

    def __init__(
        self, fn: Callable, values, *, name: str | None = None, centre: float | None = None
    ):
        if not callable(fn):
            raise TypeError(
                f"`fn` must be callable as `fn(stepper, value) -> stepper`, got "
                f"{type(fn).__name__}."
            )
        self.fn = fn
        self.values = check_values(values)
        self.name = name
        self.centre = math.nan if centre is None else float(centre)

    def apply(self, stepper, value: Scalar):
        return self.fn(stepper, value)

    def coordinate(self, stepper) -> float:
        expected = _shapes(eqx.filter(stepper, eqx.is_inexact_array))
        value = jax.ShapeDtypeStruct((), self.values.dtype)
        got = eqx.filter(eqx.filter_eval_shape(self.fn, stepper, value), _is_float_shape)
        if not _same_structure(expected, got):
            raise ValueError(
                "`fn` of `Custom` must return a stepper with the structure, shapes and dtypes "
                f"of the one it is given, got {expected} -> {got}."
            )
        return self.centre
