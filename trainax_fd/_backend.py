"""Backend tuning, in one place: convolutions in XLA:CPU's fast layout and opt-in compile
options for the package's compiled loops (training chunks, sweeps, full losses).

Both are exact (the same program, other kernels or compiler settings) and can be switched
off: `Trainer(..., canonical_convolutions=False)`, `compiler_options=None` (the default).
"""

import functools
from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp

from ._checks import warn
from ._layout import canonical_convolutions, jaxpr_has_convolution

#: Compile options: a sorted tuple of `(name, value)` pairs (hashable), or `None`.
Options = tuple[tuple[str, object], ...] | None


def check_compiler_options(options: Mapping | None) -> Options:
    """`options` as a hashable tuple; a `TypeError` unless a mapping of option names."""
    if options is None:
        return None
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise TypeError(
            "`compiler_options` must be a mapping of XLA option names to values (e.g. "
            f"`{{'xla_backend_optimization_level': 1}}`) or None, got {options!r}."
        )
    return tuple(sorted(options.items()))


@functools.cache
def _accepted(options: Options) -> bool:
    """Whether the installed XLA takes `options` (a tiny probe program), else a warning."""
    try:
        jax.jit(lambda: jnp.zeros(()), compiler_options=dict(options)).lower().compile()
    except Exception as error:  # XLA reports unknown or malformed options at compile time
        warn(
            f"`compiler_options` {dict(options)} were refused by the installed XLA ({error}); "
            "compiling with XLA's defaults instead."
        )
        return False
    return True


@functools.cache
def _jitted(fn: Callable, canonical: bool, options: Options) -> Callable:
    body = canonical_convolutions(fn) if canonical else fn
    if options is not None and _accepted(options):
        return eqx.filter_jit(body, compiler_options=dict(options))
    return eqx.filter_jit(body)


def backend_call(fn: Callable, *args, canonical: bool = False, options: Options = None):
    """`eqx.filter_jit(fn)(*args)`, with convolutions in the fast layout when `canonical` and
    with `options` (when the installed XLA accepts them). One compiled program per setting."""
    return _jitted(fn, bool(canonical), options)(*args)


def wants_canonical(setting: bool | None, loss: Callable, *args) -> bool:
    """`setting`, or when `None`: whether the default backend is a CPU and `loss(*args)`
    (traced abstractly, never run; arrays or `jax.ShapeDtypeStruct`s) holds a convolution."""
    if setting is not None:
        return bool(setting)
    if jax.default_backend() != "cpu":
        return False
    is_leaf = lambda x: isinstance(x, jax.ShapeDtypeStruct)  # noqa: E731
    dynamic, static = eqx.partition(args, lambda x: eqx.is_array(x) or is_leaf(x), is_leaf=is_leaf)
    shapes = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), dynamic, is_leaf=is_leaf
    )
    try:
        closed = jax.make_jaxpr(lambda d: loss(*eqx.combine(d, static)))(shapes)
    except Exception:  # a loss the probe cannot trace: the tuning does not apply
        return False
    return jaxpr_has_convolution(closed.jaxpr)
