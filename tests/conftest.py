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
