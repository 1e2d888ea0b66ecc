"""Convolutions rewritten into XLA:CPU's canonical layout: same values, canonical HLO."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import trainax_fd as tfd
from trainax_fd._backend import wants_canonical
from trainax_fd._layout import (
    _canonical_specs,
    call_canonical,
    canonical_convolutions,
    has_convolution,
)

KEY = jax.random.key(0)


def compiled(fn, *args):
    """`(outputs, set of convolution dim_labels)` of `fn` compiled once."""
    exe = jax.jit(fn).lower(*args).compile()
    return exe(*args), set(re.findall(r"dim_labels=([^,\s]+)", exe.as_text()))


def conv_net(ndim: int, key):  # two layers: circular padding; dilation
    k1, k2 = jax.random.split(key)
    return (
        eqx.nn.Conv(ndim, 2, 3, 3, padding=1, padding_mode="CIRCULAR", key=k1),
        eqx.nn.Conv(ndim, 3, 2, 3, stride=1, dilation=2, padding=2, key=k2),
    )


def apply(net, u):
    return net[1](jnp.tanh(net[0](u)))


def test_values_and_gradients_match_inside_scan_cond_and_remat():
    net = conv_net(1, KEY)  # (2D and 3D: `test_strided_and_grouped_convolutions`)
    u = jax.random.normal(jax.random.key(1), (2, 2, 5))
    params, static = eqx.partition(net, eqx.is_array)

    def loss(params, u):
        net = eqx.combine(params, static)
        step = jax.checkpoint(jax.vmap(lambda v: apply(net, v)))

        def body(x, _):
            x = lax.cond(jnp.sum(x) > 1e9, lambda y: y, step, x)
            return x, jnp.mean(x**2)

        _, levels = lax.scan(body, u, None, length=2)
        return jnp.sum(levels)

    def fn(params, u):
        return jax.value_and_grad(loss)(params, u)

    want, before = compiled(fn, params, u)
    got, after = compiled(canonical_convolutions(fn), params, u)
    for a, b in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-5, atol=1e-6)
    # channels-first before (inside loops XLA keeps it); only the canonical layout after
    assert any(label.startswith("bf") for label in before)
    assert after == {"b0f_0io->b0f"}


def test_strided_and_grouped_convolutions():
    lhs = jax.random.normal(KEY, (1, 4, 5, 4))
    rhs = jax.random.normal(jax.random.key(1), (3, 4, 3, 2))
    grouped = jax.random.normal(jax.random.key(2), (2, 2, 3, 2))

    def fn(lhs, rhs, grouped):
        a = lax.conv_general_dilated(lhs, rhs, (2, 1), ((1, 0), (0, 1)), rhs_dilation=(1, 2))
        b = lax.conv_general_dilated(lhs, grouped, (1, 1), "SAME", feature_group_count=2)
        c = lax.conv_general_dilated(
            jnp.moveaxis(lhs, 1, 3), rhs, (1, 1), ((0, 0), (0, 0)), lhs_dilation=(2, 1),
            dimension_numbers=("NHWC", "OIHW", "NCHW"),
        )  # fmt: skip
        return a, b, c

    want = jax.jit(fn)(lhs, rhs, grouped)
    got = jax.jit(canonical_convolutions(fn))(lhs, rhs, grouped)
    volume = canonical_convolutions(lambda x, w: lax.conv(x, w, (1, 2, 1), "SAME"))
    x3, w3 = jnp.ones((1, 2, 3, 3, 3)), jnp.ones((2, 2, 3, 3, 3))  # 3D, at the top level
    np.testing.assert_allclose(volume(x3, w3), lax.conv(x3, w3, (1, 2, 1), "SAME"), rtol=1e-6)
    for a, b in zip(want, got):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5)


def test_call_canonical_passes_non_arrays_through():
    conv = eqx.nn.Conv1d(1, 1, 3, padding=1, key=KEY)
    u = jnp.arange(5.0)[None]

    @eqx.filter_jit
    def run(conv, u):
        return call_canonical(lambda c, u: (c, c(u), "tag"), conv, u)

    returned, value, tag = run(conv, u)
    assert tag == "tag" and returned.kernel_size == (3,)
    np.testing.assert_allclose(np.asarray(value), np.asarray(conv(u)), rtol=1e-6)


class EquinoxNet(eqx.Module):
    """`u + f(u)`, `f` two channels-first `eqx.nn.Conv1d` (Equinox's layout)."""

    layers: tuple

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.layers = (
            eqx.nn.Conv1d(1, 4, 3, padding=1, padding_mode="CIRCULAR", key=k1),
            eqx.nn.Conv1d(4, 1, 3, padding=1, padding_mode="CIRCULAR", key=k2),
        )

    def __call__(self, u):
        return u + self.layers[1](jnp.tanh(self.layers[0](u)))


def loop_labels(net, data, *, train: bool):
    """Convolution dim_labels of a compiled `lax.scan` over `data` of 2-step rollouts: SGD
    steps when `train`, else forward rollouts."""
    params, static = eqx.partition(net, eqx.is_array)

    def rollout(params, u):
        model = jax.vmap(eqx.combine(params, static))
        return model(model(u))

    def step(params, u):
        if not train:
            return params, rollout(params, u)
        grads = jax.grad(lambda p: jnp.mean(rollout(p, u) ** 2))(params)
        return jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads), None

    text = jax.jit(lambda p, d: lax.scan(step, p, d)).lower(params, data).compile().as_text()
    return set(re.findall(r"dim_labels=([^,\s]+)", text))


class ChannelsLastNet(eqx.Module):
    """One convolution written in the fast layout itself (as Flax's `Conv` does)."""

    kernel: jax.Array

    def __call__(self, u):  # u: (channels, points)
        lhs = jnp.pad(u, ((0, 0), (1, 1)), mode="wrap").T[None]  # (1, points + 2, channels)
        dn = _canonical_specs(1)
        return lax.conv_general_dilated(lhs, self.kernel, (1,), "VALID", dimension_numbers=dn)[0].T


def test_probe_sees_backward_convolutions_of_a_fast_layout_forward():
    """A forward convolution in the fast layout needs no rewrite, but its backward
    convolutions (JAX's transposes) are outside it: the probe must report them, or the
    Trainer would skip the rewrite and train several times slower (measured 9x)."""
    net = ChannelsLastNet(jax.random.normal(KEY, (3, 1, 1)))
    data = jax.random.normal(KEY, (2, 2, 1, 8))
    assert loop_labels(net, data, train=False) == {"b0f_0io->b0f"}  # forward: fast layout
    assert loop_labels(net, data, train=True) != {"b0f_0io->b0f"}  # backward: not
    loss = lambda model, u: jnp.sum(model(u) ** 2)  # noqa: E731
    assert wants_canonical(None, loss, net, data[0, 0])
    assert has_convolution(net, data[0, 0])
    assert not wants_canonical(None, loss, lambda u: u * 2.0, data[0, 0])


def test_public_transform_on_a_users_training_loop():
    """`tf.canonical_convolutions` on a scan of optax steps of an Equinox ConvNet, with an
    optimizer and an int passed through: the same parameters and losses, canonical HLO."""
    net = EquinoxNet(KEY)
    data = jax.random.normal(jax.random.key(1), (3, 2, 1, 8))  # (steps, batch, 1, points)
    optimizer = optax.sgd(0.1)

    def train(net, data, optimizer, rollout: int):
        params, static = eqx.partition(net, eqx.is_array)

        def loss(params, u):
            model = jax.vmap(eqx.combine(params, static))
            for _ in range(rollout):
                u = model(u)
            return jnp.mean(u**2)

        def step(carry, u):
            params, state = carry
            value, grads = jax.value_and_grad(loss)(params, u)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), value

        (params, _), losses = lax.scan(step, (params, optimizer.init(params)), data)
        return eqx.combine(params, static), losses

    def hlo_labels(fn):
        lowered = eqx.filter_jit(fn).lower(net, data, optimizer, 2).lowered
        text = lowered.compile().as_text()
        return set(re.findall(r"dim_labels=([^,\s]+)", text))

    want_net, want = eqx.filter_jit(train)(net, data, optimizer, 2)
    got_net, got = eqx.filter_jit(tfd.canonical_convolutions(train))(net, data, optimizer, 2)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(want_net), jax.tree_util.tree_leaves(got_net)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    assert got_net.layers[0].kernel_size == (3,)  # the static parts come back
    assert any(label.startswith("bf") for label in hlo_labels(train))
    assert hlo_labels(tfd.canonical_convolutions(train)) == {"b0f_0io->b0f"}


def test_the_trainers_probe_and_its_switch():
    """`_backend.wants_canonical`: the setting when given, else a convolution in the loss,
    probed on arrays or `jax.ShapeDtypeStruct`s without running it."""
    state = jax.ShapeDtypeStruct((1, 8), jnp.float32)
    loss = lambda model, u: jnp.sum(model(u))  # noqa: E731
    conv = eqx.nn.Conv1d(1, 1, 3, padding=1, key=KEY)
    assert wants_canonical(None, loss, conv, state)
    assert not wants_canonical(None, loss, lambda u: 0.5 * u, state)
    assert not wants_canonical(False, loss, conv, state)  # switched off
    assert wants_canonical(True, loss, lambda u: 0.5 * u, state)  # forced


class Residual(eqx.Module):
    conv: eqx.nn.Conv1d

    def __call__(self, u):
        return u + self.conv(u)


def test_trainer_with_convolutions_matches_a_plain_optax_loop():
    grid = tfd.Grid(16)
    ref = tfd.Advection(grid, "periodic", 1.0, 0.5 / 16)
    x = jnp.asarray(grid.mesh()[0])[None, None]
    u0 = jnp.sin(2 * jnp.pi * (jnp.arange(2.0)[:, None, None] + x))
    data = tfd.trajectories(ref, u0, 3, include_init=True)  # (2, 4, 1, 16)
    net = Residual(eqx.nn.Conv1d(1, 1, 3, padding=1, padding_mode="CIRCULAR", key=KEY))
    optimizer = optax.sgd(0.1)
    trainer = tfd.trainers.Trainer(
        data, tfd.configurations.Supervised(1), optimizer, num_steps=5, batch_size=6
    )
    result = trainer(net, key=KEY, progress=False)

    windows = jnp.concatenate([data[:, t : t + 2] for t in range(3)])  # all 6, full batch
    params, static = eqx.partition(net, eqx.is_array)
    state = optimizer.init(params)

    def loss(p):
        net = eqx.combine(p, static)
        pred = jax.vmap(net)(windows[:, 0])
        return jnp.mean(jnp.mean((pred - windows[:, 1]) ** 2, axis=(1, 2)))

    for _ in range(5):
        grads = jax.grad(loss)(params)
        updates, state = optimizer.update(grads, state)
        params = optax.apply_updates(params, updates)
    for a, b in zip(
        jax.tree_util.tree_leaves(params),
        jax.tree_util.tree_leaves(eqx.filter(result.stepper, eqx.is_array)),
    ):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)


def test_full_loss_with_convolutions_equals_a_plain_loop_under_vmap():
    data = jax.random.normal(KEY, (3, 3, 1, 8))
    conv = eqx.nn.Conv1d(1, 1, 3, padding=1, padding_mode="CIRCULAR", key=KEY)
    nets = eqx.filter_vmap(lambda s: eqx.tree_at(lambda c: c.weight, conv, conv.weight * s))(
        jnp.array([0.5, 1.0])
    )
    trainer = tfd.trainers.Trainer(
        data, tfd.configurations.Supervised(2), optax.sgd(0.1), num_steps=1, batch_size=1
    )
    got = eqx.filter_vmap(lambda n: trainer.full_loss(n, chunk_size=2))(nets)
    for i, scale in enumerate([0.5, 1.0]):
        net = eqx.tree_at(lambda c: c.weight, conv, conv.weight * scale)
        first = jax.vmap(net)(data[:, 0])
        second = jax.vmap(net)(first)
        want = jnp.mean((first - data[:, 1]) ** 2) + jnp.mean((second - data[:, 2]) ** 2)
        np.testing.assert_allclose(float(got[i]), float(want), rtol=1e-5)
