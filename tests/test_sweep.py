"""Sweeps: N trainings in one compiled run equal N separate trainings."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainax_fd import configurations as C, trainers as T
from trainax_fd.sweeps import SweepResult, sweep

OPTIMIZER = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2)
RATES = np.array([1e-3, 1e-2, 5e-2], np.float32)
KEY = jax.random.key(3)


class Stencil3(eqx.Module):
    w: jax.Array

    def __call__(self, u):
        left, right = jnp.roll(u, 1, -1), jnp.roll(u, -1, -1)
        return self.w[0] * left + self.w[1] * u + self.w[2] * right


def init(key):
    return Stencil3(jnp.array([0.1, 0.6, 0.2]) + 0.1 * jax.random.normal(key, (3,)))


@pytest.fixture(scope="module")
def data():
    """(samples=2, time=9, channels=1, 12) float32 trajectories of a 3-point stencil."""
    u = np.random.default_rng(0).normal(size=(2, 1, 12)).astype(np.float32)
    levels = [u]
    for _ in range(8):
        u = 0.2 * np.roll(u, 1, -1) + 0.7 * u + 0.1 * np.roll(u, -1, -1)
        levels.append(u)
    return np.stack(levels, axis=1)


def make(data, config=None, **kwargs):
    options = dict(num_steps=6, batch_size=5, chunk_size=4)
    options.update(kwargs)
    return T.Trainer(data, config or C.Supervised(2), OPTIMIZER, **options)


def with_rate(result: T.TrainResult, rate) -> T.TrainResult:
    """`result` with its injected learning rate set (one compilation for every rate)."""
    return eqx.tree_at(
        lambda r: r.opt_state.hyperparams["learning_rate"], result, jnp.asarray(rate)
    )


def assert_same(a: T.TrainResult, b: T.TrainResult):
    np.testing.assert_allclose(np.asarray(b.stepper.w), np.asarray(a.stepper.w), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(b.loss_history), np.asarray(a.loss_history), rtol=1e-5)


def test_learning_rates_and_seeds_equal_separate_trainings(data):
    trainer = make(data)
    swept = sweep(trainer, key=KEY, init=init, hyperparams={"learning_rate": RATES}, progress=False)
    assert isinstance(swept, SweepResult) and swept.num_members == 3
    assert swept.results.stepper.w.shape == (3, 3)
    assert swept.results.loss_history.shape == (3, 6)
    init_key, shuffle_key = jax.random.split(KEY)
    for m, (k, rate) in enumerate(zip(jax.random.split(init_key, 3), RATES)):
        alone = trainer(with_rate(trainer.init(init(k), key=shuffle_key), rate), progress=False)
        assert_same(alone, swept.member(m))
    # members differ (different seeds and rates)
    assert len({tuple(np.asarray(w)) for w in swept.results.stepper.w}) == 3

    rows = swept.summary()
    assert [r["learning_rate"] for r in rows] == pytest.approx(RATES.tolist())
    assert rows[1]["final_loss"] == pytest.approx(float(swept.results.loss_history[1, -1]))
    assert all(r["steps"] == 6 and r["failed_at"] is None for r in rows)
    table = str(swept)
    assert table.splitlines()[0].split() == [
        "member", "learning_rate", "final_loss", "min_loss", "steps", "failed_at",
    ]  # fmt: skip
    assert len(table.splitlines()) == 2 + 3


def test_time_level_weights_per_member_and_one_compilation(data, compiles):
    weights = [np.array(w, np.float32) for w in ([1, 0], [1, 1], [0.5, 2])]
    configs = [C.Supervised(2, time_level_weights=w) for w in weights]
    trainer = make(data)
    swept = sweep(trainer, init(KEY), key=KEY, objectives=configs, progress=False)
    stepper, key = init(KEY), jax.random.key(9)
    with compiles() as c:
        sweep(trainer, stepper, key=key, objectives=configs, progress=False)
    assert c.count == 0  # same shapes: nothing compiles again
    for m, config in enumerate(configs):
        alone = make(data, config)(init(KEY), key=jax.random.split(KEY)[1], progress=False)
        assert_same(alone, swept.member(m))
    np.testing.assert_array_equal(swept.values["objective"], [0, 1, 2])


def test_weakly_typed_leaves_compile_once(data, compiles):
    class Scaled(eqx.Module):
        w: jax.Array
        scale: jax.Array  # weakly typed

        def __call__(self, u):
            return self.scale * Stencil3(self.w)(u)

    def scaled(k):
        return Scaled(init(k).w, jnp.asarray(1.0))

    key = jax.random.key(0)
    sweep(make(data, chunk_size=6), key=key, progress=False, num_members=2, init=scaled)
    counts = []
    for chunk_size in (7, 4):  # one chunk, then two chunks: the same compilations
        trainer = make(data, chunk_size=chunk_size)
        with compiles() as c:
            result = sweep(trainer, key=key, progress=False, num_members=2, init=scaled)
        counts.append(c.count)
        assert np.all(np.asarray(result.results.step) == 6)
    assert counts[0] == counts[1]


def test_a_diverging_member_stops_alone(data):
    trainer = make(data)
    rates = np.array([1e-2, 1e30, 1e-3], np.float32)  # 3 members: the first test's program
    swept = sweep(trainer, init(KEY), key=KEY, hyperparams={"learning_rate": rates}, progress=False)
    failed = np.asarray(swept.failed)
    assert failed[0] == -1 and failed[1] >= 0
    good = swept.member(1)
    assert int(good.step) == failed[1]  # the last finite state is kept
    assert np.all(np.isfinite(np.asarray(good.stepper.w)))
    assert int(swept.member(0).step) == 6
    assert swept.summary()[1]["failed_at"] == failed[1]


def test_keys_of_every_prng_implementation(data):
    trainer = make(data)
    for impl in ("threefry2x32", "rbg", "unsafe_rbg"):
        key = jax.random.key(0, impl=impl)
        swept = sweep(trainer, init(KEY), key=key, num_members=3, progress=False)
        assert np.all(np.asarray(swept.results.step) == 6)
        alone = trainer(init(KEY), key=key, progress=False)
        assert np.all(np.isfinite(np.asarray(alone.loss_history)))


def test_per_member_shuffling_changes_the_batches(data):
    trainer = make(data)
    rates = {"learning_rate": np.full(3, 1e-2, np.float32)}
    shared = sweep(trainer, init(KEY), key=KEY, hyperparams=rates, progress=False)
    own = sweep(
        trainer, init(KEY), key=KEY, hyperparams=rates, shuffle="per_member", progress=False
    )
    history = np.asarray(shared.results.loss_history)
    np.testing.assert_array_equal(history[0], history[1])
    history = np.asarray(own.results.loss_history)
    assert not np.allclose(history[0], history[1])


def test_errors(data):
    trainer = make(data)
    stepper = init(KEY)
    with pytest.raises(ValueError, match=re.escape("Give exactly one of `stepper`")):
        sweep(trainer, stepper, key=KEY, init=init, num_members=2)
    with pytest.raises(ValueError, match=re.escape("A sweep needs members")):
        sweep(trainer, stepper, key=KEY)
    with pytest.raises(ValueError, match=re.escape("must have one length (the members)")):
        sweep(trainer, stepper, key=KEY, num_members=2, hyperparams={"learning_rate": RATES})
    with pytest.raises(ValueError, match=re.escape("injected hyperparameters ['b1', 'b2'")):
        sweep(trainer, stepper, key=KEY, hyperparams={"lr": RATES})
    plain = T.Trainer(data, C.Supervised(2), optax.adam(1e-2), num_steps=2, batch_size=5)
    with pytest.raises(ValueError, match=re.escape("`optax.inject_hyperparams` (once")):
        sweep(plain, stepper, key=KEY, hyperparams={"learning_rate": RATES})
    with pytest.raises(ValueError, match=re.escape("only in array values")):
        sweep(trainer, stepper, key=KEY, objectives=[C.Supervised(2), C.Supervised(1)])
    with pytest.raises(TypeError, match=re.escape("`objectives` must hold objectives")):
        sweep(trainer, stepper, key=KEY, objectives=[C.Supervised(2), "x"])
    with pytest.raises(ValueError, match=re.escape("member 1 has -0.01")):
        sweep(trainer, stepper, key=KEY, hyperparams={"learning_rate": [1e-3, -1e-2, 1e-2]})
    with pytest.raises(ValueError, match=re.escape("must be finite; member 2 has nan")):
        sweep(trainer, stepper, key=KEY, hyperparams={"learning_rate": [1e-3, 1e-2, np.nan]})
    with pytest.raises(TypeError, match=re.escape("`key` must be a `jax.random.key`")):
        sweep(trainer, stepper, key=3, num_members=2)
    with pytest.raises(ValueError, match=re.escape("`shuffle` must be")):
        sweep(trainer, stepper, key=KEY, num_members=2, shuffle="own")
    checkpointing = make(data, callbacks=[T.Checkpoint("unused.eqx", 2)])
    with pytest.raises(ValueError, match=re.escape("must have no host callbacks")):
        sweep(checkpointing, stepper, key=KEY, num_members=2)
    with pytest.raises(TypeError, match=re.escape("`trainer` must be a `Trainer`")):
        sweep("trainer", stepper, key=KEY, num_members=2)
