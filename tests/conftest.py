import jax
import pytest

# Strict JAX for the whole test session: no silent dtype or rank promotion.
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run one test in float64 (convergence orders and exactness need it)."""
    with jax.enable_x64(True):
        yield


class CompileCounter:
    """Counts XLA compilations (JAX's public monitoring events) while active."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self):
        self.count = 0

    def _listener(self, event: str, duration: float, **_) -> None:
        if event == self.EVENT:
            self.count += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._listener)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listener)


@pytest.fixture
def compiles():
    """`with compiles() as c: ...; assert c.count == n`: XLA compilations inside the block."""
    return CompileCounter
