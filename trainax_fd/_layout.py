"""Convolutions in the layout XLA's CPU backend runs fast, inside loops too.

XLA:CPU hands a convolution to its fast (Eigen) kernels only in the canonical layout: batch
first, features last (`NWC`, `NHWC`, ...), kernel `(*spatial, in, out)`. It rewrites other
layouts into that one only in a program's top-level computation, so a convolution inside a
`lax.scan`, `while_loop` or `cond` (every step of a compiled training chunk, every rollout
step) written channels-first, as `equinox.nn.Conv` does, runs several times slower.
`canonical_convolutions(fn)` re-traces `fn` with every convolution transposed into the
canonical layout and back: the same numbers, the fast kernels.
"""

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.extend as jex
from jax import lax

_CONV = lax.conv_general_dilated_p


def _canonical_specs(n: int) -> lax.ConvDimensionNumbers:
    """The fast layout's dimension numbers for `n` spatial axes: input and output
    `(batch, *spatial, feature)`, kernel `(*spatial, in, out)`."""
    spatial = tuple(range(1, n + 1))
    lhs = (0, n + 1, *spatial)  # (batch, spatial..., feature)
    rhs = (n + 1, n, *range(n))  # (spatial..., in, out)
    return lax.ConvDimensionNumbers(lhs, rhs, lhs)


def _is_canonical(dn) -> bool:
    return tuple(map(tuple, dn)) == tuple(map(tuple, _canonical_specs(len(dn.lhs_spec) - 2)))


def _rewritable(params) -> bool:
    dn = params["dimension_numbers"]
    return (
        params["feature_group_count"] == 1
        and params["batch_group_count"] == 1
        and not _is_canonical(dn)
    )


def _canonical_conv(lhs, rhs, **params):
    dn = params["dimension_numbers"]
    lhs_perm = (dn.lhs_spec[0], *dn.lhs_spec[2:], dn.lhs_spec[1])
    rhs_perm = (*dn.rhs_spec[2:], dn.rhs_spec[1], dn.rhs_spec[0])
    out_perm = (dn.out_spec[0], *dn.out_spec[2:], dn.out_spec[1])
    params = dict(params, dimension_numbers=_canonical_specs(len(dn.lhs_spec) - 2))
    out = _CONV.bind(lax.transpose(lhs, lhs_perm), lax.transpose(rhs, rhs_perm), **params)
    inverse = [0] * len(out_perm)
    for i, p in enumerate(out_perm):
        inverse[p] = i
    return lax.transpose(out, tuple(inverse))


def _has_conv(jaxpr, any_layout: bool = False) -> bool:
    for eqn in jaxpr.eqns:
        if eqn.primitive is _CONV and (any_layout or _rewritable(eqn.params)):
            return True
        for sub in jex.core.jaxprs_in_params(eqn.params):
            if _has_conv(sub, any_layout):
                return True
    return False


def jaxpr_has_convolution(jaxpr) -> bool:
    """Whether `jaxpr` (or any jaxpr inside it) holds a convolution, in any layout."""
    return _has_conv(jaxpr, any_layout=True)


def _rewrite_param(value):
    if isinstance(value, jex.core.ClosedJaxpr):
        return _rewrite_closed(value) if _has_conv(value.jaxpr) else value
    if isinstance(value, jex.core.Jaxpr) and not value.constvars and _has_conv(value):
        new = _rewrite_closed(jex.core.ClosedJaxpr(value, ()))
        return value if new.consts else new.jaxpr  # an open jaxpr cannot take constants
    if (
        isinstance(value, tuple)
        and value
        and all(isinstance(v, jex.core.ClosedJaxpr | jex.core.Jaxpr) for v in value)
    ):
        return tuple(_rewrite_param(v) for v in value)
    return value


def _rewrite_closed(closed):
    avals = [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in closed.in_avals]
    return jax.make_jaxpr(functools.partial(_eval, closed.jaxpr, closed.consts))(*avals)


def _eval(jaxpr, consts, *args):
    env = {}

    def read(v):
        return v.val if isinstance(v, jex.core.Literal) else env[v]

    for v, x in zip(jaxpr.constvars, consts, strict=True):
        env[v] = x
    for v, x in zip(jaxpr.invars, args, strict=True):
        env[v] = x
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        if eqn.primitive is _CONV and _rewritable(eqn.params):
            outvals = [_canonical_conv(*invals, **eqn.params)]
        else:
            params = {k: _rewrite_param(p) for k, p in eqn.params.items()}
            with eqn.ctx.manager:
                outvals = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(params))
            if not eqn.primitive.multiple_results:
                outvals = [outvals]
        for v, x in zip(eqn.outvars, outvals, strict=True):
            if not isinstance(v, jex.core.DropVar):
                env[v] = x
    return [read(v) for v in jaxpr.outvars]


def _canonical_arrays(fn: Callable) -> Callable:
    """`fn`, a function of PyTrees of arrays only, with its convolutions rewritten: traced
    once to a jaxpr that is replayed with the convolutions (also those inside loops,
    conditionals and nested `jit`s) replaced."""

    @functools.wraps(fn)
    def wrapped(*args):
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
        out = _eval(closed.jaxpr, closed.consts, *jax.tree_util.tree_leaves(args))
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), out)

    return wrapped


def call_canonical(fn: Callable, *args):
    """`fn(*args)` through `canonical_convolutions`, for any PyTrees in and out (the
    non-array parts pass through unchanged, as in `eqx.filter_jit`)."""
    dynamic, static = eqx.partition(args, eqx.is_array)
    out_static = []

    def arrays_only(dynamic):
        dynamic_out, static_out = eqx.partition(fn(*eqx.combine(dynamic, static)), eqx.is_array)
        out_static.append(static_out)
        return dynamic_out

    dynamic_out = _canonical_arrays(arrays_only)(dynamic)
    return eqx.combine(dynamic_out, out_static[0])


def _shapes(tree):
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


def has_convolution(stepper: Callable, state) -> bool:
    """Whether `stepper(state)` holds a convolution, in any layout (`True` when the probe cannot
    trace it). Then its gradient holds convolutions outside the fast layout: JAX's transposes of
    a convolution in the fast layout are outside it. Traces abstractly: tracers are fine."""
    params, static = eqx.partition(stepper, eqx.is_array)
    try:
        closed = jax.make_jaxpr(lambda p, u: eqx.combine(p, static)(u))(
            _shapes(params), _shapes(state)
        )
    except Exception:  # e.g. a stepper that takes more than the state: assume one
        return True
    return _has_conv(closed.jaxpr, any_layout=True)


def canonical_convolutions(fn: Callable) -> Callable:
    """`fn` with every convolution in XLA:CPU's fast layout, also inside loops.

    XLA:CPU runs a convolution on its fast kernels only in the layout batch-first,
    features-last (kernel `(*spatial, in, out)`), and converts other layouts into it only
    outside loops: a channels-first convolution (`equinox.nn.Conv`, `trainax_fd.arch`) inside
    a `lax.scan` or `while_loop`, such as every step of a compiled training loop, runs
    several times slower. This transform traces `fn` once and replays it with every
    convolution (without feature or batch groups) transposed into that layout and back: the
    same values and gradients, the fast kernels. `trainax_fd.trainers.Trainer` and
    `trainax_fd.sweep` apply it on CPU by default; use it on your own compiled loops.

    **Arguments:**

    - `fn`: a function of positional arguments (PyTrees; non-array leaves, such as an
      optimizer or an integer, pass through unchanged, as in `eqx.filter_jit`).

    **Returns:** a function with `fn`'s signature and outputs. Call it inside a `jit`
    (`eqx.filter_jit(canonical_convolutions(fn))`); outside one it replays `fn` op by op.

    !!! example
        ```python
        train = eqx.filter_jit(tf.canonical_convolutions(my_scan_of_optax_steps))
        net, losses = train(net, data, optimizer)  # the same values, the fast kernels
        ```
    """

    @functools.wraps(fn)
    def wrapped(*args):
        return call_canonical(fn, *args)

    return wrapped
