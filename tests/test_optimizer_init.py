"""The trainer's optimizer initial state: equal to optax's own, computed without compiling."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainax_fd.trainers._optimizer_init import optimizer_init

COMPILES = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: (
        COMPILES.append(kw.get("fun_name"))
        if event == "/jax/core/compile/backend_compile_duration"
        else None
    )
)

OPTIMIZERS = {
    "adam": lambda: optax.adam(1e-2),
    "sgd-momentum": lambda: optax.sgd(1e-2, momentum=0.9),
    "adamw-chain": lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3)),
    "schedule": lambda: optax.adam(optax.exponential_decay(1e-2, 100, 0.5)),
    "inject": lambda: optax.inject_hyperparams(optax.adam)(learning_rate=0.03),
    "lbfgs": lambda: optax.lbfgs(),
    "ema-of-params": lambda: optax.contrib.schedule_free_adamw(1e-2),
}


def params():
    return {
        "w": jnp.array([0.4, 0.5]),
        "b": None,
        "m": (jnp.ones((2, 3), jnp.float32), jnp.zeros((), jnp.float32)),
    }


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_equals_optax_init(name):
    optimizer = OPTIMIZERS[name]()
    with jax.numpy_dtype_promotion("standard"):
        expected = optimizer.init(params())
    got = optimizer_init(optimizer, params())
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(expected)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)):
        assert isinstance(a, jax.Array)
        assert (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, b.weak_type)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_adam_and_sgd_compile_nothing():
    p = params()
    jax.block_until_ready(p)
    for optimizer in (optax.adam(1e-3), optax.sgd(0.1, momentum=0.5)):
        COMPILES.clear()
        jax.block_until_ready(optimizer_init(optimizer, p))
        assert COMPILES == []
        COMPILES.clear()
        jax.clear_caches()
        with jax.numpy_dtype_promotion("standard"):
            jax.block_until_ready(optimizer.init(p))  # eager optax compiles (the test works)
        assert COMPILES
