"""Loss landscapes against `Trainer.full_loss` and a hand-written loop; chunking, several
rollouts, filter normalisation, slices, errors, figures."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest
from jax import lax

from trainax_fd import (
    configurations as C,
    data as D,
    landscape as L,
    objectives as O,
    plot,
    trainers as T,
)
from trainax_fd.landscape import _landscape

matplotlib.use("Agg")
import matplotlib.pyplot as plt

OPTIMIZER = optax.adam(1e-2)  # one object: trainers sharing it share compilations


class Lin(eqx.Module):
    """`u_next[i] = w[0] u[i] + w[1] u[i + 1]`, zero beyond the last point."""

    w: jax.Array

    def __call__(self, u):
        right = jnp.pad(u, ((0, 0), (0, 1)))[:, 1:]
        return self.w[0] * u + self.w[1] * right


class Conv(eqx.Module):
    """A 3-tap convolution with Equinox's `Conv1d` layout: weight `(out, in, 3)`, bias
    `(out, 1)`."""

    weight: jax.Array
    bias: jax.Array

    def __call__(self, u):
        return lax.conv_general_dilated(u[None], self.weight, (1,), ((1, 1),))[0] + self.bias


class Net(eqx.Module):
    conv1: Conv
    conv2: Conv

    def __call__(self, u):
        return u + 0.1 * self.conv2(jnp.tanh(self.conv1(u)))


def net(seed: int = 0) -> Net:
    rng = np.random.default_rng(seed)

    def conv(out, inp):
        w = rng.normal(size=(out, inp, 3)) / np.sqrt(3 * inp)
        return Conv(
            jnp.asarray(w, jnp.float32), jnp.asarray(rng.normal(size=(out, 1)), jnp.float32)
        )

    return Net(conv(4, 1), conv(1, 4))


def step(u, w):
    right = np.concatenate([u[..., 1:], np.zeros_like(u[..., :1])], axis=-1)
    return w[0] * u + w[1] * right


@pytest.fixture(scope="module")
def data():
    """(samples=2, time=8, channels=1, 12) float32 trajectories of the stencil (0.6, 0.4)."""
    u = np.random.default_rng(0).normal(size=(2, 1, 12)).astype(np.float32)
    levels = [u]
    for _ in range(7):
        levels.append(step(levels[-1], np.float32([0.6, 0.4])))
    return np.stack(levels, axis=1)


def trainer(data, n, **kwargs):
    return T.Trainer(data, C.Supervised(n), OPTIMIZER, num_steps=1, batch_size=1, **kwargs)


def hand_loss(data, w, n, length=None, step=step):
    """Mean over all windows of `length` (default `n + 1`) levels of the summed MSEs of the
    first `n` steps of `step(u, w)`, in float64."""
    data = np.asarray(data, float)
    length = n + 1 if length is None else length
    losses = []
    for sample in data:
        for start in range(data.shape[1] - length + 1):
            u = sample[start]
            total = 0.0
            for t in range(1, n + 1):
                u = step(u, w)
                total += np.mean((u - sample[start + t]) ** 2)
            losses.append(total)
    return np.mean(losses)


def conv_step(u, layers):
    """`Net` in NumPy: `layers` is `((weight1, bias1), (weight2, bias2))`."""

    def conv(x, weight, bias):
        padded = np.pad(x, ((0, 0), (1, 1)))
        taps = np.stack([padded[:, k : k + x.shape[-1]] for k in range(3)], axis=-1)
        return np.einsum("oik,ixk->ox", weight, taps) + bias

    (w1, b1), (w2, b2) = layers
    return u + 0.1 * conv(np.tanh(conv(u, w1, b1)), w2, b2)


WC = np.linspace(0.3, 0.9, 4)
WR = np.linspace(0.1, 0.7, 5)
BASE = Lin(jnp.array([0.4, 0.5]))


def centre(s):
    return s.w[0]


def right(s):
    return s.w[1]


def plane(wc=WC, wr=WR):
    """The selectors are static: defined once, so equal shapes share one compilation."""
    return L.Parameter(centre, wc, name="w_centre"), L.Parameter(right, wr, name="w_right")


def test_parameter_plane_equals_full_loss_and_a_hand_written_loop(data):
    tr = trainer(data, 2)
    result = L.loss_landscape(tr, BASE, plane())  # default chunks: all 20 points, 12 windows
    loss = np.asarray(result.loss)[0]  # indexed in NumPy: no small programs to compile
    assert result.loss.shape == (1, 4, 5) and result.grid_shape == (4, 5) and result.ndim == 2
    assert result.names == ("w_centre", "w_right") and result.labels == ("rollout 2",)
    np.testing.assert_allclose(result.centre, [0.4, 0.5])
    np.testing.assert_array_equal(result.values[0], WC.astype(np.float32))
    for i, j in [(0, 0), (1, 3), (3, 4), (2, 1)]:
        w = jnp.array([WC[i], WR[j]], jnp.float32)
        np.testing.assert_allclose(loss[i, j], tr.full_loss(Lin(w)), rtol=1e-6)
        np.testing.assert_allclose(loss[i, j], hand_loss(data, w, 2), rtol=1e-5)
    # The minimum of the grid is the grid point nearest to the stencil (0.6, 0.4).
    np.testing.assert_allclose(result.argmin(), [[0.5, 0.4]], rtol=1e-6)


def test_chunked_equals_unchunked_and_one_compilation_per_shape(data, compiles):
    tr = trainer(data, 2)
    whole = L.loss_landscape(tr, BASE, plane(), chunk_size=20, window_chunk_size=12)
    axes = plane()
    with compiles() as c:  # other chunk sizes: one new program, nothing else
        chunked = L.loss_landscape(tr, BASE, axes, chunk_size=7, window_chunk_size=5)
        jax.block_until_ready(chunked.loss)
    assert c.count == 1
    np.testing.assert_allclose(chunked.loss, whole.loss, rtol=1e-6)
    # Same shapes, other coordinates and another base stepper: nothing compiles.
    base, axes = Lin(jnp.array([0.1, 0.2])), plane(WC + 0.05, WR - 0.05)
    with compiles() as c:
        other = L.loss_landscape(tr, base, axes, chunk_size=7, window_chunk_size=5)
        jax.block_until_ready(other.loss)
    assert c.count == 0
    w = jnp.array([WC[2] + 0.05, WR[1] - 0.05], jnp.float32)
    np.testing.assert_allclose(np.asarray(other.loss)[0, 2, 1], hand_loss(data, w, 2), rtol=1e-5)


def test_default_chunks_fit_the_memory_budget(data):
    losses = (trainer(data, 1), trainer(data, 3))
    k, windows = _landscape._chunk_sizes(losses, BASE, 40000, None, None, 2**30)
    assert windows == (14, 10) and k == 40000  # a small problem: all windows, one chunk
    k_small, windows_small = _landscape._chunk_sizes(losses, BASE, 40000, None, None, 2**10)
    assert 1 <= k_small < 40000 and all(1 <= w < n for w, n in zip(windows_small, (14, 10)))
    assert _landscape._chunk_sizes(losses, BASE, 40000, 3, 2, 2**10) == (3, (2, 2))


def test_a_landscape_over_input_target_pairs():
    """Any `FullLoss`, not only windows of trajectories: pairs `u -> target`, chunked."""
    x = np.random.default_rng(3).normal(size=(9, 1, 6)).astype(np.float32)
    right = np.pad(x, ((0, 0), (0, 0), (0, 1)))[..., 1:]  # as `Lin` reads it
    y = 0.6 * x + 0.4 * right
    loss = L.FullLoss(D.Pairs(x, y), O.InputTarget())
    assert loss.num_examples == 9
    line = L.loss_landscape(loss, BASE, L.Parameter(centre, WC), window_chunk_size=4)
    assert line.loss.shape == (1, 4) and line.labels == ("loss 0",)
    for i, wc in enumerate(WC):
        want = np.mean((wc * x + 0.5 * right - y) ** 2)  # BASE's right weight: 0.5
        np.testing.assert_allclose(line.loss[0, i], want, rtol=1e-5)


def test_several_rollouts_in_one_call(data):
    trs = [trainer(data, n) for n in (1, 2, 3)]
    # Each rollout has its own windows of n + 1 levels: 2 * (8 - n) of them.
    assert [t.windows.num_windows for t in trs] == [14, 12, 10]
    # Rollout 1 on the windows of rollout 3 (`window_length=4`): the same windows for both.
    common = L.FullLoss(data, C.Supervised(1), window_length=4)
    assert common.num_examples == 10 == trainer(data, 1, window_length=4).windows.num_windows
    labels = ("1", "2", "1 on 4")
    together = L.loss_landscape(
        [*trs[:2], common], BASE, plane(), labels=labels, chunk_size=6, window_chunk_size=5
    )
    assert together.loss.shape == (3, 4, 5) and together.labels == labels
    loss = np.asarray(together.loss)
    alone = L.loss_landscape(trs[1], BASE, plane())  # compiled by the first test
    assert alone.loss.shape == (1, 4, 5)  # one loss: the same structure, one panel
    np.testing.assert_allclose(loss[1], alone.loss[0], rtol=1e-6)
    for i, j in [(0, 0), (1, 2), (3, 1)]:
        w = jnp.array([WC[i], WR[j]], jnp.float32)
        for k, n in enumerate((1, 2)):
            np.testing.assert_allclose(loss[k, i, j], hand_loss(data, w, n), rtol=1e-5)
        np.testing.assert_allclose(loss[2, i, j], hand_loss(data, w, 1, length=4), rtol=1e-5)
    w = jnp.array([WC[1], WR[2]], jnp.float32)
    np.testing.assert_allclose(loss[1, 1, 2], trs[1].full_loss(Lin(w)), rtol=1e-6)
    # Rollout 1 on the windows of rollout 3 leaves out the last starts: another loss.
    assert not np.allclose(loss[2], loss[0], rtol=1e-3)


def test_full_loss_equals_the_trainers(data):
    w = Lin(jnp.array([0.5, 0.3]))
    loss = L.FullLoss(data, C.Supervised(2))
    assert loss.num_examples == 12 and isinstance(loss.configuration, C.Supervised)
    expected = trainer(data, 2).full_loss(w)
    np.testing.assert_allclose(loss.full_loss(w, chunk_size=5), expected, rtol=1e-6)
    np.testing.assert_allclose(loss(w, chunk_size=5), expected, rtol=1e-6)


def test_slices_and_custom_axes(data):
    trs = [trainer(data, 1), trainer(data, 2)]
    axis = L.Parameter(lambda s: s.w[0], WC)
    result = L.loss_landscape(
        trs, BASE, axis, labels=("one", "two"), chunk_size=3, window_chunk_size=14
    )
    assert result.loss.shape == (2, 4) and result.ndim == 1 and result.labels == ("one", "two")
    assert result.names == ("axis 0",)
    np.testing.assert_allclose(result.centre, [0.4])
    for k, n in enumerate((1, 2)):
        for i in (0, 3):
            w = jnp.array([WC[i], 0.5], jnp.float32)
            np.testing.assert_allclose(
                np.asarray(result.loss)[k, i], hand_loss(data, w, n), rtol=1e-5
            )
    np.testing.assert_allclose(result.argmin(), [[WC[1]], [WC[1]]], rtol=1e-6)

    def set_centre(s, v):
        return eqx.tree_at(lambda s: s.w, s, s.w.at[0].set(v))

    custom = L.loss_landscape(
        trs, BASE, L.Custom(set_centre, WC, name="c", centre=0.4), chunk_size=3,
        window_chunk_size=14,
    )  # fmt: skip
    np.testing.assert_allclose(custom.loss, result.loss, rtol=1e-6)
    np.testing.assert_allclose(custom.centre, [0.4])


def test_filter_normalised_directions():
    stepper = net()
    d = L.random_direction(stepper, key=jax.random.key(1))
    for layer, dlayer in [(stepper.conv1, d.conv1), (stepper.conv2, d.conv2)]:
        w, dw = np.asarray(layer.weight), np.asarray(dlayer.weight)
        assert dw.shape == w.shape
        for i in range(w.shape[0]):  # each output filter
            np.testing.assert_allclose(np.linalg.norm(dw[i]), np.linalg.norm(w[i]), rtol=1e-5)
        assert not np.allclose(dw / np.linalg.norm(dw), w / np.linalg.norm(w))  # random
        np.testing.assert_array_equal(dlayer.bias, np.zeros_like(layer.bias))  # biases not moved
    again = L.random_direction(stepper, key=jax.random.key(1))
    np.testing.assert_array_equal(again.conv1.weight, d.conv1.weight)
    other = L.random_direction(stepper, key=jax.random.key(2))
    assert not np.allclose(other.conv1.weight, d.conv1.weight)
    copied = L.random_direction(stepper, key=jax.random.key(1), vectors="copy")
    np.testing.assert_array_equal(copied.conv2.bias, stepper.conv2.bias)
    np.testing.assert_array_equal(copied.conv2.weight, d.conv2.weight)
    normed = L.random_direction(stepper, key=jax.random.key(1), vectors="normalise")
    np.testing.assert_allclose(
        np.linalg.norm(normed.conv1.bias), np.linalg.norm(stepper.conv1.bias), rtol=1e-5
    )
    np.testing.assert_array_equal(normed.conv1.weight, d.conv1.weight)


def test_direction_plane_around_a_network(data):
    stepper = net()
    tr = trainer(data, 2)
    d1 = L.random_direction(stepper, key=jax.random.key(4))
    d2 = L.random_direction(stepper, key=jax.random.key(5))
    alpha, beta = np.linspace(-1.0, 1.0, 3), np.linspace(-0.5, 0.5, 3)
    axes = (L.Direction(d1, alpha, name="d1"), L.Direction(d2, beta, name="d2"))
    result = L.loss_landscape(tr, stepper, axes, chunk_size=4, window_chunk_size=12)
    assert result.names == ("d1", "d2")
    np.testing.assert_allclose(result.centre, [0.0, 0.0])
    loss = np.asarray(result.loss)[0]

    def layers(a, b):  # the network at (a, b), in NumPy
        return [
            tuple(
                np.asarray(p, float) + a * np.asarray(x, float) + b * np.asarray(y, float)
                for p, x, y in zip((c.weight, c.bias), (dx.weight, dx.bias), (dy.weight, dy.bias))
            )
            for c, dx, dy in zip(
                (stepper.conv1, stepper.conv2), (d1.conv1, d1.conv2), (d2.conv1, d2.conv2)
            )
        ]

    for i, j in [(1, 1), (0, 2), (2, 0)]:
        expected = hand_loss(data, layers(alpha[i], beta[j]), 2, step=conv_step)
        np.testing.assert_allclose(loss[i, j], expected, rtol=1e-5)
    assert loss[0, 2] != loss[1, 1] != loss[2, 0]


def test_errors(data):
    tr = trainer(data, 1)
    wc = L.Parameter(lambda s: s.w[0], WC)

    def raises(error, message, fn, *args, **kwargs):
        with pytest.raises(error, match=re.escape(message)):
            fn(*args, **kwargs)

    # Bad coordinates.
    raises(ValueError, "`values` must be a non-empty 1D array of coordinates (e.g. "
           "`np.linspace(0.3, 0.9, 50)`), got shape (2, 2).", L.Parameter, lambda s: s.w[0],
           np.ones((2, 2)))  # fmt: skip
    raises(ValueError, "got shape (0,).", L.Direction, {}, np.array([]))
    raises(ValueError, "`values` must be strictly increasing, got [0.3 0.2].", L.Parameter,
           lambda s: s.w[0], [0.3, 0.2])  # fmt: skip
    raises(ValueError, "`values` must hold finite real numbers, got [0.1 nan].", L.Parameter,
           lambda s: s.w[0], [0.1, np.nan])  # fmt: skip
    raises(ValueError, "`values` must hold numbers, got dtype <U1", L.Parameter,
           lambda s: s.w[0], ["a", "b"])  # fmt: skip
    raises(TypeError, "`where` must be a callable selecting parameters, like `lambda s: "
           "s.w[0]`, got str.", L.Parameter, "w", WC)  # fmt: skip
    raises(TypeError, "`fn` must be callable as `fn(stepper, value) -> stepper`, got int.",
           L.Custom, 3, WC)  # fmt: skip
    # Unknown or unusable parameters.
    unknown = L.Parameter(lambda s: s.v[0], WC)
    raises(ValueError, "`where` of `Parameter` could not select a parameter of the stepper Lin "
           "(AttributeError:", L.loss_landscape, tr, BASE, unknown)  # fmt: skip
    not_selection = "`where` of `Parameter` must select entries of the stepper's floating-point "
    for where in (
        lambda s: 2.0 * s.w[0],
        lambda s: s.w[0] + s.w[1],
        lambda s: s.w[jnp.array([0, 0])],
    ):
        raises(ValueError, not_selection, L.loss_landscape, tr, BASE, L.Parameter(where, WC))
    raises(TypeError, "`where` of `Parameter` must return an array of the stepper's "
           "floating-point parameters, got float.", L.loss_landscape, tr, BASE,
           L.Parameter(lambda s: 0.5, WC))  # fmt: skip
    raises(ValueError, "`axes` must select different parameters, got two `Parameter` axes "
           "whose `where` select overlapping entries.", L.loss_landscape, tr, BASE,
           (wc, L.Parameter(lambda s: s.w[:1], WR)))  # fmt: skip
    # Wrong shapes.
    bad = L.Custom(lambda s, v: Lin(jnp.full(3, v)), WC)
    raises(ValueError, "`fn` of `Custom` must return a stepper with the structure, shapes and "
           "dtypes of the one it is given, got", L.loss_landscape, tr, BASE, bad)  # fmt: skip
    direction = {"w": jnp.ones(3)}
    raises(ValueError, "`direction` of `Direction` must have the structure, shapes and dtypes "
           "of the stepper's floating-point arrays (see `random_direction`), got",
           L.loss_landscape, tr, BASE, L.Direction(direction, WC))  # fmt: skip
    raises(ValueError, "`axes` must be one axis (a slice) or a pair of axes (a plane), got "
           "tuple of length 3.", L.loss_landscape, tr, BASE, (wc, wc, wc))  # fmt: skip
    raises(TypeError, "`axes` must hold `Parameter`, `Direction` or `Custom` axes, got "
           "function.", L.loss_landscape, tr, BASE, (lambda s: s.w[0],))  # fmt: skip
    # Losses, labels, chunks.
    raises(ValueError, "`losses` must hold at least one loss, got an empty sequence.",
           L.loss_landscape, [], BASE, wc)  # fmt: skip
    raises(TypeError, "`losses` must be a `Trainer` or a `FullLoss` (with `full_loss` and "
           "`num_examples`), or a sequence of them, got Supervised.", L.loss_landscape,
           C.Supervised(1), BASE, wc)  # fmt: skip
    raises(ValueError, "`labels` must be 2 strings, one per loss, got ('a',).",
           L.loss_landscape, [tr, tr], BASE, wc, labels=["a"])  # fmt: skip
    raises(ValueError, "`chunk_size` must be an int >= 1, got 0.", L.loss_landscape, tr, BASE,
           wc, chunk_size=0)  # fmt: skip
    raises(ValueError, "`window_chunk_size` must be an int >= 1, got 2.5.", L.loss_landscape,
           tr, BASE, wc, window_chunk_size=2.5)  # fmt: skip
    # Directions.
    raises(ValueError, "`vectors` must be one of ('zero', 'copy', 'normalise'), got 'one'.",
           L.random_direction, BASE, key=jax.random.key(0), vectors="one")  # fmt: skip
    raises(TypeError, "`key` must be a `jax.random.key` (or a raw `jax.random.PRNGKey`), got "
           "int.", L.random_direction, BASE, key=0)  # fmt: skip
    raises(ValueError, "`vectors` is 'zero' but every array of the stepper is a bias or has "
           "fewer than 2 axes (shapes [(2,)]), so the direction would be zero; pass "
           "`vectors='normalise'` or use `Parameter` axes.", L.random_direction, BASE,
           key=jax.random.key(0))  # fmt: skip


def fake_landscape(losses, shape):
    """A `Landscape` with known values, for the figures (no evaluation)."""
    values = tuple(jnp.asarray(np.linspace(0.0, 1.0, n), jnp.float32) for n in shape)
    grids = np.meshgrid(*[np.asarray(v) for v in values], indexing="ij")
    bowl = sum((g - 0.4) ** 2 for g in grids) + 1e-3
    loss = np.stack([bowl * (k + 1) for k in range(max(losses, 1))])
    return L.Landscape(
        loss=jnp.asarray(loss, jnp.float32),  # (losses, *grid): one structure for any count
        values=values,
        centre=jnp.asarray(np.full(len(shape), 0.4)),
        names=tuple(f"x{i}" for i in range(len(shape))),
        labels=tuple(f"loss {k}" for k in range(max(losses, 1))),
    )


def test_figures():
    single = fake_landscape(0, (5, 6))
    fig = plot.landscape(single, marks={"exact": (0.4, 0.4)})
    assert len(fig.axes) == 2  # the panel and the colour bar
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["centre", "exact"]
    plt.close(fig)

    three = fake_landscape(3, (5, 6))
    fig = plot.landscape_grid(three, marks={"trained": np.full((3, 2), 0.5)})
    assert len(fig.axes) == 4  # three panels (the fourth slot removed) and one colour bar
    assert [ax.get_title() for ax in fig.axes[:3]] == ["loss 0", "loss 1", "loss 2"]
    plt.close(fig)
    fig = plot.landscape(three, index=2, centre=None)
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "loss 2"
    plt.close(fig)

    line = fake_landscape(2, (7,))
    fig = plot.landscape_slice(line)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 3  # two losses and the centre
    assert fig.axes[0].get_yscale() == "log"
    plt.close(fig)

    history = jnp.array([1.0, 0.5, 0.1], jnp.float32)
    key = jnp.asarray(np.zeros(2, np.uint32))
    result = T.TrainResult(BASE, None, (), jnp.asarray(np.int32(3)), key, history, {})
    fig = plot.loss_history(
        {"trained": result, "array": np.array([2.0, 1.0]), "sweep": np.ones((3, 4))}
    )
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.lines) == 5 and ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), history)
    plt.close(fig)
    fig = plot.loss_history([result, history], labels=["a", "b"])
    assert len(fig.axes[0].lines) == 2
    plt.close(fig)


def test_figure_errors():
    def raises(error, message, fn, *args, **kwargs):
        with pytest.raises(error, match=re.escape(message)):
            fn(*args, **kwargs)

    three, line = fake_landscape(3, (5, 6)), fake_landscape(0, (7,))
    raises(ValueError, "`index` must say which of the 3 losses to draw (0 to 2), got None; or "
           "draw them all with `landscape_grid`.", plot.landscape, three)  # fmt: skip
    raises(ValueError, "`index` must be an int in [0, 3) (one per loss), got 3.",
           plot.landscape, three, index=3)  # fmt: skip
    raises(ValueError, "`landscape` must have 2 axes here, got a landscape with 1 (x0); use "
           "`landscape_slice`.", plot.landscape_grid, line)  # fmt: skip
    raises(ValueError, "`landscape` must have 1 axes here, got a landscape with 2 (x0, x1)",
           plot.landscape_slice, three)  # fmt: skip
    raises(TypeError, "`landscape` must be a `Landscape`", plot.landscape, np.ones((3, 3)))
    raises(ValueError, "`marks['trained']` must be one point `(2,)` or one per panel `(3, 2)`, "
           "got shape (2, 2).", plot.landscape_grid, three,
           marks={"trained": np.ones((2, 2))})  # fmt: skip
    raises(ValueError, "`levels` must be an int >= 2 or a 1D array of at least 2 increasing "
           "positive levels, got [1.0, 0.1].", plot.landscape, three, index=0,
           levels=[1.0, 0.1])  # fmt: skip
    raises(ValueError, "`histories[1]` must hold losses of shape (steps,) or (members, steps), "
           "got shape (2, 2, 2).", plot.loss_history, [np.ones(3), np.ones((2, 2, 2))])  # fmt: skip
    raises(ValueError, "`labels` must hold 2 labels, one per history, got 1.",
           plot.loss_history, [np.ones(3), np.ones(3)], labels=["a"])  # fmt: skip
