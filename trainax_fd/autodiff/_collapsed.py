"""The forward Laplacian: value, gradient and Laplacian carried together through a function.

For `u = g(h(x))`, `∇u = J_g ∇h` and `Δu = J_g Δh + Σ_j D²g[∂_j h, ∂_j h]`. Walking the
function's jaxpr with these rules carries one Laplacian per intermediate instead of one second
derivative per input direction, as nested forward passes do: for a network's linear layers,
`dim + 2` products per layer (value, `dim` gradient rows, the Laplacian) against `1 + 3 dim`
(Li et al. 2023, "A computational framework for neural network-based variational Monte
Carlo with Forward Laplacian"; Dangel et al. 2024, "Kronecker-factored ... collapsed Taylor
mode"). Every primitive goes through the generic rule above, built from `jax.jvp` of the
primitive itself; primitives linear in their differentiated inputs skip the second-order
term, and nested `jit`s are walked into. Only JAX's public API is used
(`jax.make_jaxpr`, `jax.extend.core`).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.extend.core import ClosedJaxpr, Literal

# Primitives linear in all their inputs (the predicate of `select_n` never carries a
# gradient here: booleans are constants).
_LINEAR = frozenset({
    "add", "add_any", "sub", "neg", "reshape", "broadcast_in_dim", "transpose", "reduce_sum",
    "squeeze", "expand_dims", "slice", "dynamic_slice", "gather", "concatenate",
    "convert_element_type", "copy", "copy_p", "pad", "rev", "select_n", "dynamic_update_slice",
    "cumsum", "real", "imag", "conj", "reduce_precision",
})  # fmt: skip
# Primitives linear in each input alone: linear when only one input depends on `x`.
_BILINEAR = frozenset({"mul", "dot_general", "conv_general_dilated"})
_CALLS = frozenset({"jit", "pjit"})
# Elementwise primitives: with one input depending on x, their first and second derivatives
# are arrays of the output's shape, computed once for every direction.
_ELEMENTWISE = frozenset({
    "tanh", "sin", "cos", "tan", "exp", "exp2", "log", "log1p", "expm1", "logistic", "sqrt",
    "rsqrt", "cbrt", "integer_pow", "square", "erf", "erfc", "erf_inv", "atan", "asin", "acos",
    "sinh", "cosh", "asinh", "acosh", "atanh", "abs", "lgamma", "digamma", "pow", "div",
    "atan2", "max", "min", "mul",
})  # fmt: skip


def _linear(name: str, dependent: list[bool]) -> bool:
    if name in _LINEAR:
        return True
    if name in _BILINEAR:
        return sum(dependent) == 1
    return name == "div" and dependent == [True, False]


def _differentiable(value) -> bool:
    return jnp.issubdtype(jnp.result_type(value), jnp.inexact)


def _equation(eqn, inputs: list) -> list:
    """The outputs `(value, tangents (dim, ...) or None, laplacian or None)` of one equation
    from its inputs in the same form (`None`: constant with respect to `x`)."""
    values = [v for v, _, _ in inputs]
    nested = eqn.primitive.name in _CALLS and isinstance(eqn.params.get("jaxpr"), ClosedJaxpr)
    if nested and any(t is not None for _, t, _ in inputs):
        return _walk(eqn.params["jaxpr"], inputs)
    params = eqn.primitive.get_bind_params(eqn.params)

    def bound(*args):
        out = eqn.primitive.bind(*args, **params)
        return tuple(out) if eqn.primitive.multiple_results else (out,)

    dependent = [t is not None for _, t, _ in inputs]
    if not any(dependent):
        return [(v, None, None) for v in bound(*values)]
    where = [i for i, d in enumerate(dependent) if d]

    def g(*args):  # the equation as a function of its inputs that depend on x
        full = list(values)
        for i, a in zip(where, args):
            full[i] = a
        return bound(*full)

    primals = tuple(values[i] for i in where)
    tangents = tuple(inputs[i][1] for i in where)
    laplacians = tuple(inputs[i][2] for i in where)
    out = g(*primals)
    if _linear(eqn.primitive.name, dependent):
        # tangents and Laplacian through the same linear map, in one batch
        stacked = tuple(jnp.concatenate([t, lap[None]]) for t, lap in zip(tangents, laplacians))
        both = jax.vmap(lambda *t: jax.jvp(g, primals, t)[1])(*stacked)
        return [
            (o, b[:-1], b[-1]) if _differentiable(o) else (o, None, None) for o, b in zip(out, both)
        ]

    if eqn.primitive.name in _ELEMENTWISE and len(where) == 1 and len(out) == 1:
        (z,), (t,), (lap,) = primals, tangents, laplacians
        ones = jnp.ones_like(z)

        def slope(z):
            return jax.jvp(lambda z: g(z)[0], (z,), (ones,))[1]

        first, second = jax.jvp(slope, (z,), (ones,))  # g'(z), g''(z), elementwise
        if not _differentiable(out[0]):
            return [(out[0], None, None)]
        return [(out[0], first[None] * t, first * lap + second * jnp.sum(t * t, axis=0))]

    def along(*t):  # the output's tangent along t, and its second derivative along t
        return jax.jvp(lambda *z: jax.jvp(g, z, t)[1], primals, t)

    first, second = jax.vmap(along)(*tangents)
    pushed = jax.jvp(g, primals, laplacians)[1]
    return [
        (o, f, p + jnp.sum(s, axis=0)) if _differentiable(o) else (o, None, None)
        for o, f, p, s in zip(out, first, pushed, second)
    ]


def _walk(closed: ClosedJaxpr, inputs: list) -> list:
    jaxpr = closed.jaxpr
    env = {}

    def read(v):
        return (v.val, None, None) if isinstance(v, Literal) else env[v]

    for var, const in zip(jaxpr.constvars, closed.consts):
        env[var] = (const, None, None)
    for var, value in zip(jaxpr.invars, inputs):
        env[var] = value
    for eqn in jaxpr.eqns:
        outputs = _equation(eqn, [read(v) for v in eqn.invars])
        for var, value in zip(eqn.outvars, outputs):
            env[var] = value
    return [read(v) for v in jaxpr.outvars]


def forward_laplacian(fn: Callable, x: jax.Array) -> jax.Array:
    """`Σ_j ∂²fn/∂x_j²` at one point `x (dim,)` for `fn: (dim,) -> (outputs,)`, shape
    `(outputs,)`, by the forward Laplacian."""
    d = x.shape[0]
    closed = jax.make_jaxpr(fn)(x)
    start = (x, jnp.eye(d, dtype=x.dtype), jnp.zeros(d, x.dtype))
    ((value, _, laplacian),) = _walk(closed, [start])
    return jnp.zeros_like(value) if laplacian is None else laplacian
