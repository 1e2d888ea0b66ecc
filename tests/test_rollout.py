"""`rollout` / `Rollout` and `repeat` / `Repeated`: values, gradients, vmap, errors, retracing."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd import Grid
from trainax_fd.reference import Diffusion, Repeated, Rollout, repeat, rollout, trajectories

TRACES: list = []  # appended to each time a `Counting` stepper is traced


class Counting(eqx.Module):
    """A cheap linear stepper, `u -> rate u + (roll(u) - u) / 4`, that counts its traces."""

    rate: jax.Array

    def __call__(self, u):
        TRACES.append(tuple(u.shape))
        return self.rate * u + 0.25 * (jnp.roll(u, 1, axis=-1) - u)


def numpy_counting(rate: float, u: np.ndarray) -> np.ndarray:
    return rate * u + 0.25 * (np.roll(u, 1, axis=-1) - u)


GRID = Grid((12,), placement="periodic")


def diffusion(k=0.3) -> Diffusion:
    return Diffusion(GRID, "periodic", k, 1e-3)


def initial(seed=0, shape=(2, 12)) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype=jnp.float32)


def python_loop(stepper, u0, num_steps) -> np.ndarray:
    states, u = [], u0
    for _ in range(num_steps):
        u = stepper(u)
        states.append(np.asarray(u))
    return np.stack(states)


# ---------------------------------------------------------------------------------------------
# values and shapes


@pytest.mark.parametrize("include_init", [False, True])
def test_rollout_shape_and_values_match_a_python_loop(include_init):
    stepper, u0 = diffusion(), initial()
    trajectory = rollout(stepper, 5, include_init=include_init)(u0)
    assert isinstance(trajectory, jax.Array)
    assert trajectory.shape == ((6,) if include_init else (5,)) + (2, 12)
    expected = python_loop(stepper, u0, 5)
    if include_init:
        np.testing.assert_array_equal(trajectory[0], u0)
        trajectory = trajectory[1:]
    np.testing.assert_allclose(trajectory, expected, rtol=1e-6, atol=1e-7)
    assert not np.allclose(expected[-1], np.asarray(u0))  # the steps did something


def test_rollout_of_a_custom_stepper_matches_numpy():
    rate, u0 = 0.9, initial(1)
    trajectory = rollout(Counting(jnp.asarray(rate)), 4)(u0)
    u = np.asarray(u0, dtype=np.float64)
    for n in range(4):
        u = numpy_counting(rate, u)
        np.testing.assert_allclose(trajectory[n], u, rtol=1e-5, atol=1e-6)


def test_rollout_returns_a_module():
    r = rollout(diffusion(), 3, include_init=True, checkpoint=True)
    assert isinstance(r, Rollout) and isinstance(r, eqx.Module)
    assert (r.num_steps, r.include_init, r.checkpoint) == (3, True, True)


def checkpoint_loss(stepper, u0, checkpoint):
    weights = jnp.linspace(0.5, 1.5, 12, dtype=u0.dtype)[None, None]
    trajectory = rollout(stepper, 6, checkpoint=checkpoint)(u0)
    return jnp.sum(weights * trajectory**2)


@pytest.mark.parametrize("kind", ["custom", "reference"])
def test_checkpoint_gives_the_same_values_and_gradients(x64, kind):
    """`checkpoint=True` only changes memory use; a Module stepper with array leaves works."""
    u0 = jnp.asarray(np.random.default_rng(2).standard_normal((1, 12)), dtype=jnp.float64)

    def make(coefficient):
        coefficient = jnp.asarray(coefficient, dtype=jnp.float64)
        if kind == "custom":
            return Counting(coefficient)
        return Diffusion(GRID, "periodic", coefficient, 1e-3)

    def coefficient_of(stepper):
        return stepper.rate if kind == "custom" else stepper.diffusivity

    value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(checkpoint_loss))
    value, grads = {}, {}
    for checkpoint in (False, True):
        value[checkpoint], grad = value_and_grad(make(0.8), u0, checkpoint)
        grads[checkpoint] = float(coefficient_of(grad))
    assert float(value[True]) == pytest.approx(float(value[False]), rel=1e-14)
    assert grads[True] == pytest.approx(grads[False], rel=1e-12)
    eps = 1e-6
    loss = eqx.filter_jit(checkpoint_loss)
    fd = (loss(make(0.8 + eps), u0, False) - loss(make(0.8 - eps), u0, False)) / (2 * eps)
    assert grads[True] == pytest.approx(float(fd), rel=1e-6)
    assert abs(grads[True]) > 1e-3


# ---------------------------------------------------------------------------------------------
# repeat


@pytest.mark.parametrize("checkpoint", [False, True])
def test_repeat_equals_k_calls(checkpoint):
    stepper, u0 = diffusion(), initial(3)
    repeated = repeat(stepper, 4, checkpoint=checkpoint)
    assert isinstance(repeated, Repeated)
    out = repeated(u0)
    assert out.shape == u0.shape
    np.testing.assert_allclose(out, python_loop(stepper, u0, 4)[-1], rtol=1e-6, atol=1e-7)


def test_repeat_nested_inside_rollout():
    stepper, u0 = diffusion(), initial(4)
    trajectory = rollout(repeat(stepper, 3), 4, include_init=True)(u0)
    assert trajectory.shape == (5, 2, 12)
    fine = python_loop(stepper, u0, 12)
    np.testing.assert_allclose(trajectory[1:], fine[2::3], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(trajectory[0], u0)


def test_repeat_of_repeat():
    rate, u0 = 0.95, initial(5)
    out = repeat(repeat(Counting(jnp.asarray(rate)), 2), 3)(u0)
    u = np.asarray(u0, dtype=np.float64)
    for _ in range(6):
        u = numpy_counting(rate, u)
    np.testing.assert_allclose(out, u, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# vmap


def test_rollout_under_vmap_over_initial_conditions():
    stepper = diffusion()
    batch = initial(6, shape=(3, 2, 12))
    trajectories = jax.vmap(rollout(stepper, 4))(batch)
    assert trajectories.shape == (3, 4, 2, 12)
    for b in range(3):
        expected = python_loop(stepper, batch[b], 4)
        np.testing.assert_allclose(trajectories[b], expected, rtol=1e-6, atol=1e-7)


def test_rollout_under_vmap_over_stepper_coefficients():
    u0 = initial(7)
    rates = jnp.asarray([0.5, 0.9, 1.1])
    trajectories = jax.vmap(lambda r: rollout(Counting(r), 3)(u0))(rates)
    assert trajectories.shape == (3, 3, 2, 12)
    for b, rate in enumerate([0.5, 0.9, 1.1]):
        u = np.asarray(u0, dtype=np.float64)
        for n in range(3):
            u = numpy_counting(rate, u)
            np.testing.assert_allclose(trajectories[b, n], u, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("num_steps", [0, -2, 2.0, True, "3", None])
def test_rollout_rejects_bad_num_steps(num_steps):
    with pytest.raises(ValueError, match=r"`num_steps` must be an int >= 1, got"):
        rollout(diffusion(), num_steps)


@pytest.mark.parametrize("num_substeps", [0, 1.5, False])
def test_repeat_rejects_bad_num_substeps(num_substeps):
    with pytest.raises(ValueError, match=r"`num_substeps` must be an int >= 1, got"):
        repeat(diffusion(), num_substeps)


@pytest.mark.parametrize("factory", [rollout, repeat])
@pytest.mark.parametrize("stepper", [3, "diffusion", None])
def test_non_callable_stepper_is_a_type_error(factory, stepper):
    with pytest.raises(TypeError, match=r"`stepper` must be callable, got"):
        factory(stepper, 2)


def test_rollout_checks_the_sample_shape():
    with pytest.raises(ValueError, match="vmap"):
        rollout(diffusion(), 2)(initial(8, shape=(3, 2, 12)))


# ---------------------------------------------------------------------------------------------
# no retracing


def test_same_shapes_and_new_coefficients_do_not_retrace():
    TRACES.clear()
    u0 = initial(9, shape=(1, 7))
    first = rollout(Counting(jnp.asarray(0.5)), 3)
    a = first(u0)
    b = first(u0 + 1.0)
    assert len(TRACES) == 1
    # the stepper is linear and maps a constant c to 0.5 c
    expected = np.broadcast_to([[[0.5]], [[0.25]], [[0.125]]], (3, 1, 7))
    np.testing.assert_allclose(b - a, expected, rtol=1e-6)
    # a fresh Rollout around a stepper with other coefficient values: same compiled program
    c = rollout(Counting(jnp.asarray(0.9)), 3)(u0)
    assert len(TRACES) == 1
    assert not np.allclose(a, c)  # and yet the new coefficient is used
    u = np.asarray(u0, dtype=np.float64)
    for _ in range(3):
        u = numpy_counting(0.9, u)
    np.testing.assert_allclose(c[-1], u, rtol=1e-5, atol=1e-6)
    # a new shape traces again, once
    rollout(Counting(jnp.asarray(0.9)), 3)(initial(9, shape=(2, 7)))
    rollout(Counting(jnp.asarray(0.7)), 3)(initial(10, shape=(2, 7)))
    assert TRACES == [(1, 7), (2, 7)]
    # and so does another (static) number of steps
    rollout(Counting(jnp.asarray(0.9)), 4)(u0)
    assert len(TRACES) == 3


class CountingWrapper(eqx.Module):
    """Counts the traces of a reference stepper inside a rollout."""

    inner: Diffusion

    def __call__(self, u):
        TRACES.append(tuple(u.shape))
        return self.inner(u)


def test_reference_stepper_coefficients_do_not_retrace():
    TRACES.clear()
    u0 = initial(11)
    k_field = jnp.asarray(np.linspace(0.1, 0.5, 12)[None], dtype=jnp.float32)
    out = [
        rollout(CountingWrapper(Diffusion(GRID, "periodic", k_field * scale, dt)), 2)(u0)
        for scale, dt in ((1.0, 1e-3), (2.0, 1e-3), (0.5, 2e-3))
    ]
    assert len(TRACES) == 1
    assert not np.allclose(out[0], out[1])
    np.testing.assert_allclose(
        out[2], python_loop(Diffusion(GRID, "periodic", k_field * 0.5, 2e-3), u0, 2), rtol=1e-6
    )


def test_steps_rollouts_and_trajectories_compile_once_per_shape(compiles):
    """One program each for a step, a rollout and a data set; new coefficients and new initial
    states of the same shapes compile nothing."""
    k_field = jnp.asarray(np.linspace(0.1, 0.5, 12)[None], dtype=jnp.float32)
    first, second = (Diffusion(GRID, "periodic", k_field * s, 1e-3) for s in (1.0, 2.0))
    u0, u1 = initial(12, shape=(3, 12)), initial(13, shape=(3, 12))  # shapes no other test uses
    batch, other = jnp.stack([u0, u1]), jnp.stack([u1, u0])
    with compiles() as c:
        jax.block_until_ready(first(u0))
        jax.block_until_ready(rollout(first, 3)(u0))
        jax.block_until_ready(trajectories(first, batch, 3))
    assert c.count == 3
    with compiles() as c:
        step = second(u1)
        again = rollout(second, 3)(u1)
        data = trajectories(second, other, 3)
        jax.block_until_ready((step, again, data))
    assert c.count == 0
    np.testing.assert_allclose(again, python_loop(second, u1, 3), rtol=1e-6)
    np.testing.assert_allclose(data[1, 1:], python_loop(second, u0, 3), rtol=1e-6)


@pytest.mark.parametrize("include_init", [True, False])
def test_trajectories_equal_the_vmapped_rollout(include_init):
    stepper = diffusion()
    u0 = jnp.stack([initial(seed) for seed in range(3)])
    data = trajectories(stepper, u0, 5, include_init=include_init)
    expected = np.stack([python_loop(stepper, u, 5) for u in u0])  # without the initial state
    if include_init:
        expected = np.concatenate([np.asarray(u0)[:, None], expected], axis=1)
    assert data.shape == (3, 5 + include_init, 2, 12)
    np.testing.assert_allclose(np.asarray(data), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((initial()[0], 3), ValueError, "`initial` must be a batch of states"),
        ((initial()[None], 0), ValueError, "`num_steps` must be an int >= 1, got 0."),
        ((initial()[None], 2.5), ValueError, "`num_steps` must be an int >= 1, got 2.5."),
    ],
)
def test_trajectories_errors(args, error, message):
    with pytest.raises(error, match=re.escape(message)):
        trajectories(diffusion(), *args)
    with pytest.raises(TypeError, match="`stepper` must be callable"):
        trajectories(3, initial()[None], 2)
