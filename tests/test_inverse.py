"""Heat inversion (trainax_fd.inverse, arch.SIPUNet, the reproduction): the damped inverse on
single Fourier modes, the sources' statistics, the forward diffusion against a direct DFT, the
SIP and physics losses and gradients against hand-written ones, the U-Net, one training, and
the notebook and command line at tiny sizes."""

import pathlib
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import trainax_fd as tf
from trainax_fd import inverse as I, trainers as T
from trainax_fd.arch import SIPUNet
from trainax_fd.inverse._sources import _boxes, _rasterise

AMOUNT = 8.0


def heat(size: int) -> tf.FourierHeat:
    return tf.FourierHeat(tf.Grid((size, size), extent=float(size), placement="periodic"),
                          AMOUNT, 1.0)  # fmt: skip


def mode(size: int, kx: int, ky: int, amplitude: float) -> np.ndarray:
    """`amplitude cos(2 pi (kx i + ky j) / size)` as one sample `(1, size, size)`."""
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return (amplitude * np.cos(2 * np.pi * (kx * i + ky * j) / size))[None]


def log_kernel_of(size: int, kx: int, ky: int) -> float:
    return 4 * np.pi**2 * ((kx / size) ** 2 + (ky / size) ** 2) * AMOUNT


# -- the damped inverse ------------------------------------------------------------------


def test_a_clear_signal_mode_is_inverted_exactly(x64):
    size = 16
    physics = heat(size)
    x = mode(size, 1, 0, 0.01)  # amplitude N^2/2 * 0.01 * e^-1.23, well below N e^-1.23
    y = physics(jnp.asarray(x))
    np.testing.assert_allclose(y, x * np.exp(-log_kernel_of(size, 1, 0)), rtol=1e-12, atol=1e-17)
    back = I.inverse_diffusion(y, physics.grid, AMOUNT, uncertainty=1e-6 * jnp.abs(y))
    np.testing.assert_allclose(back, x, rtol=1e-10, atol=1e-15)


def test_a_mode_drowned_in_noise_is_damped_once_more(x64):
    size = 16
    physics = heat(size)
    # amplitude 128 * 0.1 against an expected signal of 16 e^-4.93: p = 0, action -1
    y = jnp.asarray(mode(size, 2, 0, 0.1))
    out = I.inverse_diffusion(y, physics.grid, AMOUNT, uncertainty=jnp.abs(y))
    np.testing.assert_allclose(out, physics(y), rtol=1e-10, atol=1e-16)
    # a high mode is damped below round-off instead of amplified by e^39.5
    y = jnp.asarray(mode(size, 4, 4, 1e-3))
    out = I.inverse_diffusion(y, physics.grid, AMOUNT, uncertainty=jnp.abs(y))
    assert float(jnp.abs(out).max()) < 1e-15


def hand_kernel(a, log_kernel, noise, scale, prior=0.5, band=(0.5, 0.68)):
    """The original's `apply_damping`, in NumPy; `None` for `p` where a likelihood is
    subnormal (XLA:CPU flushes those to zero, NumPy keeps them)."""
    with np.errstate(all="ignore"):
        expected = scale * np.exp(-log_kernel)
        signal = np.exp(-0.5 * (np.abs(a) / expected) ** 2) * prior
        signal = np.where(np.isfinite(signal), signal, 0.0)
        noise_l = np.exp(-0.5 * (np.abs(a) / noise) ** 2) * (1 - prior)
        total = signal + noise_l
        p = np.where(total > 0, signal / np.where(total > 0, total, 1.0), 0.0)
    action = np.where((p <= band[0]) | (p >= band[1]), 2 * (p - 0.5), 0.0)
    tiny = np.finfo(np.float64).tiny
    normal = ~(((signal > 0) & (signal < tiny)) | ((noise_l > 0) & (noise_l < tiny)))
    return np.exp(log_kernel * action), np.where(normal, p, np.nan)


def test_the_kernel_and_probability_match_the_formula_band_included(x64):
    a = np.geomspace(1e-4, 1e2, 200)
    for log_kernel, noise in ((0.0, 0.5), (3.0, 1e-3), (40.0, 1.0), (150.0, 1e-9)):
        kernel, p = I.damped_inverse_kernel(jnp.asarray(a), log_kernel, noise, signal_scale=1.0)
        expected_kernel, expected_p = hand_kernel(a, log_kernel, noise, 1.0)
        normal = np.isfinite(expected_p)
        assert normal.mean() > 0.95
        np.testing.assert_allclose(np.asarray(p)[normal], expected_p[normal], rtol=1e-12)
        np.testing.assert_allclose(np.asarray(kernel)[normal], expected_kernel[normal], rtol=1e-10)
    # inside the band nothing happens: p ~ 0.53 here
    kernel, p = I.damped_inverse_kernel(jnp.asarray(0.3), 2.0, 0.5, signal_scale=float(np.e**2))
    assert 0.5 < float(p) < 0.68 and float(kernel) == 1.0
    # both likelihoods vanish: p = 0 (no NaN), the mode is damped
    kernel, p = I.damped_inverse_kernel(jnp.asarray(1e3), 50.0, 1e-6, signal_scale=1.0)
    assert float(p) == 0.0 and float(kernel) == pytest.approx(np.exp(-50.0))


def test_log_inverse_kernel_is_clamped_to_the_largest_finite_exponent(x64):
    grid = tf.Grid((8, 8), extent=8.0, placement="periodic")
    log_kernel = I.log_inverse_kernel(grid, 1e4, jnp.float32)
    assert log_kernel.shape == (8, 5) and log_kernel.dtype == jnp.float32
    assert float(log_kernel.max()) == pytest.approx(np.log(np.finfo(np.float32).max))
    assert np.all(np.isfinite(np.exp(np.asarray(log_kernel, np.float64))))


def test_inverse_errors():
    grid = tf.Grid((8, 8), extent=8.0, placement="periodic")
    y = jnp.zeros((1, 8, 8))
    with pytest.raises(ValueError, match=re.escape("`band` must satisfy 0 <= low <= high <= 1")):
        I.damped_inverse_kernel(y, 0.0, 1.0, signal_scale=1.0, band=(0.7, 0.6))
    with pytest.raises(ValueError, match=re.escape("`signal_prior` must be a number in (0, 1)")):
        I.damped_inverse_kernel(y, 0.0, 1.0, signal_scale=1.0, signal_prior=1.0)
    with pytest.raises(ValueError, match=re.escape("`signal_scale` must be a positive number")):
        I.inverse_diffusion(y, grid, 1.0, uncertainty=1.0, signal_scale=-1.0)
    with pytest.raises(TypeError, match=re.escape("`grid` must be a `Grid`, got tuple")):
        I.inverse_diffusion(y, (8, 8), 1.0, uncertainty=1.0)
    vertex = tf.Grid((8, 8), placement="vertex")
    with pytest.raises(ValueError, match=re.escape("`grid` must be periodic")):
        I.inverse_diffusion(y, vertex, 1.0, uncertainty=1.0)


# -- forward physics and sources -----------------------------------------------------------


def test_forward_diffusion_equals_a_direct_fourier_sum(x64):
    size = 32
    physics = heat(size)
    x = np.random.default_rng(0).uniform(size=(1, size, size))
    f = np.exp(-2j * np.pi * np.outer(np.arange(size), np.arange(size)) / size)  # DFT matrix
    k = np.fft.fftfreq(size)  # cycles per cell
    kernel = np.exp(-4 * np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) * AMOUNT)
    direct = (f.conj() @ ((f @ x[0] @ f.T) * kernel) @ f.conj().T).real / size**2
    np.testing.assert_allclose(physics(jnp.asarray(x))[0], direct, rtol=1e-10, atol=1e-13)


def test_sources_have_the_original_statistics(x64):
    grid = tf.Grid((64, 64), extent=64.0, placement="periodic")
    keys = jax.random.split(jax.random.key(0), 400)
    draw = jax.jit(jax.vmap(lambda k: _boxes(grid, k, 10, 4, 0.8, 10.0, jnp.float64)))
    low, high, strength = (np.asarray(a) for a in draw(keys))
    counts = (strength > 0).sum(axis=1)
    assert set(np.unique(counts)) == set(range(4, 11))  # 4 + floor(7 U)
    assert np.all((counts >= 4) & (counts <= 10))
    active = strength > 0
    assert np.all(strength[:, :4] > 0) and np.all(strength < 1)
    assert np.all(np.diff(active.astype(int), axis=1) <= 0)  # the first `count` boxes
    half = (high - low) / 2
    assert half.max() < 10 and half.min() >= 0 and half.max() > 9.5
    assert np.all(low >= -1e-12) and np.all(high <= 64 + 1e-12)  # moved inside the domain
    centre = (high + low) / 2
    big = half.max(axis=2) < 6.4  # these are never clipped: centres in the central 80 %
    assert centre[big].min() >= 6.4 - 1e-9 and centre[big].max() <= 57.6 + 1e-9
    # coverage sums: the heat of a source is sum strength * area
    images = np.asarray(jax.jit(jax.vmap(lambda a, b, s: _rasterise(grid, a, b, s)))(
        *draw(keys)))  # fmt: skip
    assert images.shape == (400, 1, 64, 64) and images.min() >= 0
    area = np.prod(2 * half, axis=2)
    np.testing.assert_allclose(images.sum(axis=(1, 2, 3)), (strength * area).sum(1), rtol=1e-10)


def test_half_sizes_are_in_cells_and_boxes_stay_inside(x64):
    """On a unit square of 64² cells the boxes are as many cells wide as on unit cells; on
    16 cells a half-size of up to 10 cells is capped at half the extent."""
    keys = jax.random.split(jax.random.key(1), 200)
    for extent, n, bound in ((1.0, 64, 10 / 64), (16.0, 16, 8.0)):
        grid = tf.Grid((n, n), extent=extent, placement="periodic")
        draw = jax.jit(jax.vmap(lambda k, g=grid: _boxes(g, k, 10, 4, 0.8, 10.0, jnp.float64)))
        low, high, _ = (np.asarray(a) for a in draw(keys))
        half = (high - low) / 2
        assert half.max() <= bound + 1e-12 and half.max() > 0.9 * bound
        assert low.min() >= -1e-12 and high.max() <= extent + 1e-12


def test_one_box_covers_fractions_of_cells(x64):
    grid = tf.Grid((8, 8), extent=8.0, placement="periodic")
    low, high = jnp.array([[1.25, 2.0]]), jnp.array([[3.5, 2.5]])
    image = np.asarray(_rasterise(grid, low, high, jnp.array([2.0])))[0]
    expected = np.zeros((8, 8))
    expected[1, 2], expected[2, 2], expected[3, 2] = 0.75 * 0.5, 0.5, 0.5 * 0.5
    np.testing.assert_allclose(image, 2.0 * expected)


def test_the_sampler_draws_observations_of_its_sources(x64):
    physics = heat(16)
    sampler = I.heat_inversion_sampler(physics, batch_size=6)
    y, x = sampler.draw(jax.random.key(3))
    assert y.shape == x.shape == (6, 1, 16, 16) and y.dtype == x.dtype == jnp.float64
    np.testing.assert_allclose(y, jax.vmap(physics)(x), rtol=1e-12)
    one = I.random_heat_sources(physics.grid, key=jax.random.key(1))
    assert one.shape == (1, 16, 16) and one.dtype == jnp.float32


def test_source_errors():
    grid = tf.Grid((16, 16), extent=16.0, placement="periodic")
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=re.escape("`min_active` must not exceed `candidates`")):
        I.random_heat_sources(grid, key=key, candidates=3, min_active=4)
    with pytest.raises(ValueError, match=re.escape("`max_half_size` must be a positive number")):
        I.random_heat_sources(grid, key=key, max_half_size=0.0)
    with pytest.raises(ValueError, match=re.escape("`centre_fraction` must be a number in")):
        I.random_heat_sources(grid, key=key, centre_fraction=1.5)
    with pytest.raises(TypeError, match=re.escape("`dtype` must be a floating dtype, got int32")):
        I.random_heat_sources(grid, key=key, dtype=jnp.int32)
    with pytest.raises(ValueError, match=re.escape("`dtype` float64 needs JAX's 64-bit mode")):
        I.heat_inversion_sampler(heat(16))
    with pytest.raises(TypeError, match=re.escape("`physics` must be a `FourierHeat`, got Grid")):
        I.heat_inversion_sampler(grid)
    with pytest.raises(ValueError, match=re.escape("`grid` must have cells")):
        I.random_heat_sources(tf.Grid((8, 8), placement="vertex"), key=key)


# -- losses against hand-written ones ------------------------------------------------------


class Scale(eqx.Module):
    """`w * y`: a network of one weight (float32)."""

    w: jax.Array

    def __call__(self, y):
        return self.w * y


def hand_sip(w, y, x):
    """The original's SIP step in NumPy float64 (full complex FFTs): the loss and dL/dw."""
    y32 = y.astype(np.float32).astype(np.float64)
    pred = w * y32
    pred = pred + x.mean(axis=(2, 3), keepdims=True) - pred.mean(axis=(2, 3), keepdims=True)
    n = y.shape[-1]
    k = np.fft.fftfreq(n)
    log_kernel = 4 * np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) * AMOUNT
    diffused = np.fft.ifft2(np.fft.fft2(pred) * np.exp(-log_kernel)).real
    misfit = y - diffused
    amp = np.fft.fft2(misfit)
    noise = np.sqrt(((1e-6 * np.abs(misfit)) ** 2).sum(axis=(2, 3), keepdims=True))
    kernel, _ = hand_kernel(amp, log_kernel, noise, float(n))
    dx = np.fft.ifft2(amp * kernel).real
    loss = 0.5 * np.sum(dx**2)  # (pred - (pred + dx))^2
    centred = y32 - y32.mean(axis=(2, 3), keepdims=True)  # d pred / d w
    return loss, np.sum(-dx * centred), diffused


def test_sip_loss_and_gradient_match_a_hand_written_step(x64):
    physics = heat(16)
    y, x = I.heat_inversion_sampler(physics, batch_size=4).draw(jax.random.key(0))
    model = Scale(jnp.asarray(0.8, jnp.float32))
    loss, grad = eqx.filter_value_and_grad(I.SIPLoss(physics))(model, (y, x))
    expected_loss, expected_grad, _ = hand_sip(0.8, np.asarray(y), np.asarray(x))
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    np.testing.assert_allclose(grad.w, expected_grad, rtol=1e-5)
    assert loss.dtype == jnp.float64 and grad.w.dtype == jnp.float32
    # the physics loss: 1/2 sum (D pred - y)^2, its gradient D(D pred - y) . d pred / d w
    loss, grad = eqx.filter_value_and_grad(I.PhysicsLoss(physics))(model, (y, x))
    _, _, diffused = hand_sip(0.8, np.asarray(y), np.asarray(x))
    residual = diffused - np.asarray(y)
    np.testing.assert_allclose(loss, 0.5 * np.sum(residual**2), rtol=1e-6)  # float32 network
    y32 = np.asarray(y).astype(np.float32).astype(np.float64)
    back = np.asarray(jax.vmap(physics)(jnp.asarray(residual)))  # D is symmetric
    expected = np.sum(back * (y32 - y32.mean(axis=(2, 3), keepdims=True)))
    np.testing.assert_allclose(grad.w, expected, rtol=1e-5)
    errors = I.inversion_errors(model, (y, x), physics)
    pred = I.reconstruct(model, (y, x))
    np.testing.assert_allclose(errors["x_l2"], 0.5 * np.mean(np.sum((x - pred) ** 2, (1, 2, 3))))
    np.testing.assert_allclose(errors["y_l2"], 0.5 * np.mean(np.sum(residual**2, (1, 2, 3))))
    np.testing.assert_allclose(pred.mean(axis=(2, 3)), x.mean(axis=(2, 3)), rtol=1e-12)


def test_objective_errors(x64):
    physics = heat(16)
    with pytest.raises(TypeError, match=re.escape("`physics` must be a `FourierHeat`, got str")):
        I.SIPLoss("heat")
    with pytest.raises(ValueError, match=re.escape("`relative_uncertainty` must be a positive")):
        I.SIPLoss(physics, relative_uncertainty=0.0)
    with pytest.raises(ValueError, match=re.escape("`signal_scale` must be None or a positive")):
        I.SIPLoss(physics, signal_scale=0.0)
    with pytest.raises(TypeError, match=re.escape("`reduction` must be callable, got int")):
        I.PhysicsLoss(physics, reduction=3)
    with pytest.raises(ValueError, match=re.escape("`name` must be a non-empty string")):
        I.InversionErrors(physics, name="")
    y = jnp.zeros((2, 1, 16, 16))
    with pytest.raises(ValueError, match=re.escape("must be (observations, sources) of one")):
        I.reconstruct(Scale(jnp.asarray(1.0, jnp.float32)), (y, y[:, :, :8]))
    with pytest.raises(ValueError, match=re.escape("trains models without `eqx.nn.State`")):
        I.SIPLoss(physics).terms(Scale(jnp.asarray(1.0)), (y, y), state=object())


# -- the U-Net -----------------------------------------------------------------------------


def test_sip_unet_has_the_original_parameter_count_and_layers():
    net = SIPUNet(2, 1, 1, key=jax.random.key(0))
    assert net.num_parameters == 37_697  # PhiFlow's u_net(1, 1)
    assert net.batch_norm and net.receptive_field == (116, 116)
    x = jax.random.normal(jax.random.key(1), (3, 1, 16, 16))
    out = eqx.filter_jit(jax.vmap(net, axis_name="batch"))(x)  # eagerly: one program per op
    assert out.shape == (3, 1, 16, 16) and out.dtype == jnp.float32
    assert SIPUNet(1, 2, 3, levels=2, filters=(4, 8), key=jax.random.key(0)).num_parameters == (
        (2 * 3 * 4 + 4 + 8 + 4 * 3 * 4 + 4 + 8)  # inc
        + (4 * 3 * 8 + 8 + 16 + 8 * 3 * 8 + 8 + 16)  # down
        + (12 * 3 * 6 + 6 + 12 + 6 * 3 * 4 + 4 + 8)  # up: 12 in, 6 mid
        + (4 * 3 + 3)  # 1x1 projection
    )


def test_sip_unet_layers_match_hand_written_ones():
    from trainax_fd.arch._sip_unet import _max_pool, _Norm, _upsample

    x = jax.random.normal(jax.random.key(0), (2, 8, 8))
    up = _upsample(x, "zeros")  # bilinear, half-pixel centres, edges clamped (PyTorch's)
    np.testing.assert_allclose(up, jax.image.resize(x, (2, 16, 16), "bilinear"), atol=1e-6)
    np.testing.assert_allclose(_max_pool(x), x.reshape(2, 4, 2, 4, 2).max(axis=(2, 4)))
    batch = jax.random.normal(jax.random.key(1), (5, 2, 8, 8)) * 3.0 + 1.0
    norm = _Norm(jnp.array([2.0, 0.5]), jnp.array([0.1, -0.2]))
    out = jax.vmap(lambda b: norm(b, "batch", 1e-5), axis_name="batch")(batch)
    mean = batch.mean(axis=(0, 2, 3), keepdims=True)
    var = batch.var(axis=(0, 2, 3), keepdims=True)
    expected = (batch - mean) / jnp.sqrt(var + 1e-5) * jnp.array([2.0, 0.5])[None, :, None, None]
    np.testing.assert_allclose(out, expected + jnp.array([0.1, -0.2])[None, :, None, None],
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def test_periodic_sip_unet_commutes_with_shifts():
    net = SIPUNet(2, 1, 1, padding="periodic", batch_norm=False, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (1, 32, 32))
    call = eqx.filter_jit(lambda n, u: n(u))  # one sample: no batch statistics
    shifted = call(net, jnp.roll(x, 8, axis=1))
    np.testing.assert_allclose(shifted, jnp.roll(call(net, x), 8, axis=1), atol=1e-5)
    zeros = SIPUNet(2, 1, 1, batch_norm=False, key=jax.random.key(0))
    moved = call(zeros, jnp.roll(x, 8, axis=1))
    assert not np.allclose(moved, jnp.roll(call(zeros, x), 8, axis=1), atol=1e-3)


def test_sip_unet_errors():
    key = jax.random.key(0)
    with pytest.raises(
        ValueError, match=re.escape("`filters` must be an int >= 1 or 4 (`levels`)")
    ):
        SIPUNet(2, 1, 1, filters=(16, 16), key=key)
    with pytest.raises(ValueError, match=re.escape("`padding` must be 'zeros' or 'periodic'")):
        SIPUNet(2, 1, 1, padding="reflect", key=key)
    with pytest.raises(ValueError, match=re.escape("`kernel_size` must be odd")):
        SIPUNet(2, 1, 1, kernel_size=4, key=key)
    with pytest.raises(TypeError, match=re.escape("`batch_norm` must be a bool, got str")):
        SIPUNet(2, 1, 1, batch_norm="yes", key=key)
    with pytest.raises(ValueError, match=re.escape("`eps` must be a positive number")):
        SIPUNet(2, 1, 1, eps=0.0, key=key)
    net = SIPUNet(2, 1, 1, batch_norm=False, key=key)
    with pytest.raises(ValueError, match=re.escape("needs spatial sizes divisible by")):
        net(jnp.zeros((1, 12, 12)))


# -- training, notebook, command line --------------------------------------------------------


def test_a_short_sip_training_lowers_the_source_error(x64):
    physics = heat(16)
    sampler = I.heat_inversion_sampler(physics, batch_size=16)
    net = SIPUNet(2, 1, 1, levels=2, filters=8, dtype=jnp.float32, key=jax.random.key(0))
    trainer = T.Trainer(sampler, I.SIPLoss(physics), optax.adam(3e-3), num_steps=12,
                        callbacks=[I.InversionErrors(physics)])  # fmt: skip
    result = trainer(net, key=jax.random.key(1), progress=False)
    x_l2 = np.asarray(result.metrics["errors"]["x_l2"])
    assert x_l2.shape == (12,) and np.all(np.isfinite(x_l2))
    assert x_l2[-3:].mean() < 0.7 * x_l2[:3].mean()
    assert jax.tree_util.tree_leaves(eqx.filter(result.model, eqx.is_inexact_array))[0].dtype == (
        jnp.float32
    )


NOTEBOOK = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "heat_inversion.ipynb"
SMALL = """import warnings

warnings.simplefilter("error")
warnings.filterwarnings("ignore", module="ipykernel|jupyter_client|zmq|tornado")
SIZE = 16
BATCH = 4
STEPS = 3
SEEDS = 2
PADDING_SEEDS = 0"""  # the periodic sweep would compile a third program


def test_heat_inversion_notebook_runs_at_small_settings(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    cells[0].source = SMALL
    before = sorted(p.name for p in NOTEBOOK.parent.iterdir())
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()  # fmt: skip
    assert sorted(p.name for p in NOTEBOOK.parent.iterdir()) == before  # nothing written
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    streams = [o for o in outputs if o.output_type == "stream"]
    assert not [s.text for s in streams if s.name == "stderr"]
    text = "".join(s.text for s in streams)
    assert "sip: 2 seeds x 3 steps" in text and "adam: 2 seeds x 3 steps" in text
    assert "SIP x_l2 at step 3" in text and "Adam / SIP" in text
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(figures) == 4  # data, kernel, curves, reconstructions


def test_heat_inversion_cli_at_tiny_sizes(tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from trainax_fd.reproductions.heat_inversion import main

    assert main(["--size", "16", "--batch", "4", "--steps", "2", "--seeds", "2",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "16x16 cells, batches of 4, 2 steps, 2 seeds per method" in out
    for line in ("sip: 2 seeds x 2 steps", "adam: 2 seeds x 2 steps", "Adam / SIP"):
        assert line in out
    for name in ("heat_inversion_curves.png", "heat_inversion_reconstructions.png"):
        assert (tmp_path / name).stat().st_size > 5_000 and str(tmp_path / name) in out
    assert not jax.config.read("jax_enable_x64")  # the 64-bit mode did not leak
    with pytest.raises(SystemExit):
        main(["--size", "12"])
    assert "--size must be divisible by 8 (the U-Net's 4 levels), got 12" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--steps", "0"])
    assert "--steps must be >= 1, got 0" in capsys.readouterr().err
