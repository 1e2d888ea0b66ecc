"""Derivatives of a function of one point, `u(x)` with `x` of shape `(dim,)`: Jacobian and
Hessian entries, gradients, divergence, the Laplacian, and mixed partials by name.

Every function takes one point; batches of points are `jax.vmap` at the call site. `fn` is
any callable (an Equinox network, a closure) returning a scalar or a vector `(outputs,)`. Each
is compiled as one program (`eqx.filter_jit`, inlined inside a compiled function): called
eagerly, its few dozen operations would each compile on their own.
Entries are computed with as few passes as they need (one forward pass for a Jacobian entry,
two nested ones for a Hessian entry), never by building a whole Jacobian and indexing it.
"""

from collections.abc import Callable, Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.experimental import jet
from jaxtyping import Array, Float

from .._custom_types import Scalar
from ._collapsed import forward_laplacian

#: One point: `(dim,)`.
Point = Float[Array, "dim"]
LAPLACIAN_METHODS = ("collapsed", "forward", "forward_reverse", "taylor")


def check_point(x, name: str = "x") -> Array:
    """`x` as one floating-point point `(dim,)`, else a `ValueError`/`TypeError` that says so."""
    if not hasattr(x, "shape"):
        try:
            x = jnp.asarray(x)
        except TypeError:
            raise TypeError(
                f"`{name}` must be one point, an array of shape (dim,), got {type(x).__name__}."
            ) from None
    if len(x.shape) != 1 or x.shape[0] < 1:
        raise ValueError(
            f"`{name}` must be one point of shape (dim,) with dim >= 1 (batch points with "
            f"`jax.vmap`), got shape {tuple(x.shape)}."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"`{name}` must be floating point, got dtype {x.dtype}; convert it, e.g. "
            "`x.astype(jnp.float32)`."
        )
    return x


def output_size(fn: Callable, x: Array) -> tuple[int, bool]:
    """`(outputs, scalar)`: the size of `fn(x)` and whether it is a scalar; checked."""
    if not callable(fn):
        raise TypeError(f"`fn` must be callable as `fn(x) -> u`, got {type(fn).__name__}.")
    out = jax.eval_shape(fn, x)
    if not isinstance(out, jax.ShapeDtypeStruct) or len(out.shape) > 1:
        got = out.shape if isinstance(out, jax.ShapeDtypeStruct) else type(out).__name__
        raise ValueError(
            "`fn` must return a scalar or a vector of shape (outputs,) at one point of shape "
            f"(dim,), got {got}."
        )
    return (1, True) if out.shape == () else (out.shape[0], False)


def _index(name: str, value, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise ValueError(f"`{name}` must be an int in [0, {size}) ({what}), got {value!r}.")
    return value


def _scalar_fn(fn: Callable, x: Array, component: int | None) -> Callable:
    """`y -> fn(y)[component]` as a scalar function, the component checked."""
    m, _ = output_size(fn, x)
    if component is None:
        if m != 1:
            raise ValueError(
                f"`component` must be given for a function with {m} outputs (an int in "
                f"[0, {m})), got None."
            )
        component = 0
    _index("component", component, m, f"one of the {m} outputs")
    return lambda y: jnp.reshape(fn(y), (-1,))[component]


def _basis(x: Array, j: int) -> Array:
    return (jnp.arange(x.shape[0]) == j).astype(x.dtype)


def _directional(fn: Callable, direction: Array) -> Callable:
    """`y -> d/dt fn(y + t direction)` at `t = 0`: one forward pass."""
    return lambda y: jax.jvp(fn, (y,), (direction,))[1]


@eqx.filter_jit
def jacobian(fn: Callable, x: Point) -> Float[Array, "outputs dim"]:
    """The Jacobian `J[i, j] = ∂u_i/∂x_j` of `u = fn(x)` at one point.

    **Arguments:**

    - `fn`: `x (dim,) -> u`, a scalar or `(outputs,)`.
    - `x`: one point, shape `(dim,)`.

    **Returns:** shape `(outputs, dim)` (a scalar `u` counts as one output). Forward mode when
    `dim <= outputs`, reverse mode otherwise.

    !!! example
        ```python
        jax.vmap(lambda p: jacobian(jnp.sin, p))(x)  # x (2, 2): J[n] = diag(cos(x[n]))
        ```
    """
    x = check_point(x)
    m, _ = output_size(fn, x)

    def vector(y):
        return jnp.reshape(fn(y), (m,))

    return (jax.jacfwd if x.shape[0] <= m else jax.jacrev)(vector)(x)


@eqx.filter_jit
def jacobian_entry(fn: Callable, x: Point, i: int, j: int) -> Scalar:
    """One Jacobian entry `∂u_i/∂x_j` at one point: one forward pass along `x_j`.

    **Arguments:** `fn` (`x (dim,) -> u`, scalar or `(outputs,)`), `x` (one point `(dim,)`),
    `i` (the output, `0` for a scalar `u`), `j` (the input).

    **Returns:** a scalar.
    """
    x = check_point(x)
    m, _ = output_size(fn, x)
    _index("i", i, m, f"one of the {m} outputs")
    _index("j", j, x.shape[0], f"one of the {x.shape[0]} inputs")
    return jnp.reshape(_directional(fn, _basis(x, j))(x), (m,))[i]


@eqx.filter_jit
def gradient(fn: Callable, x: Point, component: int | None = None) -> Float[Array, "dim"]:  # noqa: F821
    """The gradient `∇u` of one output of `fn` at one point (reverse mode).

    **Arguments:** `fn` (`x (dim,) -> u`), `x` (one point `(dim,)`), `component` (which output
    of a vector `u`; `None` for a scalar or one-output `u`).

    **Returns:** shape `(dim,)`.
    """
    x = check_point(x)
    return jax.grad(_scalar_fn(fn, x, component))(x)


@eqx.filter_jit
def hessian(fn: Callable, x: Point, component: int | None = None) -> Float[Array, "dim dim"]:
    """The Hessian `H[j, k] = ∂²u/∂x_j∂x_k` of one output of `fn` at one point
    (forward over reverse).

    **Arguments:** `fn`, `x` (one point `(dim,)`), `component` (as for `gradient`).

    **Returns:** shape `(dim, dim)`.
    """
    x = check_point(x)
    return jax.hessian(_scalar_fn(fn, x, component))(x)


@eqx.filter_jit
def hessian_entry(fn: Callable, x: Point, j: int, k: int, component: int | None = None) -> Scalar:
    """One Hessian entry `∂²u/∂x_j∂x_k` at one point: two nested forward passes.

    **Arguments:** `fn`, `x` (one point `(dim,)`), `j`, `k` (the inputs), `component` (as for
    `gradient`).

    **Returns:** a scalar.
    """
    x = check_point(x)
    f = _scalar_fn(fn, x, component)
    d = x.shape[0]
    _index("j", j, d, f"one of the {d} inputs")
    _index("k", k, d, f"one of the {d} inputs")
    return _directional(_directional(f, _basis(x, j)), _basis(x, k))(x)


@eqx.filter_jit
def divergence(fn: Callable, x: Point) -> Scalar:
    """The divergence `Σ_j ∂u_j/∂x_j` of a vector field `fn: (dim,) -> (dim,)` at one point:
    one forward pass per input, without the off-diagonal Jacobian entries' reductions.

    **Returns:** a scalar.
    """
    x = check_point(x)
    m, scalar = output_size(fn, x)
    if scalar or m != x.shape[0]:
        raise ValueError(
            f"`fn` must map a point of shape ({x.shape[0]},) to a vector field of the same "
            f"shape for a divergence, got {'a scalar' if scalar else f'shape ({m},)'}."
        )
    eye = jnp.eye(x.shape[0], dtype=x.dtype)
    return jnp.sum(jax.vmap(lambda e: jnp.dot(_directional(fn, e)(x), e))(eye))


@eqx.filter_jit
def laplacian(
    fn: Callable,
    x: Point,
    *,
    method: Literal["collapsed", "forward", "forward_reverse", "taylor"] = "collapsed",
) -> Float[Array, "*outputs"]:
    """The Laplacian `Σ_j ∂²u/∂x_j²` of every output of `fn` at one point, without building
    the Hessian.

    **Arguments:**

    - `fn`: `x (dim,) -> u`, a scalar or `(outputs,)`.
    - `x`: one point, shape `(dim,)`.
    - `method`: how it is taken; all give the same values:
        - `"collapsed"` (default): the forward Laplacian: the value, the `dim` gradient rows
            and one Laplacian carried together through `fn`'s operations (its jaxpr), so a
            linear layer costs `dim + 2` products instead of `1 + 3 dim`;
        - `"forward"`: forward over forward, the second derivative along each input
            direction (the directions vmapped), summed;
        - `"forward_reverse"`: a Hessian-vector product per direction (forward over
            reverse);
        - `"taylor"`: second-order Taylor mode per direction (`jax.experimental.jet`, which
            supports fewer primitives).

        The benchmark README compares their cost with `jnp.trace(jax.hessian(fn)(x))`. If a
        primitive inside `fn` has no forward-mode rule that `"collapsed"` can use, take
        `"forward"`.

    **Returns:** the shape of `fn(x)`: a scalar, or `(outputs,)` (one Laplacian per output).
    """
    x = check_point(x)
    m, scalar = output_size(fn, x)
    if method not in LAPLACIAN_METHODS:
        raise ValueError(f"`method` must be one of {LAPLACIAN_METHODS}, got {method!r}.")

    def vector(y):
        return jnp.reshape(fn(y), (m,))

    if method == "collapsed":
        out = forward_laplacian(vector, x)
        return out[0] if scalar else out
    eye = jnp.eye(x.shape[0], dtype=x.dtype)
    if method == "forward":

        def along(e):
            return _directional(_directional(vector, e), e)(x)

    elif method == "forward_reverse":
        rows = jax.jacrev(vector)

        def along(e):
            return jnp.dot(_directional(rows, e)(x), e)

    else:

        def along(e):
            return jet.jet(vector, (x,), ((e, jnp.zeros_like(e)),))[1][1]

    out = jnp.sum(jax.vmap(along)(eye), axis=0)
    return out[0] if scalar else out


def _default_names(kind: str, size: int) -> str | None:
    defaults = {"inputs": {1: "x", 2: "xy", 3: "xyz"}, "outputs": {1: "u", 2: "uv", 3: "uvw"}}
    return defaults[kind].get(size)


def _names(kind: str, given: str | Sequence[str] | None, size: int) -> tuple[str, ...]:
    names = _default_names(kind, size) if given is None else given
    if names is None:
        example = "txyz"[:size] if kind == "inputs" else "uvwp"[:size]
        raise ValueError(
            f"`{kind}` must name the {size} {kind} (one letter each, e.g. {example!r}) when there "
            f"are more than 3, got None."
        )
    names = tuple(names)
    if (
        len(names) != size
        or len(set(names)) != size
        or not all(isinstance(c, str) and len(c) == 1 and c.isalpha() for c in names)
    ):
        raise ValueError(
            f"`{kind}` must give {size} distinct letters, one per {kind[:-1]}, got {given!r}."
        )
    return names


def parse_derivative(
    name: str, inputs: Sequence[str], outputs: Sequence[str]
) -> tuple[int, tuple[int, ...]]:
    """`(output, input axes)` of a derivative named like `"u_xy"`; a `ValueError` otherwise."""
    expected = (
        f"an output name ({', '.join(outputs)}), optionally followed by `_` and input names "
        f"({', '.join(inputs)}), e.g. {outputs[0] + '_' + inputs[0] * 2!r}"
    )
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, {expected}; got {type(name).__name__}.")
    head, sep, tail = name.partition("_")
    if head not in outputs or (sep and not tail) or any(c not in inputs for c in tail):
        raise ValueError(f"`name` must be {expected}; got {name!r}.")
    return outputs.index(head), tuple(inputs.index(c) for c in tail)


@eqx.filter_jit
def derivative(
    fn: Callable,
    x: Point,
    name: str,
    *,
    inputs: str | Sequence[str] | None = None,
    outputs: str | Sequence[str] | None = None,
) -> Scalar:
    """A partial derivative of any order by name, `"u_xx"`, `"u_xy"`, `"v_xxy"`, at one
    point: one nested forward pass per letter after the `_` (`"u"` alone is the value).

    **Arguments:**

    - `fn`: `x (dim,) -> u`, a scalar or `(outputs,)`.
    - `x`: one point, shape `(dim,)`.
    - `name`: `<output>_<inputs>`, e.g. `"u_xy"` for `∂²u/∂x∂y`.
    - `inputs`: one letter per input (default `"x"`, `"xy"`, `"xyz"` for 1, 2, 3 inputs;
        required beyond; e.g. `"tx"` for space-time).
    - `outputs`: one letter per output (default `"u"`, `"uv"`, `"uvw"` for 1, 2, 3 outputs).

    **Returns:** a scalar.

    !!! example
        ```python
        u_xy = derivative(net, x, "u_xy")  # ∂²u/∂x∂y at the point x (2,)
        ```
    """
    x = check_point(x)
    m, _ = output_size(fn, x)
    output, axes = parse_derivative(
        name, _names("inputs", inputs, x.shape[0]), _names("outputs", outputs, m)
    )
    f = lambda y: jnp.reshape(fn(y), (m,))[output]  # noqa: E731
    for axis in axes:
        f = _directional(f, _basis(x, axis))
    return f(x)
