"""trainax 0.0.2's surface: `import trainax_fd.compat.trainax as tx` runs trainax code unchanged.

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

import trainax_fd.compat.trainax as tx
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


def trainax_windows(data, length):
    """trainax's stacked windows: every start of every trajectory, sample-major."""
    return np.stack([data[s, t : t + length] for s in range(3) for t in range(14 - length)])


def trainax_permutations(key, count, epochs):
    keys, perms = [key], []
    for _ in range(epochs):
        perms.append(np.asarray(jax.random.permutation(keys[-1], count)))
        keys.append(jax.random.split(keys[-1])[0])
    return perms


def oracle(data, stepper, key, optimizer, steps, batch_size, n, weights):
    windows = trainax_windows(data, n + 1)
    count = len(windows)
    per_epoch = math.ceil(count / batch_size)
    perms = trainax_permutations(key, count, steps // per_epoch + 1)

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
    windows = trainax_windows(data, 3)
    config = tx.configuration.Supervised(2, time_level_weights=weights)
    np.testing.assert_allclose(
        trainer.full_loss(trained), config(trained, jnp.asarray(windows)), rtol=1e-6
    )
    # trainax's public attributes
    assert isinstance(trainer, tx.GeneralTrainer)
    assert (trainer.num_minibatches, trainer.batch_size) == (9, 7)
    assert trainer.optimizer is optimizer and trainer.callback_fn is callback
    assert trainer.ref_stepper is None and trainer.residuum_fn is None
    assert trainer.trajectory_sub_stacker.num_total_samples == 33
    np.testing.assert_array_equal(trainer.trajectory_sub_stacker.data_sub_trajectories, windows)
    np.testing.assert_array_equal(trainer.loss_configuration.time_level_weights, weights)


def test_general_trainer_with_trainax_signature(data):
    """`GeneralTrainer(stacker, configuration, ...)`, trainax's own signature, trains as the
    oracle; `step_fn` is one of its updates."""
    optimizer = optax.adam(1e-2)
    stepper = Stencil3(jnp.array([0.1, 0.6, 0.2]))
    ones = jnp.ones(2)
    stacker = tx.TrajectorySubStacker(data, 3)
    trainer = tx.GeneralTrainer(
        stacker, tx.configuration.Supervised(2), optimizer=optimizer, num_minibatches=9,
        batch_size=7,
    )  # fmt: skip
    trained, history = trainer(stepper, jax.random.PRNGKey(2), spawn_tqdm=False)
    w, expected = oracle(data, stepper, jax.random.PRNGKey(2), optimizer, 9, 7, 2, ones)
    np.testing.assert_allclose(trained.w, w, rtol=2e-6)
    np.testing.assert_allclose(history, expected, rtol=2e-6)

    batch = stacker(tx.PermutationMixer(33, 9, 7, jax.random.PRNGKey(2))(0))
    opt_state = optimizer.init(eqx.filter(stepper, eqx.is_array))
    one, opt_state, loss = trainer.step_fn(stepper, opt_state, batch)
    w1, expected1 = oracle(data, stepper, jax.random.PRNGKey(2), optimizer, 1, 7, 2, ones)
    np.testing.assert_allclose(one.w, w1, rtol=2e-6)
    np.testing.assert_allclose(loss, expected1[0], rtol=2e-6)

    with pytest.raises(TypeError, match=re.escape("`trajectory_sub_stacker` must be a")):
        tx.GeneralTrainer(data, tx.configuration.Supervised(2), optimizer=optimizer,
                          num_minibatches=1, batch_size=1)  # fmt: skip
    with pytest.raises(TypeError, match=re.escape("`loss_configuration` must be a trainax")):
        tx.GeneralTrainer(stacker, configurations.Supervised(2), optimizer=optimizer,
                          num_minibatches=1, batch_size=1)  # fmt: skip


class HandWritten(tx.configuration.BaseConfiguration):
    """A configuration of one's own, as trainax users write them: one-step MSE."""

    def __call__(self, stepper, data, *, ref_stepper=None, residuum_fn=None):
        return jnp.mean(jnp.square(jax.vmap(stepper)(data[:, 0]) - data[:, 1]))


def test_own_configurations_train(data):
    optimizer, key = optax.adam(1e-2), jax.random.PRNGKey(3)
    stepper = Stencil3(jnp.array([0.1, 0.6, 0.2]))
    kwargs = dict(optimizer=optimizer, num_minibatches=5, batch_size=8)
    ours = tx.GeneralTrainer(tx.TrajectorySubStacker(data, 2), HandWritten(), **kwargs)
    _, history = ours(stepper, key, spawn_tqdm=False)
    _, expected = oracle(data, stepper, key, optimizer, 5, 8, 1, jnp.ones(1))
    np.testing.assert_allclose(history, expected, rtol=2e-6)
    both = tx.configuration.Composite([HandWritten(), tx.configuration.Supervised(1)], [1.0, 2.0])
    trainer = tx.GeneralTrainer(tx.TrajectorySubStacker(data, 2), both, **kwargs)
    windows = jnp.asarray(trainax_windows(data, 2))
    np.testing.assert_allclose(
        trainer.full_loss(stepper), 3.0 * HandWritten()(stepper, windows), rtol=1e-6
    )


def test_stacker_and_mixer_are_trainax_windows_and_batches(data):
    stacker = tx.TrajectorySubStacker(data, 4)
    windows = trainax_windows(data, 4)
    assert stacker.num_total_samples == len(windows) == 30
    np.testing.assert_array_equal(stacker.data_sub_trajectories, windows)
    np.testing.assert_array_equal(stacker(slice(3, 9)), windows[3:9])
    np.testing.assert_array_equal(stacker(np.array([5, -1])), windows[[5, -1]])
    np.testing.assert_array_equal(stacker(jnp.array([[2], [7]])), windows[[[2], [7]]])
    ic = tx.TrajectorySubStacker(data, 4, only_store_ic=True)
    np.testing.assert_array_equal(ic.data_sub_trajectories, windows[:, :1])
    first = tx.TrajectorySubStacker(data, 4, do_sub_stacking=False)
    np.testing.assert_array_equal(first.data_sub_trajectories, data[:, :4])

    key = jax.random.PRNGKey(4)
    mixer = tx.PermutationMixer(30, 11, 8, key)  # batches of 8, 8, 8, 6
    perms = trainax_permutations(key, 30, 3)
    assert (mixer.num_minibatches_per_epoch, mixer.num_epochs, mixer.batch_size) == (4, 3, 8)
    np.testing.assert_array_equal(mixer.permutations, np.stack(perms))
    indices, (epoch, batch) = mixer(7, return_info=True)
    assert (epoch, batch) == (1, 3)
    np.testing.assert_array_equal(indices, perms[1][24:30])
    np.testing.assert_array_equal(mixer(8), perms[2][:8])
    with pytest.raises(ValueError, match=re.escape("`i` must lie in [0, 11) (num_minibatches)")):
        mixer(11)
    with pytest.warns(UserWarning, match=re.escape("training full-batch")):
        assert tx.PermutationMixer(30, 2, 40, key).batch_size == 30


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
    # parts reduced over the batch each their own way, as trainax's `Composite`
    composite = tx.configuration.Composite([summed, tx.configuration.Supervised(1)], [0.5, 2.0])
    one_step = jax.vmap(configurations.Supervised(1), in_axes=(None, 0))(stepper, windows)
    np.testing.assert_allclose(
        composite(stepper, windows),
        0.5 * summed(stepper, windows) + 2.0 * jnp.mean(one_step),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match=re.escape("`weights` must have shape (2,)")):
        tx.configuration.Composite([summed, summed], [1.0])
    with pytest.raises(TypeError, match=re.escape("`configurations` must hold trainax")):
        tx.configuration.Composite([configurations.Supervised(1)], [1.0])
    with pytest.raises(TypeError, match=re.escape("`time_level_loss` must be a trainax loss")):
        tx.configuration.Supervised(1, time_level_loss=lambda p, t: 0.0)(stepper, windows)
    with pytest.raises(ValueError, match=re.escape("`num_branch_steps` must be at most")):
        tx.configuration.DivertedChain(2, 3)


def test_configuration_fields_as_trainax_stores_them():
    sup = tx.configuration.Supervised(3)
    np.testing.assert_array_equal(sup.time_level_weights, np.ones(3))
    assert isinstance(sup.time_level_weights, jax.Array)
    assert isinstance(sup.time_level_loss, tx.loss.MSELoss)
    div = tx.configuration.DivertedChain(4, 2)
    assert div.time_level_weights.shape == (4,) and div.branch_level_weights.shape == (2,)
    one = tx.configuration.DivertedChainBranchOne(3, cut_div_chain=True)
    assert (one.num_rollout_steps, one.cut_div_chain) == (3, True)
    assert one.time_level_weights.shape == (3,)
    mix = tx.configuration.MixChainPostPhysics(2, 3)
    assert mix.time_level_weights.shape == (5,) and mix.num_post_physics_steps == 3
    res = tx.configuration.Residuum(2, cut_prev=True)
    assert (res.cut_prev, res.cut_next, res.time_level_weights.shape) == (True, False, (2,))
    with pytest.raises(ValueError, match=re.escape("`time_level_weights` must have shape (3,)")):
        tx.configuration.Supervised(3, time_level_weights=[1.0, 2.0])


def test_a_second_eager_call_does_not_compile(data, compiles):
    """The same shapes: no compilation on the second call of a configuration, nor of its
    gradient (the stepper's values are traced)."""
    config = tx.configuration.Supervised(3, cut_bptt=True, cut_bptt_every=2)
    windows = jnp.asarray(data[:, :4])
    first, second = Stencil3(jnp.array([0.1, 0.6, 0.2])), Stencil3(jnp.array([0.2, 0.5, 0.3]))
    grad = eqx.filter_grad(config)
    config(first, windows)
    grad(first, windows)
    with compiles() as c:
        value = config(second, windows)
        g = grad(second, windows)
    assert c.count == 0
    expected = jnp.mean(
        jax.vmap(configurations.Supervised(3, cut_bptt=True, cut_bptt_every=2), (None, 0))(
            second, windows
        )
    )
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert g.w.shape == (3,)


def test_sample_data():
    key = jax.random.PRNGKey(0)
    u = tx.sample_data.advection_1d_periodic(16, 3, cfl=1.0, temporal_horizon=5, key=key)
    assert u.shape == (3, 5, 1, 16)
    np.testing.assert_allclose(u[:, 1:], jnp.roll(u[:, :-1], 1, axis=-1), atol=2e-5)  # one cell
    np.testing.assert_allclose(jnp.mean(u, axis=-1), 0.0, atol=1e-5)  # no offset
    lorenz = tx.sample_data.lorenz_rk4(2, temporal_horizon=30, num_warmup_steps=10, key=key)
    assert lorenz.shape == (2, 30, 3)
    stepper = tx.sample_data.make_lorenz_stepper_rk4()
    np.testing.assert_allclose(stepper(lorenz[0, 0]), lorenz[0, 1], rtol=1e-5)
    c = np.sqrt(8.0 / 3.0 * 27.0)
    fixed = jnp.array([c, c, 27.0])  # a fixed point of the Lorenz system
    np.testing.assert_allclose(stepper(fixed), fixed, rtol=1e-6)


def test_errors_name_trainax_arguments(data):
    def raises(message, fn, *args, **kwargs):
        with pytest.raises(ValueError, match=re.escape(message)):
            fn(*args, **kwargs)

    adam = optax.adam(1e-3)
    trainer = tx.trainer.SupervisedTrainer
    raises("`num_training_steps` must be an int >= 1, got 0.", trainer, data, optimizer=adam,
           num_training_steps=0, batch_size=2)  # fmt: skip
    raises("`batch_size` must be an int >= 1, got 0.", trainer, data, optimizer=adam,
           num_training_steps=3, batch_size=0)  # fmt: skip
    times = data.shape[1]
    raises(f"`num_rollout_steps` ({times}) needs windows of {times + 1} time levels, but "
           f"`data_trajectories` has {times}.", trainer, data, optimizer=adam,
           num_training_steps=3, batch_size=2, num_rollout_steps=times)  # fmt: skip
    raises(f"`sub_trajectory_len` ({times + 1}) must be at most the number of time levels",
           tx.TrajectorySubStacker, data, times + 1)  # fmt: skip
    stacker = tx.TrajectorySubStacker(data, 2)
    raises("`num_minibatches` must be an int >= 1, got 0.", tx.GeneralTrainer, stacker,
           tx.configuration.Supervised(1), optimizer=adam, num_minibatches=0,
           batch_size=2)  # fmt: skip


def test_the_mixers_warning_points_at_the_users_line():
    with pytest.warns(UserWarning, match=re.escape("training full-batch")) as seen:
        tx.PermutationMixer(5, 3, 10, shuffle_key=jax.random.key(0))
    assert seen[0].filename == __file__
