"""Host-side compile concerns shared by the trainer, sweeps and landscapes: XLA:CPU's compile
options, returning the memory the compiler freed to the OS before a program runs, and inputs
typed as the compiled programs return them."""

import contextlib
import ctypes
import functools
import sys
import threading
from collections.abc import Callable

import equinox as eqx
import jax
import numpy as np

from ._checks import check_key

# XLA:CPU's legacy loop emitters compile the many small fusions of a training step about
# twice as fast as its newer fusion emitters, and run them as fast; LLVM at -O1 instead of
# -O3 compiles them ~25 % faster again, and runs a small stepper's steps faster, a ConvNet's
# as fast (its convolutions are library calls). See benchmarks/README.md.
CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}


#: Point-steps (state size x time steps) up to which a reference rollout or data set counts as
#: short: built with `CPU_COMPILER_OPTIONS`, whose compile saving (0.15-0.35 s) outweighs any
#: run-time cost. A 2D diffusion data set of 64^2 points, 4 x 200 steps (3.3 M) compiled in
#: 0.30 instead of 0.63 s; 256^2, 16 x 200 (210 M, 0.68 s to run) keeps XLA's defaults. A
#: `repeat`ed stepper counts its substeps; a stepper much costlier per point than a stencil
#: (a network) is still counted as one point-step per point.
SHORT_RUN = 2**25


try:  # JAX's own check that no transformation is tracing; internal, hence the guard
    from jax._src.core import trace_state_clean as _TRACE_STATE_CLEAN
except ImportError:  # pragma: no cover (a test fails when a JAX release moves it)
    _TRACE_STATE_CLEAN = None


def _at_top_level() -> bool:
    """Whether no JAX transformation is tracing. Without JAX's check: `False` (the default
    compile options everywhere, slower to compile but never refused inside a `jit`)."""
    return _TRACE_STATE_CLEAN is not None and _TRACE_STATE_CLEAN()


def _cpu_options_apply(tree) -> bool:
    """Whether a top-level call with the arrays of `tree` compiles for CPU devices."""
    if not _at_top_level():
        return False  # under jit/vmap/grad JAX takes no compile options, even for constants
    arrays = [x for x in jax.tree_util.tree_leaves(tree) if isinstance(x, jax.Array)]
    if any(isinstance(x, jax.core.Tracer) for x in arrays):
        return False
    if not arrays:
        device = jax.config.jax_default_device  # a `jax.default_device(...)` context
        platform = jax.default_backend() if device is None else getattr(device, "platform", device)
        return platform == "cpu"
    return all(d.platform == "cpu" for x in arrays for d in x.devices())


def compiled(
    fn: Callable, *, short: Callable[..., bool] | None = None, other: Callable | None = None
) -> Callable:
    """`eqx.filter_jit(fn)`, built with `CPU_COMPILER_OPTIONS` when the call's arrays live on
    CPU devices (without arrays: when the default device is a CPU), no transformation is
    tracing, and `short(*args, **kwargs)` (default: always) says the run is short; otherwise
    `eqx.filter_jit(other or fn)` with XLA's default options. Either runs inside
    `compile_memory_returned()`. For programs whose compilation outweighs their run
    (`random_fourier` for 16 keys compiles in 0.33 instead of 1.36 s) and for the training
    chunks, whose steps run as fast; a 2D diffusion data set (256^2, 16 x 200 steps) was once
    measured 25 % slower with these options (0.86 against 0.68 s; as fast in another run).
    The two programs are `call.cpu` and `call.other`."""
    cpu = eqx.filter_jit(fn, compiler_options=CPU_COMPILER_OPTIONS)
    default = eqx.filter_jit(fn if other is None else other)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        fast = _cpu_options_apply((args, kwargs)) and (short is None or short(*args, **kwargs))
        with compile_memory_returned():
            return (cpu if fast else default)(*args, **kwargs)

    call.cpu, call.other = cpu, default
    return call


def compiled_draw(fn: Callable) -> Callable:
    """`compiled(fn)` for `fn(key, *static)` (random draws from one key; `static` hashable),
    also under a `jax.vmap` over keys outside any `jit`: there the batched draw is one program
    built with the fast options (`eqx.filter_vmap(lambda k: ConvNet(..., key=k))(keys)` for an
    ensemble), where an eager `vmap` would compile with XLA's defaults (a `vmap` with an
    `axis_name` still does: its batching rule runs under a trace). The draw has no derivative
    (keys have none); `static` is positional only."""
    one = compiled(fn)
    many = compiled(lambda keys, *static: jax.vmap(lambda k: fn(k, *static))(keys))

    @functools.wraps(fn)
    def call(key, *static):
        check_key(key)
        if not isinstance(key, jax.core.Tracer):
            return one(key, *static)  # custom_vmap would trace `one`: no compile options

        @jax.custom_batching.custom_vmap
        def draw(key):
            return one(key, *static)

        @draw.def_vmap
        def _(axis_size, in_batched, keys):
            out = many(keys, *static) if in_batched[0] else one(keys, *static)
            return out, jax.tree_util.tree_map(lambda _: in_batched[0], out)

        return draw(key)

    return call


@compiled_draw
def split_key(key, num: int) -> tuple:
    """`tuple(jax.random.split(key, num))` in one program built with the fast options (eagerly,
    the split and the iteration over its result each compile a program of their own)."""
    return tuple(jax.random.split(key, num))


def strong_types(tree):
    """`tree` with weakly typed arrays (e.g. `jnp.asarray(0.5)` fields, a `Dirichlet(0.0)`
    value) made strongly typed, as a compiled chunk returns them: otherwise its second call sees
    other types and compiles again. A NumPy round trip: nothing to compile. Tracers pass."""

    def strong(x):
        if isinstance(x, jax.core.Tracer) or not getattr(x, "weak_type", False):
            return x
        return jax.device_put(np.asarray(x))

    return jax.tree_util.tree_map(strong, tree)


def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; absent from musl
    except (AttributeError, OSError):
        return None


_MALLOC_TRIM = _malloc_trim()
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_TRIMMING = threading.local()
#: How often memory was returned after a compilation (tests read it).
TRIMS = {"count": 0}


def _after_compile(event: str, duration: float, **_) -> None:
    if event == _BACKEND_COMPILE and getattr(_TRIMMING, "on", False) and _MALLOC_TRIM:
        _MALLOC_TRIM(0)
        TRIMS["count"] += 1


jax.monitoring.register_event_duration_secs_listener(_after_compile)


@contextlib.contextmanager
def compile_memory_returned():
    """Within this context (this thread), right after each XLA compilation and before its
    program runs, glibc gives the host memory the compiler freed back to the OS
    (`malloc_trim`). XLA's compiler threads leave ~30 MiB (a small ConvNet's training chunk)
    in malloc arenas that the running program would not reuse, so the process's peak memory
    would be compile memory + run memory; measured: 444 -> 415 MiB peak for a rollout-20
    training on 100 MiB of data. Does nothing on other C libraries and when nothing
    compiles (about 0.2 ms a compilation)."""
    before = getattr(_TRIMMING, "on", False)
    _TRIMMING.on = True
    try:
        yield
    finally:
        _TRIMMING.on = before
