"""The training core: every data source and objective against a hand-written loop (loss and
gradient), state, partial training, curricula, sweeps and landscapes over any objective."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainax_fd import configurations as C, data as D, objectives as O, sweep, trainers as T
from trainax_fd.landscape import FullLoss

OPTIMIZER = optax.adam(1e-2)
KEY = jax.random.key(11)


class Stencil3(eqx.Module):
    w: jax.Array

    def __call__(self, u):
        left, right = jnp.roll(u, 1, -1), jnp.roll(u, -1, -1)
        return self.w[0] * left + self.w[1] * u + self.w[2] * right + 0.1 * jnp.tanh(u)


def target(u):
    return 0.2 * jnp.roll(u, 1, -1) + 0.7 * u + 0.1 * jnp.roll(u, -1, -1)


MODEL = Stencil3(jnp.array([0.1, 0.6, 0.2]))


@pytest.fixture(scope="module")
def pairs():
    x = np.random.default_rng(0).normal(size=(20, 1, 16)).astype(np.float32)
    return x, np.asarray(target(x))


def hand_written(model, batches, loss_fn, optimizer=OPTIMIZER):
    """A plain optax loop over the given batches: the oracle for loss and parameters."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    state, losses = optimizer.init(params), []
    for batch in batches:
        value, grad = jax.value_and_grad(lambda p, b=batch: loss_fn(eqx.combine(p, static), b))(
            params
        )
        with jax.numpy_dtype_promotion("standard"):
            updates, state = optimizer.update(grad, state, params)
        params = optax.apply_updates(params, updates)
        losses.append(value)
    return eqx.combine(params, static), np.asarray(losses)


def pair_loss(model, batch):
    x, y = batch
    return jnp.mean(jax.vmap(lambda a, b: jnp.mean((model(a) - b) ** 2))(x, y))


def test_pairs_match_a_hand_written_loop(pairs):
    dataset = D.Pairs(*pairs)
    trainer = T.Trainer(dataset, O.InputTarget(), OPTIMIZER, num_steps=6, batch_size=8)
    result = trainer(MODEL, key=KEY, progress=False)
    batches = [dataset.examples(trainer.batch_indices(KEY, s)) for s in range(6)]
    assert [len(b[0]) for b in batches] == [8] * 6  # 20 pairs: 2 batches of 8 an epoch
    model, losses = hand_written(MODEL, batches, pair_loss)
    np.testing.assert_allclose(result.model.w, model.w, rtol=1e-6)
    np.testing.assert_allclose(result.loss_history, losses, rtol=1e-6)
    # the objective's loss and gradient equal the hand-written ones on a batch
    objective = O.InputTarget()
    np.testing.assert_allclose(objective(MODEL, batches[0]), pair_loss(MODEL, batches[0]))
    grad = eqx.filter_grad(lambda m: objective(m, batches[0]))(MODEL)
    expected = eqx.filter_grad(lambda m: pair_loss(m, batches[0]))(MODEL)
    np.testing.assert_allclose(grad.w, expected.w, rtol=1e-6)
    # full loss: every pair at once
    np.testing.assert_allclose(trainer.full_loss(MODEL), pair_loss(MODEL, pairs), rtol=1e-6)
    np.testing.assert_allclose(trainer.full_loss(MODEL, chunk_size=3), pair_loss(MODEL, pairs),
                               rtol=1e-6)  # fmt: skip


def test_per_sample_and_batch_losses_match_a_hand_written_loop(pairs):
    dataset = D.Pairs(*pairs)

    def one(model, example):
        x, y = example
        return jnp.mean((model(x) - y) ** 2)

    results = []
    for objective in (O.PerSample(one), pair_loss):  # a plain function becomes a BatchLoss
        trainer = T.Trainer(dataset, objective, OPTIMIZER, num_steps=5, batch_size=5)
        results.append(trainer(MODEL, key=KEY, progress=False))
        np.testing.assert_allclose(trainer.full_loss(MODEL), pair_loss(MODEL, pairs), rtol=1e-6)
    batches = [dataset.examples(trainer.batch_indices(KEY, s)) for s in range(5)]
    model, losses = hand_written(MODEL, batches, pair_loss)
    for result in results:
        np.testing.assert_allclose(result.model.w, model.w, rtol=1e-6)
        np.testing.assert_allclose(result.loss_history, losses, rtol=1e-6)


def draw(key):
    """One fresh input→target pair."""
    x = jax.random.normal(key, (1, 16))
    return x, target(x)


def test_a_sampler_equals_a_hand_written_scan_bit_for_bit():
    source = D.Sampler(draw, batch_size=4)
    trainer = T.Trainer(source, O.InputTarget(), OPTIMIZER, num_steps=9, chunk_size=4)
    result = trainer(MODEL, key=KEY, progress=False)

    params, static = eqx.partition(MODEL, eqx.is_inexact_array)

    def step(carry, s):
        params, state = carry
        keys = jax.random.split(jax.random.fold_in(KEY, s), 4)
        batch = jax.vmap(draw)(keys)
        value, grad = jax.value_and_grad(lambda p: pair_loss(eqx.combine(p, static), batch))(params)
        with jax.numpy_dtype_promotion("standard"):
            updates, state = OPTIMIZER.update(grad, state, params)
        return (optax.apply_updates(params, updates), state), value

    (params, _), losses = jax.jit(
        lambda p: jax.lax.scan(step, (p, OPTIMIZER.init(p)), jnp.arange(9))
    )(params)
    np.testing.assert_array_equal(result.model.w, params.w)
    np.testing.assert_array_equal(result.loss_history, losses)
    assert len(set(np.asarray(losses).tolist())) == 9  # fresh data at every step


def test_windows_given_as_a_data_set_equal_trajectories():
    u = np.random.default_rng(1).normal(size=(3, 1, 16)).astype(np.float32)
    levels = [u]
    for _ in range(6):
        levels.append(np.asarray(target(levels[-1])))
    data = np.stack(levels, axis=1)
    config = C.Supervised(2)
    a = T.Trainer(data, config, OPTIMIZER, num_steps=4, batch_size=4)(MODEL, key=KEY,
                                                                     progress=False)  # fmt: skip
    b = T.Trainer(D.Windows(data, 3), config, OPTIMIZER, num_steps=4, batch_size=4)(
        MODEL, key=KEY, progress=False
    )
    np.testing.assert_array_equal(a.model.w, b.model.w)
    with pytest.raises(ValueError, match=re.escape("windows must hold at least 3 time levels")):
        T.Trainer(D.Windows(data, 2), config, OPTIMIZER, num_steps=4, batch_size=4)


def test_a_curriculum_continues_and_refuses_going_back():
    u = np.random.default_rng(2).normal(size=(4, 1, 16)).astype(np.float32)
    levels = [u]
    for _ in range(8):
        levels.append(np.asarray(target(levels[-1])))
    data = np.stack(levels, axis=1)
    first = T.Trainer(data, C.Supervised(1), OPTIMIZER, num_steps=5, batch_size=4)
    second = T.Trainer(data, C.Supervised(3), OPTIMIZER, num_steps=9, batch_size=4)
    one = first(MODEL, key=KEY, progress=False)
    both = second(one, progress=False)
    assert int(both.step) == 9 and both.loss_history.shape == (9,)
    np.testing.assert_array_equal(both.loss_history[:5], one.loss_history)
    # the second stage equals a hand-written continuation with rollout 3 on its batches
    windows = D.Windows(data, 4)
    batches = [windows.examples(second.batch_indices(KEY, s)) for s in range(5, 9)]
    params, static = eqx.partition(one.model, eqx.is_inexact_array)
    state = one.opt_state
    config = C.Supervised(3)
    for batch in batches:
        grad = jax.grad(
            lambda p, b=batch: jnp.mean(
                jax.vmap(config, in_axes=(None, 0))(eqx.combine(p, static), b)
            )
        )(params)
        with jax.numpy_dtype_promotion("standard"):
            updates, state = OPTIMIZER.update(grad, state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(both.model.w, params.w, rtol=1e-6)
    with pytest.raises(ValueError, match=re.escape("`num_steps` (9) must exceed the steps")):
        second(both, progress=False)


class Corrected(eqx.Module):
    """A correction network around a fixed physics step with complex coefficients (as an
    exponax stepper keeps them)."""

    spectral: jax.Array  # complex, fixed
    net: Stencil3

    def __call__(self, u):
        physics = jnp.fft.irfft(self.spectral * jnp.fft.rfft(u, axis=-1), n=u.shape[-1], axis=-1)
        return physics + self.net(u)


def test_only_the_trainable_part_trains(pairs):
    decay = jnp.exp(-0.1 * jnp.arange(9.0)).astype(jnp.complex64)
    spectral = (decay * jnp.complex64(1 + 0.1j))[None]
    model = Corrected(spectral, MODEL)
    mask = Corrected(False, Stencil3(True))
    trainer = T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=4, batch_size=5,
                        trainable=mask)  # fmt: skip
    result = trainer(model, key=KEY, progress=False)
    np.testing.assert_array_equal(result.model.spectral, spectral)
    assert not np.allclose(result.model.net.w, MODEL.w)
    assert jax.tree_util.tree_leaves(result.opt_state)[-1].shape == (3,)  # only `net.w`
    # everything trains by default, complex leaves included
    free = T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=2, batch_size=5)
    assert not np.allclose(free(model, key=KEY, progress=False).model.spectral, spectral)
    with pytest.raises(TypeError, match=re.escape("`trainable` must be an Equinox filter spec")):
        T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=2, batch_size=5,
                  trainable={"net": "yes"})  # fmt: skip


class Normed(eqx.Module):
    """A tiny network with batch norm: `model(x, state) -> (y, state)`."""

    conv: eqx.nn.Conv1d
    norm: eqx.nn.BatchNorm

    def __init__(self, key):
        self.conv = eqx.nn.Conv1d(1, 1, 3, padding=1, padding_mode="CIRCULAR", key=key)
        self.norm = eqx.nn.BatchNorm(1, axis_name="batch", mode="batch")

    def __call__(self, x, state):
        y, state = self.norm(self.conv(x), state)
        return y, state


@pytest.fixture
def standard_promotion():
    """Equinox's `BatchNorm` mixes Python floats and int counters (not strict-clean)."""
    with jax.numpy_dtype_promotion("standard"):
        yield


def test_a_batch_norm_model_trains_and_evaluates_in_inference_mode(pairs, standard_promotion):
    model, state = eqx.nn.make_with_state(Normed)(jax.random.key(0))
    trainer = T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=30, batch_size=10)
    result = trainer(model, key=KEY, state=state, progress=False)
    assert result.loss_history[-1] < result.loss_history[0]
    # the running statistics moved away from their initial values
    mean0 = state.get(model.norm.batch_state_index)[0]
    mean = result.model_state.get(result.model.norm.batch_state_index)[0]
    assert not np.allclose(mean, mean0)
    # the full loss evaluates in inference mode: the running statistics, no batch statistics
    x, y = pairs
    frozen = eqx.nn.inference_mode(result.model)
    predictions = jax.vmap(lambda a: frozen(a, result.model_state)[0])(x)
    expected = jnp.mean(jax.vmap(lambda p, t: jnp.mean((p - t) ** 2))(predictions, y))
    loss = trainer.full_loss(result.model, state=result.model_state)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    with pytest.raises(ValueError, match=re.escape("trains models without `eqx.nn.State`")):
        O.PerSample(lambda m, e: 0.0).terms(model, pairs, state)


def test_metrics_of_a_batch_norm_model_receive_its_state(pairs, standard_promotion):
    from trainax_fd.evaluation import ValidationRollout, evaluate

    model, state = eqx.nn.make_with_state(Normed)(jax.random.key(0))
    x, y = pairs
    trajectories = np.stack([x, y], axis=1)  # (samples, 2, 1, 16): one step to evaluate
    metrics = [T.LossMetric(1), T.GradNorm(1), T.WeightNorm(1), ValidationRollout(trajectories, 2)]
    trainer = T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=4, batch_size=20,
                        callbacks=metrics)  # fmt: skip
    result = trainer(model, key=KEY, state=state, progress=False)
    # the loss metric evaluates in inference mode, as the full loss does
    np.testing.assert_allclose(
        result.metrics["loss"][0], trainer.full_loss(model, state=state), rtol=1e-5
    )
    assert not np.isclose(result.metrics["loss"][0], result.loss_history[0], rtol=1e-3)
    # the gradient norm is that of the training step (batch statistics)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    grads = jax.grad(lambda p: O.InputTarget()(eqx.combine(p, static), (x, y), state))(params)
    np.testing.assert_allclose(result.metrics["grad_norm"][0], optax.tree.norm(grads), rtol=1e-4)
    frozen = eqx.nn.inference_mode(model)
    expected = evaluate(lambda u: frozen(u, state)[0], trajectories)
    np.testing.assert_allclose(result.metrics["validation"]["gmean"][0], expected.gmean, rtol=1e-5)

    class NoState(T.AbstractMetric):
        every: int = 1
        name: str = "plain"

        def __call__(self, step, model, batch, trainer):
            return jnp.zeros(())

    stateless = T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=2,
                          batch_size=20, callbacks=[NoState()])  # fmt: skip
    with pytest.raises(TypeError, match=re.escape("metric `plain` (NoState) takes no `state`")):
        stateless(model, key=KEY, state=state, progress=False)


def test_a_sweep_of_batch_norm_models_equals_separate_trainings(pairs, standard_promotion):
    trainer = T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=8, batch_size=10)
    make = eqx.nn.make_with_state(Normed)
    swept = sweep(trainer, key=KEY, init=lambda k: make(k), num_members=2, progress=False)
    init_key, shuffle_key = jax.random.split(KEY)  # as the sweep splits its key
    for i, k in enumerate(jax.random.split(init_key, 2)):
        model, state = make(k)
        alone = trainer(model, key=shuffle_key, state=state, progress=False)
        member = swept.member(i)
        np.testing.assert_allclose(member.loss_history, alone.loss_history, rtol=1e-5)
        index = alone.model.norm.batch_state_index
        np.testing.assert_allclose(  # running statistics carried per member
            member.model_state.get(index)[0], alone.model_state.get(index)[0], rtol=1e-5
        )
    # one shared model and state, copied to every member
    model, state = make(jax.random.key(5))
    shared = sweep(trainer, model, key=KEY, state=state, num_members=2, progress=False)
    np.testing.assert_allclose(shared.member(0).loss_history, shared.member(1).loss_history)
    with pytest.raises(ValueError, match=re.escape("with `init`, return `(stepper, state)`")):
        sweep(trainer, key=KEY, state=state, init=lambda k: make(k), num_members=2)
    with pytest.raises(TypeError, match=re.escape("`state` must be an `eqx.nn.State` or None")):
        sweep(trainer, model, key=KEY, state={"mean": 0.0}, num_members=2)


def test_float64_physics_inside_a_float32_loss(pairs, x64):
    x, y = pairs  # float32

    def physics_loss(model, example):
        u, v = example
        step = target(model(u).astype(jnp.float64))  # a float64 physics step
        return jnp.mean((step - target(v.astype(jnp.float64))) ** 2)

    trainer = T.Trainer(D.Pairs(x, y), O.PerSample(physics_loss), OPTIMIZER, num_steps=5,
                        batch_size=5)  # fmt: skip
    result = trainer(MODEL, key=KEY, progress=False)
    assert result.model.w.dtype == jnp.float32 and result.loss_history.dtype == jnp.float64
    assert result.loss_history[-1] < result.loss_history[0]


def test_a_sweep_of_seeds_over_a_sampler_equals_separate_trainings(compiles):
    trainer = T.Trainer(D.Sampler(draw, batch_size=4), O.InputTarget(), OPTIMIZER, num_steps=6)

    def init(key):
        return Stencil3(jax.random.normal(key, (3,)))

    swept = sweep(trainer, key=KEY, init=init, num_members=8, shuffle="per_member",
                  progress=False)  # fmt: skip
    init_keys = jax.random.split(jax.random.split(KEY)[0], 8)
    data_keys = jax.random.split(jax.random.split(KEY)[1], 8)
    for m in (0, 5):
        alone = trainer(init(init_keys[m]), key=data_keys[m], progress=False)
        np.testing.assert_allclose(swept.member(m).model.w, alone.model.w, rtol=1e-5)
        np.testing.assert_allclose(swept.member(m).loss_history, alone.loss_history, rtol=1e-5)
    with compiles() as c:
        sweep(trainer, key=jax.random.key(1), init=init, num_members=8, progress=False)
    assert c.count <= 1  # the members' chunk is not compiled again (the shared-key init is)


def test_full_loss_and_landscape_over_pairs(pairs):
    loss = FullLoss(D.Pairs(*pairs), O.InputTarget())
    np.testing.assert_allclose(loss(MODEL), pair_loss(MODEL, pairs), rtol=1e-6)
    models = Stencil3(jnp.stack([MODEL.w, 2 * MODEL.w]))
    both = eqx.filter_vmap(loss)(models)
    np.testing.assert_allclose(both[1], pair_loss(Stencil3(2 * MODEL.w), pairs), rtol=1e-6)
    sampled = FullLoss(D.Sampler(draw, batch_size=4), O.InputTarget())
    batch = jax.vmap(draw)(jax.random.split(jax.random.fold_in(jax.random.key(5), 0), 4))
    np.testing.assert_allclose(sampled(MODEL, key=jax.random.key(5)), pair_loss(MODEL, batch),
                               rtol=1e-6)  # fmt: skip


def test_canonical_convolutions_and_compiler_options_change_no_result(pairs):
    net = eqx.nn.Conv1d(1, 1, 3, padding=1, padding_mode="CIRCULAR", key=jax.random.key(0))
    results = []
    for setting in (True, False):
        trainer = T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=3,
                            batch_size=5, canonical_convolutions=setting)  # fmt: skip
        results.append(trainer(net, key=KEY, progress=False))
    np.testing.assert_allclose(results[0].model.weight, results[1].model.weight, rtol=1e-5)
    refused = T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=3,
                        batch_size=5, compiler_options={"xla_no_such_option": 1})  # fmt: skip
    with pytest.warns(UserWarning, match=re.escape("were refused by the installed XLA")) as seen:
        result = refused(net, key=KEY, progress=False)
    assert seen[0].filename == __file__  # the warning points at the user's line
    np.testing.assert_allclose(result.model.weight, results[1].model.weight, rtol=1e-5)
    with pytest.raises(TypeError, match=re.escape("`compiler_options` must be a mapping")):
        T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=3, batch_size=5,
                  compiler_options=["xla"])  # fmt: skip


def test_a_too_large_batch_warns_at_the_users_line(pairs):
    with pytest.warns(UserWarning, match=re.escape("training full-batch with 20 examples")) as w:
        trainer = T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=1,
                            batch_size=64)  # fmt: skip
    assert w[0].filename == __file__ and trainer.batch_size == 20
    with pytest.warns(UserWarning, match=re.escape("training full-batch")) as w:
        D.Shuffled(D.Pairs(*pairs), 64)
    assert w[0].filename == __file__


def test_errors(pairs):
    data = np.zeros((2, 5, 1, 8), np.float32)
    with pytest.raises(TypeError, match=re.escape("needs a configuration as `objective`")):
        T.Trainer(data, O.InputTarget(), OPTIMIZER, num_steps=1, batch_size=1)
    with pytest.raises(ValueError, match=re.escape("`batch_size` must be given")):
        T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=1)
    with pytest.raises(ValueError, match=re.escape("`batch_size` is set by the data source")):
        T.Trainer(D.Sampler(draw), O.InputTarget(), OPTIMIZER, num_steps=1, batch_size=3)
    with pytest.raises(ValueError, match=re.escape("apply to trajectories only")):
        T.Trainer(D.Pairs(*pairs), O.InputTarget(), OPTIMIZER, num_steps=1, batch_size=2,
                  starts="initial")  # fmt: skip
    with pytest.raises(ValueError, match=re.escape("must have one number of examples")):
        D.Pairs(pairs[0], pairs[1][:3])
    with pytest.raises(TypeError, match=re.escape("`sample` must be callable")):
        D.Sampler("points")
    with pytest.raises(TypeError, match=re.escape("`dataset` must be an `AbstractDataset`")):
        D.Shuffled(pairs, 2)
    with pytest.raises(TypeError, match=re.escape("`loss` must be callable")):
        O.InputTarget(3)


def test_lbfgs_on_a_fixed_batch_reuses_the_line_search_evaluation(pairs):
    """On a batch that is the same at every step, the loss and gradient the line search
    computed at the accepted point are this step's: one evaluation a step fewer, same run."""
    calls = []

    def counted(model, batch):
        jax.debug.callback(lambda: calls.append(1))
        return pair_loss(model, batch)

    def train(data):
        calls.clear()
        # 3 steps: later ones sit at float32's floor, where line searches wander
        trainer = T.Trainer(data, O.BatchLoss(counted), optax.lbfgs(), num_steps=3)
        result = trainer(MODEL, key=KEY, progress=False)
        return result, len(calls)

    unknown, evaluations = train(D.Sampler(lambda key: pairs))  # the trainer cannot tell
    fixed, fewer = train(D.Sampler(D.Fixed(pairs)))
    full, full_count = train(D.Shuffled(D.Pairs(*pairs), 20))
    assert evaluations - fewer == 2 and full_count == fewer  # every step after the first
    for result in (fixed, full):
        np.testing.assert_allclose(result.loss_history, unknown.loss_history, rtol=1e-6)
        np.testing.assert_allclose(result.model.w, unknown.model.w, rtol=1e-6)


def test_adam_then_lbfgs_continues_with_a_new_optimizer(pairs):
    """A second stage with `optax.lbfgs` (its line search re-evaluates the loss on the step's
    batch): equal to a hand-written L-BFGS loop from Adam's model."""
    dataset = D.Pairs(*pairs)
    adam = T.Trainer(dataset, O.InputTarget(), OPTIMIZER, num_steps=5, batch_size=20)
    lbfgs = optax.lbfgs()
    second = T.Trainer(dataset, O.InputTarget(), lbfgs, num_steps=12, batch_size=20)
    first = adam(MODEL, key=KEY, progress=False)
    with pytest.raises(ValueError, match=re.escape("continue with `new_optimizer=True`")):
        second(first, progress=False)
    both = second(first, new_optimizer=True, progress=False)
    assert int(both.step) == 12
    np.testing.assert_array_equal(both.loss_history[:5], first.loss_history)

    params, static = eqx.partition(first.model, eqx.is_inexact_array)
    state = lbfgs.init(params)

    def loss(p):
        return pair_loss(eqx.combine(p, static), pairs)

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(loss)(params)
        with jax.numpy_dtype_promotion("standard"):
            updates, state = lbfgs.update(
                grad, state, params, value=value, grad=grad, value_fn=loss
            )
        return optax.apply_updates(params, updates), state, value

    losses = []
    for _ in range(7):
        params, state, value = step(params, state)
        losses.append(value)
    np.testing.assert_allclose(both.model.w, params.w, rtol=1e-5)
    np.testing.assert_allclose(both.loss_history[5:], losses, rtol=1e-5)
    assert both.loss_history[-1] < 0.1 * first.loss_history[-1]
