"""Configurations against hand-written loops (loss and gradient), and their errors."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd import configurations as C
from trainax_fd.losses import MAE, MSE


class Stencil3(eqx.Module):
    """A periodic 3-point linear stepper with a nonlinearity (so chains are not linear)."""

    w: jax.Array

    def __call__(self, u):
        left, right = jnp.roll(u, 1, -1), jnp.roll(u, -1, -1)
        return self.w[0] * left + self.w[1] * u + self.w[2] * right + 0.1 * jnp.tanh(u)


class ConvStencil3(eqx.Module):
    """`Stencil3` written as a convolution: chains of steppers with convolutions are unrolled
    (`configurations._base.unrolls`), so both code paths meet the oracles."""

    w: jax.Array

    def __call__(self, u):
        padded = jnp.pad(u, ((0, 0), (1, 1)), mode="wrap")[None]
        out = jax.lax.conv_general_dilated(padded, self.w[None, None, :], (1,), "VALID")[0]
        return out + 0.1 * jnp.tanh(u)


def reference(u):
    return 0.2 * jnp.roll(u, 1, -1) + 0.7 * u + 0.1 * jnp.roll(u, -1, -1)


def mse(a, b=None):  # batched oracle loss: mean over the batch of per-sample means
    d = a if b is None else a - b
    return jnp.mean(jnp.mean(d**2, axis=tuple(range(1, d.ndim))))


def sg_every(u, k, every, cut):
    return jax.lax.stop_gradient(u) if cut and k % every == 0 else u


def oracle_supervised(stepper, data, n, w, cut, every):
    pred, loss = data[:, 0], 0.0
    for t in range(n):
        pred = jax.vmap(stepper)(pred)
        loss = loss + w[t] * mse(pred, data[:, t + 1])
        pred = sg_every(pred, t + 1, every, cut)
    return loss


def oracle_diverted(stepper, data, n, m, tw, bw, cut, every, cut_div):
    main, loss = data[:, 0], 0.0
    for t in range(n - m + 1):
        branch = main
        target = jax.lax.stop_gradient(main) if cut_div else main
        for b in range(m):
            branch = jax.vmap(stepper)(branch)
            target = jax.vmap(reference)(target)
            loss = loss + tw[t] * bw[b] * mse(branch, target)
            branch = sg_every(branch, t + b + 1, every, cut)
        main = sg_every(jax.vmap(stepper)(main), t + 1, every, cut)
    return loss


def oracle_mix(stepper, data, n, m, w, cut, every):
    pred, loss = data[:, 0], 0.0
    for t in range(n + m):
        pred = jax.vmap(stepper if t < n else reference)(pred)
        loss = loss + w[t] * mse(pred, data[:, t + 1])
        if t < n:
            pred = sg_every(pred, t + 1, every, cut)
    return loss


def oracle_residuum(stepper, data, n, w, cut, every, cut_prev, cut_next):
    prev, loss = data[:, 0], 0.0
    for t in range(n):
        nxt = jax.vmap(stepper)(prev)
        a = jax.lax.stop_gradient(nxt) if cut_next else nxt
        b = jax.lax.stop_gradient(prev) if cut_prev else prev
        r = a - jax.vmap(reference)(b)
        loss = loss + w[t] * jnp.mean(jnp.mean(jnp.abs(r), axis=(1, 2)))
        prev = sg_every(nxt, t + 1, every, cut)
    return loss


@pytest.fixture(scope="module")
def data():
    """(samples=5, time=7, channels=1, 12) float64: scaled reference trajectories (NumPy)."""
    u = np.random.default_rng(0).normal(size=(5, 1, 12))
    levels = [u]
    for _ in range(6):
        u = 0.2 * np.roll(u, 1, -1) + 0.7 * u + 0.1 * np.roll(u, -1, -1)
        levels.append(u)
    return np.stack(levels, axis=1) * 1.1  # not the reference's own trajectories


def batch_loss(config, stepper, batch):
    return jnp.mean(jax.vmap(config, in_axes=(None, 0))(stepper, batch))


CASES = [
    (
        "supervised",
        lambda: C.Supervised(4, time_level_weights=[1.0, 0.5, 2.0, 0.3], remat=True),
        lambda s, d: oracle_supervised(s, d, 4, [1.0, 0.5, 2.0, 0.3], False, 1),
    ),
    (
        "supervised-cut",
        lambda: C.Supervised(5, cut_bptt=True, cut_bptt_every=2),
        lambda s, d: oracle_supervised(s, d, 5, [1.0] * 5, True, 2),
    ),
    (
        "diverted-branch-one",
        lambda: C.DivertedChain(reference, 4, 1, cut_div_chain=True),
        lambda s, d: oracle_diverted(s, d, 4, 1, [1.0] * 4, [1.0], False, 1, True),
    ),
    (
        "diverted-general",
        lambda: C.DivertedChain(
            reference,
            5,
            3,
            cut_bptt=True,
            cut_bptt_every=2,
            time_level_weights=[1.0, 0.5, 0.25],
            branch_level_weights=[2.0, 1.0, 0.5],
        ),
        lambda s, d: oracle_diverted(s, d, 5, 3, [1.0, 0.5, 0.25], [2.0, 1.0, 0.5], True, 2, False),
    ),
    (
        "mix-chain",
        lambda: C.MixChain(
            reference, 2, 3, cut_bptt=True, time_level_weights=[1.0, 2.0, 3.0, 4.0, 5.0]
        ),
        lambda s, d: oracle_mix(s, d, 2, 3, [1.0, 2.0, 3.0, 4.0, 5.0], True, 1),
    ),
    (
        "residuum",
        lambda: C.Residuum(C.StepperResiduum(reference), 3, time_level_loss=MAE(), cut_prev=True),
        lambda s, d: oracle_residuum(s, d, 3, [1.0] * 3, False, 1, True, False),
    ),
    (
        "residuum-cut",
        lambda: C.Residuum(
            C.StepperResiduum(reference),
            4,
            time_level_loss=MAE(),
            cut_bptt=True,
            cut_bptt_every=3,
            cut_next=True,
        ),
        lambda s, d: oracle_residuum(s, d, 4, [1.0] * 4, True, 3, False, True),
    ),
]


CASES.append(
    (
        "composite",
        lambda: C.Composite([C.Supervised(2), C.DivertedChain(reference, 3, 2)], [0.7, 0.3]),
        lambda s, d: (
            0.7 * oracle_supervised(s, d, 2, [1.0] * 2, False, 1)
            + 0.3 * oracle_diverted(s, d, 3, 2, [1.0] * 2, [1.0] * 2, False, 1, False)
        ),
    )
)


@pytest.mark.parametrize("stepper_type", [Stencil3, ConvStencil3])
@pytest.mark.parametrize("name, make, oracle", CASES, ids=[c[0] for c in CASES])
def test_configuration_matches_hand_written_loop(x64, data, name, make, oracle, stepper_type):
    config = make()
    stepper = stepper_type(jnp.array([0.3, 0.5, 0.25]))
    batch = jnp.asarray(data[:, : config.window_length])

    @jax.jit
    def both(stepper):
        ours = eqx.filter_value_and_grad(lambda s: batch_loss(config, s, batch))(stepper)
        theirs = eqx.filter_value_and_grad(lambda s: oracle(s, jnp.asarray(data)))(stepper)
        return ours, theirs

    (loss, grad), (loss_o, grad_o) = both(stepper)
    np.testing.assert_allclose(loss, loss_o, rtol=1e-12)
    np.testing.assert_allclose(grad.w, grad_o.w, rtol=1e-10, atol=1e-14)
    assert float(jnp.linalg.norm(grad.w)) > 1e-6  # the gradient is not trivially zero


def test_short_chains_of_convolutional_steppers_are_unrolled():
    window = jnp.ones((10, 1, 12))
    w = jnp.array([0.3, 0.5, 0.25])

    def loops(config, stepper):  # scans that stay loops: not fully unrolled
        jaxpr = jax.make_jaxpr(lambda s: config(s, window))(stepper).jaxpr
        scans = [e for e in jaxpr.eqns if e.primitive.name == "scan"]
        return sum(e.params["unroll"] < e.params["length"] for e in scans)

    assert loops(C.Supervised(4), Stencil3(w)) == 1  # a loop: compiles once for any length
    assert loops(C.Supervised(4), ConvStencil3(w)) == 0  # unrolled
    assert loops(C.Supervised(6), ConvStencil3(w)) == 0
    long = C.Supervised(9)  # beyond UNROLL_UP_TO: a loop again
    assert loops(long, ConvStencil3(w)) == 1
    assert loops(C.Residuum(C.StepperResiduum(reference), 3), ConvStencil3(w)) == 0


def remats(config, window) -> bool:
    jaxpr = jax.make_jaxpr(lambda s: config(s, window))(Stencil3(jnp.array([0.3, 0.5, 0.25])))
    return "remat" in str(jaxpr)  # `jax.checkpoint`'s primitive, inside the scan's body


def test_remat_auto_rematerialises_chains_longer_than_eight_steps():
    window = jnp.ones((12, 1, 12))
    assert remats(C.Supervised(9), window)
    assert not remats(C.Supervised(8), window)
    assert not remats(C.Supervised(9, remat=False), window)
    assert remats(C.Supervised(2, remat=True), window)
    assert remats(C.Residuum(C.StepperResiduum(reference), 10), window)
    assert remats(C.DivertedChain(reference, 10, 1), window)  # 10 branches: the main chain
    assert not remats(C.DivertedChain(reference, 10, 3), window)  # 8 branches
    assert remats(C.MixChain(reference, 9, 1), window)
    with pytest.raises(ValueError, match=re.escape("`remat` must be True, False or 'auto', got 1")):
        C.Supervised(2, remat=1)


@pytest.mark.parametrize(
    "make, oracle",
    [
        (lambda: C.Supervised(10), lambda s, d: oracle_supervised(s, d, 10, [1.0] * 10, False, 1)),
        (
            lambda: C.Supervised(10, cut_bptt=True, cut_bptt_every=3),
            lambda s, d: oracle_supervised(s, d, 10, [1.0] * 10, True, 3),
        ),
        (
            lambda: C.DivertedChain(reference, 10, 1),
            lambda s, d: oracle_diverted(s, d, 10, 1, [1.0] * 10, [1.0], False, 1, False),
        ),
        (
            lambda: C.Residuum(C.StepperResiduum(reference), 10, time_level_loss=MAE()),
            lambda s, d: oracle_residuum(s, d, 10, [1.0] * 10, False, 1, False, False),
        ),
    ],
    ids=["supervised", "supervised-cut", "diverted", "residuum"],
)
def test_rematerialised_long_chains_match_hand_written_loop(x64, make, oracle):
    u = np.random.default_rng(1).normal(size=(3, 1, 12))
    levels = [u]
    for _ in range(10):
        levels.append(np.asarray(reference(levels[-1])) * 1.05)
    data = jnp.asarray(np.stack(levels, axis=1))
    config, stepper = make(), Stencil3(jnp.array([0.3, 0.5, 0.25]))
    assert remats(config, data[0])
    batch = data[:, : config.window_length]
    loss, grad = eqx.filter_value_and_grad(lambda s: batch_loss(config, s, batch))(stepper)
    loss_o, grad_o = eqx.filter_value_and_grad(lambda s: oracle(s, data))(stepper)
    np.testing.assert_allclose(loss, loss_o, rtol=1e-12)
    np.testing.assert_allclose(grad.w, grad_o.w, rtol=1e-10, atol=1e-14)


def test_pytree_states_and_losses_sum_over_leaves(x64):
    def stepper(state):
        u, k = state
        return (u * k, k)

    levels = jnp.array([1.0, 2.0, 4.0])[:, None, None]
    window = (jnp.ones((3, 1, 4)) * levels, jnp.full((3, 1, 1), 2.0))
    loss = C.Supervised(2)(stepper, window)
    assert float(loss) == 0.0  # u doubles each step, k is constant
    off = C.Supervised(2)(lambda s: (s[0] * 3.0, s[1]), window)
    assert float(off) == pytest.approx(1.0 + 25.0)  # (3 - 2)^2 + (9 - 4)^2; k adds 0


def test_errors(data):
    window = jnp.asarray(data[0], dtype=jnp.float32)
    stepper = Stencil3(jnp.array([0.3, 0.5, 0.25]))
    with pytest.raises(ValueError, match=re.escape("`DivertedChain` needs a reference stepper")):
        C.DivertedChain(None, 2)
    with pytest.raises(ValueError, match=re.escape("`MixChain` needs a reference stepper")):
        C.MixChain(None, 2)
    with pytest.raises(ValueError, match=re.escape("`Residuum` needs a residuum function")):
        C.Residuum(None, 2)
    with pytest.raises(ValueError, match=re.escape("`num_branch_steps` must be at most")):
        C.DivertedChain(reference, 2, 3)
    with pytest.raises(ValueError, match=re.escape("`time_level_weights` must have shape (3,)")):
        C.Supervised(3, time_level_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match=re.escape("`num_rollout_steps` must be an int >= 1")):
        C.Supervised(0)
    with pytest.raises(TypeError, match=re.escape("`time_level_loss` must be callable")):
        C.Supervised(1, time_level_loss="mse")
    with pytest.raises(ValueError, match=re.escape("must hold at least 8 time levels")):
        C.Supervised(7)(stepper, window)
    with pytest.raises(ValueError, match=re.escape("`stepper` must map one state to a state")):
        C.Supervised(2)(lambda u: u[:, :-1], window)
    with pytest.raises(ValueError, match=re.escape("`ref_stepper` must map one state")):
        C.DivertedChain(lambda u: u[0], 2)(stepper, window)
    with pytest.raises(ValueError, match=re.escape("`weights` must have shape (2,)")):
        C.Composite([C.Supervised(1), C.Supervised(2)], [1.0])
    composite = C.Composite([C.Supervised(2), C.DivertedChain(reference, 3, 2)], [0.7, 0.3])
    assert composite.window_length == 3 and not composite.ic_only
    assert C.Composite([C.DivertedChain(reference, 3, 2)], [1.0]).ic_only
    with pytest.raises(TypeError, match=re.escape("`configurations` must hold")):
        C.Composite([MSE()], [1.0])
