"""The trainax 0.0.2 surface: `import trainax_fd as tx` runs trainax code unchanged.

trainax is not a test dependency: the oracle is a hand-written loop with trainax's documented
semantics (epoch permutations `key_(e+1) = split(key_e)[0]`, a short last batch, windows
sample-major, losses `sum_t w_t * batch_reduction(per-sample losses)`).
"""

import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import trainax_fd as tx
from trainax_fd import configurations


class Stencil3(eqx.Module):
    w: jax.Array

    def __call__(self, u):
        left, right = jnp.roll(u, 1, -1), jnp.roll(u, -1, -1)
        return self.w[0] * left + self.w[1] * u + self.w[2] * right + 0.1 * jnp.tanh(u)


@pytest.fixture(scope="module")
def data():
    u = np.random.default_rng(1).normal(size=(3, 1, 16)).astype(np.float32)
    levels = [u]
    for _ in range(12):
        u = 0.2 * np.roll(u, 1, -1) + 0.7 * u + 0.1 * np.roll(u, -1, -1)
        levels.append(u)
    return np.stack(levels, axis=1)  # (3, 13, 1, 16)


def oracle(data, stepper, key, optimizer, steps, batch_size, n, weights):
    windows = np.stack([data[s, t : t + n + 1] for s in range(3) for t in range(13 - n)])
    count = len(windows)
    per_epoch = math.ceil(count / batch_size)
    keys, perms = [key], []
    for _ in range(steps // per_epoch + 1):
        perms.append(np.asarray(jax.random.permutation(keys[-1], count)))
        keys.append(jax.random.split(keys[-1])[0])

    @jax.jit
    def loss_fn(w, batch):
        pred, loss = batch[:, 0], 0.0
        for t in range(n):
            pred = jax.vmap(Stencil3(w))(pred)
            loss = loss + weights[t] * jnp.mean(jnp.mean((pred - batch[:, t + 1]) ** 2, (1, 2)))
        return loss

    @jax.jit
    def step(w, state, batch):
        value, grad = jax.value_and_grad(loss_fn)(w, batch)
        with jax.numpy_dtype_promotion("standard"):
            updates, state = optimizer.update(grad, state, w)
        return optax.apply_updates(w, updates), state, value

    w, state, history = stepper.w, optimizer.init(stepper.w), []
    for i in range(steps):
        epoch, b = divmod(i, per_epoch)
        batch = windows[perms[epoch][b * batch_size : min((b + 1) * batch_size, count)]]
        w, state, value = step(w, state, batch)
        history.append(value)
    return w, np.asarray(history)


def test_supervised_trainer_matches_trainax_semantics(data, tmp_path):
    optimizer = optax.adam(1e-2)
    stepper = Stencil3(jnp.array([0.1, 0.6, 0.2]))
    weights = jnp.array([1.0, 0.5])
    callback = tx.callback.CompositeCallback(
        [
            tx.callback.WeightNorm(3),
            tx.callback.GetNetwork(4),
            tx.callback.Loss(2, tx.configuration.Supervised(1), name="one_step"),
            tx.callback.SaveNetwork(4, tmp_path, "net"),
        ]
    )
    trainer = tx.trainer.SupervisedTrainer(
        data, optimizer=optimizer, num_training_steps=9, batch_size=7, num_rollout_steps=2,
        time_level_weights=weights, callback_fn=callback,
    )  # fmt: skip  # 33 windows: batches of 7, 7, 7, 7, 5
    trained, history, aux = trainer(stepper, jax.random.PRNGKey(5), spawn_tqdm=False)
    w, expected = oracle(data, stepper, jax.random.PRNGKey(5), optimizer, 9, 7, 2, weights)
    np.testing.assert_allclose(trained.w, w, rtol=2e-6)
    np.testing.assert_allclose(history, expected, rtol=2e-6)

    assert isinstance(aux, list) and len(aux) == 9
    assert set(aux[0]) == {"weight_norm", "network", "one_step", "network_saved"}
    assert aux[1]["weight_norm"] is None and aux[1]["network"] is None
    assert aux[4]["network_saved"] is True and aux[5]["network_saved"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net_0.eqx", "net_4.eqx", "net_8.eqx"]
    net4 = eqx.tree_deserialise_leaves(tmp_path / "net_4.eqx", stepper)
    np.testing.assert_array_equal(aux[4]["network"].w, net4.w)
    np.testing.assert_allclose(aux[0]["weight_norm"], jnp.linalg.norm(stepper.w), rtol=1e-6)

    # the full loss is the configuration over every window, as trainax's `full_loss`
    windows = np.stack([data[s, t : t + 3] for s in range(3) for t in range(11)])
    config = tx.configuration.Supervised(2, time_level_weights=weights)
    np.testing.assert_allclose(
        trainer.full_loss(trained), config(trained, jnp.asarray(windows)), rtol=1e-6
    )


def test_return_structures(data):
    with pytest.warns(UserWarning, match="training full-batch"):  # trainax prints instead
        trainer = tx.trainer.SupervisedTrainer(
            data, optimizer=optax.sgd(1e-2), num_training_steps=4, batch_size=40
        )
    stepper = Stencil3(jnp.array([0.1, 0.6, 0.2]))
    key = jax.random.PRNGKey(0)
    trained, history = trainer(stepper, key, spawn_tqdm=False)
    assert isinstance(trained, Stencil3) and history.shape == (4,)
    assert isinstance(trainer(stepper, key, return_loss_history=False, spawn_tqdm=False), Stencil3)
    _, every_other = trainer(stepper, key, record_loss_every=2, spawn_tqdm=False)
    np.testing.assert_array_equal(every_other, history[::2])


def test_losses_are_batched_with_a_reduction():
    rng = np.random.default_rng(0)
    p, t = jnp.asarray(rng.normal(size=(4, 2, 8))), jnp.asarray(rng.normal(size=(4, 2, 8)))
    per_sample = jnp.mean((p - t) ** 2, axis=(1, 2))
    np.testing.assert_allclose(tx.loss.MSELoss()(p, t), jnp.mean(per_sample), rtol=1e-6)
    np.testing.assert_allclose(
        tx.loss.MSELoss(batch_reduction=jnp.sum)(p, t), jnp.sum(per_sample), rtol=1e-6
    )
    np.testing.assert_allclose(tx.loss.MSELoss().single_batch(p[0], t[0]), per_sample[0], rtol=1e-6)
    np.testing.assert_allclose(
        tx.loss.MAELoss()(p), jnp.mean(jnp.abs(p)), rtol=1e-6
    )  # no target: against zero
    norm = jnp.mean(per_sample / jnp.mean(t**2, axis=(1, 2)))
    np.testing.assert_allclose(tx.loss.Normalized_MSELoss()(p, t), norm, rtol=1e-5)
    with pytest.raises(ValueError, match=re.escape("`target` must be given for `NormalizedMSE`")):
        tx.loss.Normalized_MSELoss()(p)


def test_configurations_are_the_native_ones_batched(data):
    stepper = Stencil3(jnp.array([0.1, 0.6, 0.2]))
    windows = jnp.asarray(data[:, :4])

    def ref(u):
        return 0.2 * jnp.roll(u, 1, -1) + 0.7 * u + 0.1 * jnp.roll(u, -1, -1)

    ours = configurations.DivertedChain(ref, 3, 2, time_level_weights=[1.0, 2.0])
    theirs = tx.configuration.DivertedChain(3, 2, time_level_weights=jnp.array([1.0, 2.0, 9.0]))
    expected = jnp.mean(jax.vmap(ours, in_axes=(None, 0))(stepper, windows))
    np.testing.assert_allclose(theirs(stepper, windows, ref_stepper=ref), expected, rtol=1e-6)
    summed = tx.configuration.Supervised(
        3, time_level_loss=tx.loss.MSELoss(batch_reduction=jnp.sum)
    )
    np.testing.assert_allclose(
        summed(stepper, windows),
        jnp.sum(jax.vmap(configurations.Supervised(3), in_axes=(None, 0))(stepper, windows)),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match=re.escape("`DivertedChain` needs a reference stepper")):
        tx.configuration.DivertedChainBranchOne(2)(stepper, windows)
    with pytest.raises(ValueError, match=re.escape("`Residuum` needs a residuum function")):
        tx.trainer.ResiduumTrainer(
            data, residuum_fn=None, optimizer=optax.sgd(1.0), num_training_steps=1, batch_size=3
        )
    with pytest.raises(ValueError, match=re.escape("must share one `batch_reduction`")):
        tx.configuration.Composite([summed, tx.configuration.Supervised(1)], [1.0, 1.0])
