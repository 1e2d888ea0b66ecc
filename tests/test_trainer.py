"""The compiled Trainer: against a hand-written optax loop, resume, NaN stop, full loss."""

import functools
import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainax_fd import Grid, _cpu, configurations as C, trainers as T
from trainax_fd.reference import random_fourier, sine
from trainax_fd.trainers import _trainer

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


def test_no_retrace_and_resume_is_bit_exact(data, tmp_path):
    trainer = make(data, callbacks=[T.WeightNorm(2)])
    before = _trainer.TRACES["chunk"]
    full = trainer(STEPPER, key=KEY, progress=False)
    again = trainer(STEPPER, key=KEY, progress=False)
    assert _trainer.TRACES["chunk"] == before + 1  # 3 chunks x 2 calls, one trace
    np.testing.assert_array_equal(full.stepper.w, again.stepper.w)

    path = tmp_path / "run.eqx"
    interrupted = make(data, callbacks=[T.WeightNorm(2), T.Checkpoint(path, 4), Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        interrupted(STEPPER, key=KEY, progress=False)
    restored = trainer.restore(path, STEPPER)
    assert int(restored.step) == 4 and not list(tmp_path.glob(".tmp-*"))
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


def test_weakly_typed_leaves_compile_once(data):
    stepper = WeakScale(jnp.array([0.1, 0.6, 0.2]), jnp.asarray(0.9))
    assert stepper.scale.weak_type
    before = _trainer.TRACES["chunk"]
    result = make(data, num_steps=7, chunk_size=3)(stepper, key=KEY, progress=False)  # 3 chunks
    assert _trainer.TRACES["chunk"] == before + 1  # typed as the chunk returns it
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
    trainer = make(data, batching="trainax", batch_size=10)  # 33 windows: 10, 10, 10, 3
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


@pytest.mark.skipif(_cpu._MALLOC_TRIM is None, reason="malloc_trim is glibc's")
def test_compiler_memory_is_returned_before_the_chunk_runs(data):
    trainer = make(data, num_steps=2, batch_size=5, config=C.Supervised(3))  # a new program
    count = _cpu.TRIMS["count"]
    trainer(STEPPER, key=KEY, progress=False)
    assert _cpu.TRIMS["count"] == count + 1  # after the chunk compiled, before it ran
    trainer(STEPPER, key=KEY, progress=False)
    assert _cpu.TRIMS["count"] == count + 1  # cached: nothing compiled, nothing to return
    jax.jit(lambda x: x * 3.0 + 1.0)(jnp.ones(5)).block_until_ready()
    assert _cpu.TRIMS["count"] == count + 1  # compilations outside the package: untouched


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
    with pytest.raises(TypeError, match=re.escape("`configuration` must be an")):
        T.Trainer(data, "supervised", OPTIMIZER, num_steps=1, batch_size=1)
    with pytest.raises(TypeError, match=re.escape("`optimizer` must be an")):
        T.Trainer(data, C.Supervised(1), None, num_steps=1, batch_size=1)
    with pytest.raises(ValueError, match=re.escape("`batching` must be one of")):
        make(data, batching="ragged")
    with pytest.raises(ValueError, match=re.escape("`window_length` must be at least 3")):
        make(data, window_length=2)
    with pytest.raises(ValueError, match=re.escape("`num_steps` must be an int >= 1")):
        make(data, num_steps=0)
    with pytest.raises(TypeError, match=re.escape("`key` must be a `jax.random.key`")):
        make(data).init(STEPPER, key=3)
    with pytest.warns(UserWarning, match=re.escape("training full-batch with 33 windows")):
        assert make(data, batch_size=100).batch_size == 33


def test_compiled_picks_cpu_options_only_at_the_top_level():
    """`_cpu.compiled`: XLA:CPU's options for concrete CPU arrays; inside `jit`, `vmap` or
    `grad` the plain program (JAX takes compile options only at the top level)."""

    @_cpu.compiled
    def double(x):
        return 2.0 * x

    x = jnp.arange(3.0)
    np.testing.assert_array_equal(double(x), 2.0 * x)
    np.testing.assert_array_equal(jax.jit(double)(x), 2.0 * x)
    np.testing.assert_array_equal(jax.vmap(double)(x), 2.0 * x)
    assert float(jax.grad(lambda v: double(v).sum())(x)[0]) == 2.0
    assert _cpu._cpu_options_apply((x, {"k": 1})) and _cpu._cpu_options_apply(
        ()
    )  # CPU backend here
    seen = []
    jax.jit(lambda v: seen.append(_cpu._cpu_options_apply(v)) or v)(x)
    assert seen == [False]  # a tracer
    assert _cpu._TRACE_STATE_CLEAN is not None  # JAX's internal check is still where it was
    # under a trace, constants and calls without arrays get the plain program too
    np.testing.assert_array_equal(jax.jit(lambda: double(x))(), 2.0 * x)
    grid = Grid(8)
    np.testing.assert_array_equal(jax.jit(lambda: sine(grid))(), sine(grid))
    key = jax.random.key(0)
    np.testing.assert_allclose(
        jax.jit(lambda: random_fourier(grid, key=key))(), random_fourier(grid, key=key), rtol=1e-6
    )


def test_compiled_asks_short_whether_to_use_the_cpu_options():
    """`compiled(fn, short=...)`: the fast-compiling program only for short runs; a long one
    is the other (default-options) program, compiled apart; each cached."""
    traces, long_run = [], [False]

    @functools.partial(_cpu.compiled, short=lambda x: not long_run[0])
    def double(x):
        traces.append(1)
        return 2.0 * x

    x = jnp.arange(3.0)
    double(x), double(x)
    assert len(traces) == 1
    long_run[0] = True
    np.testing.assert_array_equal(double(x), 2.0 * x)
    double(x)
    assert len(traces) == 2


def test_compiled_draw_batches_keys_under_every_transformation():
    """`_cpu.compiled_draw`: the same draws eagerly, under an eager `vmap` over keys (its own
    rule: one batched program), nested `vmap`s, `jit(vmap)`, and a `vmap` over something else
    with one key (unbatched result broadcast by JAX)."""

    @_cpu.compiled_draw
    def draw(key, shape):
        a, b = jax.random.split(key)
        return {"u": jax.random.uniform(a, shape), "none": None, "n": jax.random.normal(b, ())}

    keys = jax.random.split(jax.random.key(3), 6)
    each = [draw(k, (2,)) for k in keys]
    expected = {n: np.stack([e[n] for e in each]) for n in ("u", "n")}
    for name, out in [
        ("vmap", jax.vmap(draw, (0, None))(keys, (2,))),
        ("jit(vmap)", jax.jit(jax.vmap(lambda k: draw(k, (2,))))(keys)),
        ("vmap(vmap)", jax.vmap(jax.vmap(lambda k: draw(k, (2,))))(keys.reshape(2, 3))),
    ]:
        assert out["none"] is None, name
        for n in ("u", "n"):
            np.testing.assert_array_equal(out[n].reshape(expected[n].shape), expected[n], name)
    other = jax.vmap(lambda x: draw(keys[0], (2,))["u"] * x)(jnp.arange(3.0))
    np.testing.assert_array_equal(other, np.outer(np.arange(3.0), each[0]["u"]))
