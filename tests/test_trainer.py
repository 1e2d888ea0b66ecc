"""The compiled Trainer: against a hand-written optax loop, resume, NaN stop, full loss."""

import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainax_fd import configurations as C, data as D, trainers as T

OPTIMIZER = optax.adam(1e-2)  # one object: trainers sharing it share compilations


class Stencil3(eqx.Module):
    w: jax.Array

    def __call__(self, u):
        left, right = jnp.roll(u, 1, -1), jnp.roll(u, -1, -1)
        return self.w[0] * left + self.w[1] * u + self.w[2] * right + 0.1 * jnp.tanh(u)


def reference(u):
    return 0.2 * jnp.roll(u, 1, -1) + 0.7 * u + 0.1 * jnp.roll(u, -1, -1)


@pytest.fixture(scope="module")
def data():
    """(samples=3, time=13, channels=1, 16) float32 NumPy trajectories of `reference`."""
    u = np.random.default_rng(0).normal(size=(3, 1, 16)).astype(np.float32)
    levels = [u]
    for _ in range(12):
        u = 0.2 * np.roll(u, 1, -1) + 0.7 * u + 0.1 * np.roll(u, -1, -1)
        levels.append(u)
    return np.stack(levels, axis=1)


STEPPER = Stencil3(jnp.array([0.1, 0.6, 0.2]))
KEY = jax.random.key(7)


def make(data, **kwargs):
    options = dict(num_steps=7, batch_size=8, chunk_size=3)
    options.update(kwargs)
    config = options.pop("config", C.Supervised(2))
    return T.Trainer(data, config, OPTIMIZER, **options)


def test_matches_hand_written_optax_loop(data):
    trainer = make(data)
    assert trainer.windows.num_windows == 3 * 11 and trainer.batches_per_epoch == 4
    result = trainer(STEPPER, key=KEY, progress=False)

    config = C.Supervised(2)

    @jax.jit
    def step(w, state, batch):
        def loss(w):
            return jnp.mean(jax.vmap(config, in_axes=(None, 0))(Stencil3(w), batch))

        value, grad = jax.value_and_grad(loss)(w)
        with jax.numpy_dtype_promotion("standard"):  # optax is not strict-promotion clean
            updates, state = OPTIMIZER.update(grad, state, w)
        return optax.apply_updates(w, updates), state, value

    w, state, losses, seen = STEPPER.w, OPTIMIZER.init(STEPPER.w), [], []
    for s in range(7):
        index = np.asarray(trainer.batch_indices(KEY, s))
        seen.append(index)
        batch = np.stack([data[i // 11, i % 11 : i % 11 + 3] for i in index])  # explicit slices
        np.testing.assert_array_equal(trainer.windows.gather(jnp.asarray(index)), batch)
        w, state, value = step(w, state, batch)
        losses.append(value)
    np.testing.assert_allclose(result.stepper.w, w, rtol=1e-6)
    np.testing.assert_allclose(result.loss_history, losses, rtol=1e-6)
    assert int(result.step) == 7
    epoch = np.concatenate(seen[:4])  # one epoch: distinct windows, fixed batch shape
    assert len(set(epoch.tolist())) == 32 and all(len(i) == 8 for i in seen)
    assert not np.array_equal(np.sort(epoch), np.sort(np.concatenate(seen[4:] + seen[:1])))


class Interrupt(T.AbstractHostCallback):
    every: int = 4

    def __call__(self, result, num_steps):
        if int(result.step) == 4:
            raise KeyboardInterrupt


def test_no_recompilation_and_resume_is_bit_exact(data, tmp_path, compiles):
    trainer = make(data, callbacks=[T.WeightNorm(2)])
    full = trainer(STEPPER, key=KEY, progress=False)
    with compiles() as c:
        again = trainer(STEPPER, key=KEY, progress=False)
    assert c.count == 0  # 3 chunks, the second call: nothing compiles again
    np.testing.assert_array_equal(full.stepper.w, again.stepper.w)

    path = tmp_path / "run.eqx"
    interrupted = make(data, callbacks=[T.WeightNorm(2), T.Checkpoint(path, 4), Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        interrupted(STEPPER, key=KEY, progress=False)
    restored = trainer.restore(path, STEPPER)
    assert int(restored.step) == 4 and not list(tmp_path.glob(".*.tmp"))  # no temporary left
    resumed = trainer(restored, progress=False)
    np.testing.assert_array_equal(resumed.stepper.w, full.stepper.w)
    np.testing.assert_array_equal(resumed.loss_history, full.loss_history)
    np.testing.assert_array_equal(resumed.metrics["weight_norm"], full.metrics["weight_norm"])
    jax.tree_util.tree_map(np.testing.assert_array_equal, resumed.opt_state, full.opt_state)


class WeakScale(eqx.Module):
    """A stepper with a weakly typed leaf (`jnp.asarray(0.9)`, as `Dirichlet(0.0)` stores)."""

    w: jax.Array
    scale: jax.Array

    def __call__(self, u):
        return self.scale * Stencil3(self.w)(u)


def test_weakly_typed_leaves_compile_once(data, compiles):
    stepper = WeakScale(jnp.array([0.1, 0.6, 0.2]), jnp.asarray(0.9))
    assert stepper.scale.weak_type
    make(data, num_steps=7, chunk_size=7)(stepper, key=KEY, progress=False)  # warm-up
    counts = []
    for chunk_size in (8, 3):  # one chunk, then three: typed as the chunk returns it
        with compiles() as c:
            result = make(data, num_steps=7, chunk_size=chunk_size)(
                stepper, key=KEY, progress=False
            )
        counts.append(c.count)
    assert counts[0] == counts[1]
    assert not result.stepper.scale.weak_type and int(result.step) == 7


def test_non_finite_loss_stops_naming_the_step(data, tmp_path):
    path = tmp_path / "last_good.eqx"
    trainer = T.Trainer(
        data * 1e3, C.Supervised(3), optax.sgd(1e3), num_steps=50, batch_size=30,
        callbacks=[T.Checkpoint(path, 100)],
    )  # fmt: skip
    with pytest.raises(T.NonFiniteLossError, match=r"Non-finite loss or gradient at step \d+") as e:
        trainer(STEPPER, key=KEY, progress=False)
    step, result = e.value.step, e.value.result
    assert 0 < step < 50 and int(result.step) == step
    assert bool(jnp.all(jnp.isfinite(result.stepper.w)))
    assert np.isfinite(result.loss_history[step - 1]) and not np.isfinite(result.loss_history[step])
    saved = trainer.restore(path, STEPPER)  # the checkpoint holds the last finite state
    np.testing.assert_array_equal(saved.stepper.w, result.stepper.w)


def test_full_loss_is_chunked_and_vmappable(data):
    trainer = make(data)
    all_windows = np.stack([data[s, t : t + 3] for s in range(3) for t in range(11)])
    expected = jnp.mean(jax.vmap(C.Supervised(2), in_axes=(None, 0))(STEPPER, all_windows))
    np.testing.assert_allclose(trainer.full_loss(STEPPER), expected, rtol=1e-6)
    np.testing.assert_allclose(trainer.full_loss(STEPPER, chunk_size=4), expected, rtol=1e-6)
    stacked = Stencil3(jnp.stack([STEPPER.w, STEPPER.w * 0.5]))
    both = eqx.filter_vmap(trainer.full_loss)(stacked)
    np.testing.assert_allclose(both[0], expected, rtol=1e-6)
    assert both[1] != both[0]


def test_trainax_batching_keeps_a_short_last_batch(data):
    trainer = make(data, batching=D.TrainaxBatching(), batch_size=10)  # 33: 10, 10, 10, 3
    assert trainer.batches_per_epoch == 4
    sizes = [len(trainer.batch_indices(KEY, s)) for s in range(4)]
    assert sizes == [10, 10, 10, 3]
    epoch = np.concatenate([trainer.batch_indices(KEY, s) for s in range(4)])
    assert sorted(epoch.tolist()) == list(range(33))


def test_metrics_are_recorded_in_the_loop(data):
    keep = T.KeepStepper(2)
    callbacks = [T.WeightNorm(2), keep, T.LossMetric(3), T.GradNorm(3, squared=True)]
    result = make(data, callbacks=callbacks)(STEPPER, key=KEY, progress=False)
    norms, kept = result.metrics["weight_norm"], result.metrics["stepper"]
    assert norms.shape == (math.ceil(7 / 2),) and kept.w.shape == (4, 3)
    np.testing.assert_allclose(norms, jnp.linalg.norm(kept.w, axis=1), rtol=1e-6)
    np.testing.assert_array_equal(kept.w[0], STEPPER.w)
    np.testing.assert_array_equal(keep.stepper(result, 2, STEPPER).w, kept.w[2])
    np.testing.assert_allclose(result.metrics["loss"], result.loss_history[::3], rtol=1e-6)
    assert result.metrics["grad_norm"].shape == (3,) and bool(
        jnp.all(result.metrics["grad_norm"] > 0)
    )


def test_float64(data, x64):
    trainer = T.Trainer(data.astype(np.float64), C.Supervised(1), optax.sgd(1e-2), num_steps=3,
                        batch_size=36)  # fmt: skip
    stepper = Stencil3(jnp.array([0.1, 0.6, 0.2], dtype=jnp.float64))
    result = trainer(stepper, key=KEY, progress=False)
    assert result.loss_history.dtype == jnp.float64 and result.stepper.w.dtype == jnp.float64
    assert result.loss_history[2] < result.loss_history[0]


def test_ic_only_configurations_store_only_initial_conditions(data):
    trainer = make(data, config=C.DivertedChain(reference, 3, 2), window_length=4)
    assert trainer.windows.length == 1 and trainer.windows.trajectories.shape == (3, 10, 1, 16)
    initial = make(data, config=C.Residuum(C.StepperResiduum(reference), 3), starts="initial",
                   batch_size=3)  # fmt: skip
    assert initial.windows.trajectories.shape == (3, 1, 1, 16)


def test_errors(data):
    with pytest.raises(ValueError, match=re.escape("the rollout is longer than the trajectories")):
        make(data, config=C.Supervised(13))
    with pytest.raises(ValueError, match=re.escape("`trajectories` leaves must agree on (samples")):
        make((data, data[:, :5]))
    with pytest.raises(ValueError, match=re.escape("`DivertedChain` needs a reference stepper")):
        make(data, config=C.DivertedChain(None, 2))
    with pytest.raises(ValueError, match=re.escape("`stepper` must map one state to a state")):
        make(data)(lambda u: u[:, ::2], key=KEY, progress=False)
    with pytest.raises(ValueError, match=re.escape("`key` must be given")):
        make(data)(STEPPER, progress=False)
    with pytest.raises(TypeError, match=re.escape("`objective` must be an `AbstractObjective`")):
        T.Trainer(data, "supervised", OPTIMIZER, num_steps=1, batch_size=1)
    with pytest.raises(TypeError, match=re.escape("`optimizer` must be an")):
        T.Trainer(data, C.Supervised(1), None, num_steps=1, batch_size=1)
    with pytest.raises(TypeError, match=re.escape("`batching` must be an `AbstractBatching`")):
        make(data, batching="ragged")
    with pytest.raises(ValueError, match=re.escape("windows must hold at least 3 time levels")):
        make(data, window_length=2)
    with pytest.raises(ValueError, match=re.escape("`num_steps` must be an int >= 1")):
        make(data, num_steps=0)
    with pytest.raises(TypeError, match=re.escape("`key` must be a `jax.random.key`")):
        make(data).init(STEPPER, key=3)
    with pytest.warns(UserWarning, match=re.escape("training full-batch with 33 examples")):
        assert make(data, batch_size=100).batch_size == 33
