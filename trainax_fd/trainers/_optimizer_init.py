"""An optimizer's initial state without compiling small programs for it.

Run eagerly, `optax.adam(...).init(params)` compiles three tiny XLA programs
(`broadcast_in_dim`, two `convert_element_type`): ~0.07 s on a 2-core CPU, a tenth of a small
training. Most optimizers' initial states are constants and copies of the parameters, so
`optimizer_init` traces `init` once and evaluates such a trace with NumPy; anything else runs
as one compiled program.
"""

import jax
import jax.extend as jex
import numpy as np

_HOST_RULES = {
    "broadcast_in_dim": lambda x, shape, broadcast_dimensions, **_: np.broadcast_to(
        np.expand_dims(x, tuple(i for i in range(len(shape)) if i not in broadcast_dimensions)),
        shape,
    ),
    "convert_element_type": lambda x, new_dtype, **_: np.asarray(x, new_dtype),
    "copy": lambda x, **_: x,
}


def _on_host(closed) -> list | None:
    """The outputs of `closed` computed with NumPy, or `None` if it needs more than constants,
    broadcasts, casts and copies (parameters pass through as they are)."""
    jaxpr, env = closed.jaxpr, {}
    for v, c in zip(jaxpr.constvars, closed.consts, strict=True):
        env[v] = c
    for v in jaxpr.invars:
        env[v] = v  # a parameter: only passed through

    def read(v):
        if isinstance(v, jex.core.Literal):
            return np.asarray(v.val, v.aval.dtype)
        return env[v]

    for eqn in jaxpr.eqns:
        rule = _HOST_RULES.get(eqn.primitive.name)
        args = [read(v) for v in eqn.invars]
        if rule is None or any(isinstance(a, jex.core.Var) for a in args):
            return None
        env[eqn.outvars[0]] = np.asarray(rule(*args, **eqn.params), eqn.outvars[0].aval.dtype)
    return [read(v) for v in jaxpr.outvars]


def optimizer_init(optimizer, params):
    """`optimizer.init(params)`, computed on the host when it is made of constants."""
    with jax.numpy_dtype_promotion("standard"):
        closed, shapes = jax.make_jaxpr(optimizer.init, return_shape=True)(params)
    leaves = jax.tree_util.tree_leaves(params)
    outs = _on_host(closed)
    weak = any(getattr(s, "weak_type", False) for s in jax.tree_util.tree_leaves(shapes))
    if outs is None or weak:  # weak types cannot be made from NumPy: compile once
        with jax.numpy_dtype_promotion("standard"):
            return jax.jit(optimizer.init)(params)
    index = {id(v): i for i, v in enumerate(closed.jaxpr.invars)}
    values = [
        leaves[index[id(o)]] if isinstance(o, jex.core.Var) else jax.device_put(o) for o in outs
    ]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shapes), values)
