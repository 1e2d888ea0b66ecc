"""The pdequinox architectures (DilatedResNet, FNO, MLP) and the correction wrapper: shapes in
1D/2D/3D, parameter counts against pdequinox's formulas, receptive fields (by hand and
measured), boundary handling, pdequinox's own numbers where it is installed, errors."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainax_fd import trainers as T
from trainax_fd.arch import FNO, MLP, ConvNet, Corrected, DilatedResNet
from trainax_fd.configurations import Supervised
from trainax_fd.stencil import AbstractBoundary, Dirichlet, Neumann, Periodic

KEY = jax.random.key(0)


def run(fn, *args):
    return jax.tree.map(np.asarray, eqx.filter_jit(fn)(*args))


def skeleton(cls, *args, **kwargs):
    """Shapes only (nothing compiled): for counts and errors."""
    return eqx.filter_eval_shape(cls, *args, key=KEY, **kwargs)


def materialise(model, seed=0):
    """`model` (a skeleton) with NumPy-drawn parameters and zero boundary values: the
    constructors' `jax.random` draws would compile a program per weight shape."""
    rng = np.random.default_rng(seed)

    def draw(x):
        if isinstance(x, AbstractBoundary):
            return jax.tree.map(lambda v: jnp.zeros(v.shape, v.dtype), x)
        if isinstance(x, jax.ShapeDtypeStruct):
            return jnp.asarray(rng.uniform(-0.6, 0.6, x.shape), x.dtype)
        return x

    return jax.tree.map(draw, model, is_leaf=lambda x: isinstance(x, AbstractBoundary))


def normal(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def conv(cin, cout, k):
    return cin * cout * k + cout


@pytest.mark.parametrize("d", [1, 2, 3])
def test_parameter_counts_follow_pdequinox(d):
    h, cin, cout, k = 4, 2, 3, 3**d
    rates = (1, 2, 1)
    dilated = skeleton(DilatedResNet, d, cin, cout, hidden_channels=h, num_blocks=2,
                       dilation_rates=rates)  # fmt: skip
    block = len(rates) * (conv(h, h, k) + 2 * h)  # convolutions, group norms (weight, bias)
    assert dilated.num_parameters == conv(cin, h, 1) + 2 * block + conv(h, cout, 1)
    plain = skeleton(DilatedResNet, d, cin, cout, hidden_channels=h, use_norm=False)
    assert plain.num_parameters == conv(cin, h, 1) + 2 * 7 * conv(h, h, k) + conv(h, cout, 1)
    fno = skeleton(FNO, d, cin, cout, hidden_channels=h, num_modes=3, num_blocks=2)
    spectral = 2 * 2 ** (d - 1) * h * h * 3**d  # real and imaginary, 2^(d-1) corners
    assert fno.num_parameters == conv(cin, h, 1) + 2 * (spectral + conv(h, h, 1)) + conv(h, cout, 1)
    n = {1: 20, 2: 6, 3: 3}[d]
    mlp = skeleton(MLP, d, cin, cout, num_points=n, width_size=8, depth=2)
    fan_in, fan_out = cin * n**d, cout * n**d
    assert mlp.num_parameters == (fan_in * 8 + 8) + (8 * 8 + 8) + (8 * fan_out + fan_out)
    for model in (dilated, plain, fno, mlp):  # periodic: every float leaf is a parameter
        leaves = [
            x for x in jax.tree_util.tree_leaves(model)
            if isinstance(x, jax.ShapeDtypeStruct) and jnp.issubdtype(x.dtype, jnp.floating)
        ]  # fmt: skip
        assert model.num_parameters == sum(int(np.prod(x.shape)) for x in leaves)


def test_pdequinox_defaults_and_receptive_fields():
    default = skeleton(DilatedResNet, 1, 1, 1)
    assert default.num_parameters == 44_449  # pdequinox's DilatedResNet(1, 1, 1)
    assert default.receptive_field == (1 + 2 * 2 * (1 + 2 + 4 + 8 + 4 + 2 + 1),)  # 89
    fno = conv(1, 32, 1) + 4 * (2 * 32 * 32 * 12 + conv(32, 32, 1)) + conv(32, 1, 1)
    assert skeleton(FNO, 1, 1, 1).num_parameters == fno
    assert skeleton(FNO, 2, 1, 1).receptive_field == (np.inf, np.inf)
    assert skeleton(MLP, 2, 1, 1, num_points=9).receptive_field == (9, 9)
    assert skeleton(MLP, 1, 1, 1, num_points=10).num_parameters == (
        (10 * 64 + 64) + 2 * (64 * 64 + 64) + (64 * 10 + 10)
    )
    assert skeleton(DilatedResNet, 2, 1, 1, dilation_rates=(1, 3), kernel_size=(3, 5),
                    num_blocks=1).receptive_field == (1 + 2 + 6, 1 + 4 + 12)  # fmt: skip


def test_shapes_dtypes_and_measured_receptive_field():
    models = {
        1: (materialise(skeleton(DilatedResNet, 1, 2, 3, hidden_channels=3,
                                 dilation_rates=(1, 2), num_blocks=1, use_norm=False)), (32,)),
        2: (materialise(skeleton(FNO, 2, 2, 3, hidden_channels=3, num_modes=(2, 3),
                                 num_blocks=1)), (8, 6)),
        3: (materialise(skeleton(MLP, 3, 2, 3, num_points=3, width_size=5, depth=1)),
            (3, 3, 3)),
    }  # fmt: skip
    inputs = {d: normal((2, *shape), seed=d) for d, (_, shape) in models.items()}
    outputs = run(lambda ms, us: {d: ms[d][0](us[d]) for d in ms}, models, inputs)
    for d, (_, shape) in models.items():
        assert outputs[d].shape == (3, *shape) and outputs[d].dtype == np.float32

    # the dilated ResNet's output at the centre depends on exactly its receptive field (the
    # convolutions'; a group normalisation's statistics couple every point)
    net = models[1][0]
    u = inputs[1]
    jac = run(lambda m, u: jax.jacfwd(lambda v: m(v)[:, 16])(u), net, u)  # (out, in, points)
    touched = np.flatnonzero(np.abs(jac).max(axis=(0, 1)) > 0)
    assert touched.max() - touched.min() + 1 == net.receptive_field[0] == 7


def test_fno_is_translation_equivariant_and_resolution_free():
    fno = materialise(skeleton(FNO, 1, 1, 1, hidden_channels=3, num_modes=4, num_blocks=2))
    u = normal((1, 32))
    a, b, c = run(lambda m, u: (m(u), m(jnp.roll(u, 5, -1)), m(u[:, ::2])), fno, u)
    np.testing.assert_allclose(b, np.roll(a, 5, -1), atol=1e-5)
    assert c.shape == (1, 16)


@pytest.mark.parametrize("d", [1, 2])
def test_dilated_resnet_boundaries(d):
    """Walls: the Dirichlet value of the low wall of axis 0 reaches exactly the points within
    half the receptive field; a periodic axis rolls along."""
    shape = {1: (24,), 2: (24, 8)}[d]
    bc = [(Dirichlet(0.0), Neumann(0.5)), Periodic()][:d]
    net = materialise(skeleton(DilatedResNet, d, 1, 2, hidden_channels=3, dilation_rates=(1, 2),
                               num_blocks=1, use_norm=False, boundary=bc))  # fmt: skip
    u = normal((1, *shape))

    def outputs(net, u):
        hot = eqx.tree_at(lambda m: m.convs[0][0].boundary[0][0].value, net, jnp.asarray(2.0))
        rolled = jnp.roll(u, 3, axis=2) if d > 1 else u
        return net(u), hot(u), net(rolled)

    cold, hot, rolled = run(outputs, net, u)
    changed = np.abs(hot - cold).max(axis=tuple(a for a in range(hot.ndim) if a != 1))
    np.testing.assert_array_equal(changed > 0, np.arange(shape[0]) < net.receptive_field[0] // 2)
    if d > 1:
        np.testing.assert_allclose(rolled, np.roll(cold, 3, axis=2), atol=1e-5)
    # the boundary value is data, not a parameter
    assert net.num_parameters == skeleton(DilatedResNet, d, 1, 2, hidden_channels=3,
                                          dilation_rates=(1, 2), num_blocks=1,
                                          use_norm=False).num_parameters  # fmt: skip


@pytest.fixture
def standard_promotion():
    """pdequinox and exponax mix Python complex and float arrays (not strict-clean)."""
    with jax.numpy_dtype_promotion("standard"):
        yield


def test_the_same_function_as_pdequinox(standard_promotion):
    pdeqx = pytest.importorskip("pdequinox")
    u = normal((2, 16, 12))
    ref = pdeqx.arch.ClassicFNO(2, 2, 3, hidden_channels=4, num_modes=3, num_blocks=2, key=KEY)
    fno = skeleton(FNO, 2, 2, 3, hidden_channels=4, num_modes=3, num_blocks=2)
    fno = eqx.tree_at(
        lambda m: (m.lift.weight, m.lift.bias, m.project.weight, m.project.bias), fno,
        (ref.lifting.weight, ref.lifting.bias[:, 0, 0], ref.projection.weight,
         ref.projection.bias[:, 0, 0]),
    )  # fmt: skip
    for i, b in enumerate(ref.blocks):
        fno = eqx.tree_at(
            lambda m, i=i: (m.spectral[i].weights_real, m.spectral[i].weights_imag,
                            m.bypass[i].weight, m.bypass[i].bias), fno,
            (b.spectral_conv.weights_real, b.spectral_conv.weights_imag, b.by_pass_conv.weight,
             b.by_pass_conv.bias[:, 0, 0]),
        )  # fmt: skip
    ref_d = pdeqx.arch.DilatedResNet(1, 2, 3, hidden_channels=4, dilation_rates=(1, 2, 1),
                                     key=KEY)  # fmt: skip
    dil = skeleton(DilatedResNet, 1, 2, 3, hidden_channels=4, dilation_rates=(1, 2, 1))
    dil = eqx.tree_at(
        lambda m: (m.lift.weight, m.lift.bias, m.project.weight, m.project.bias), dil,
        (ref_d.lifting.weight, ref_d.lifting.bias[:, 0], ref_d.projection.weight,
         ref_d.projection.bias[:, 0]),
    )  # fmt: skip
    for i, b in enumerate(ref_d.blocks):
        for j, (c, n) in enumerate(zip(b.conv_layers, b.norm_layers)):
            dil = eqx.tree_at(
                lambda m, i=i, j=j: (m.convs[i][j].weight, m.convs[i][j].bias,
                                     *m.norms[i][j]), dil,
                (c.weight, c.bias[:, 0], n.weight, n.bias),
            )  # fmt: skip
    mlp_ref = pdeqx.arch.MLP(1, 2, 3, num_points=12, width_size=8, depth=2, key=KEY)
    mlp = eqx.tree_at(lambda m: m.mlp, skeleton(MLP, 1, 2, 3, num_points=12, width_size=8,
                                                depth=2), mlp_ref.flat_mlp)  # fmt: skip
    v = u[:, :, 0]
    ours = run(lambda a, b, c: (a(u), b(v), c(v[:, :12])), fno, dil, mlp)
    theirs = run(lambda a, b, c: (a(u), b(v), c(v[:, :12])), ref, ref_d, mlp_ref)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


class Physics(eqx.Module):
    """A fixed linear step with complex spectral coefficients (as an exponax stepper)."""

    coefficients: jax.Array

    def __call__(self, u):
        spectrum = jnp.fft.rfft(u, axis=-1) * self.coefficients
        return jnp.fft.irfft(spectrum, n=u.shape[-1], axis=-1)


def test_corrected_modes_and_fixed_physics():
    decay = np.exp(-0.05 * np.arange(9)) * np.exp(-0.3j * np.arange(9))
    physics = Physics(jnp.asarray(decay[None], jnp.complex64))
    net = materialise(skeleton(ConvNet, 1, 1, 1, width=4, depth=2))
    u = normal((1, 16))
    outs = run(
        lambda p, n, u: [Corrected(p, n, mode)(u) for mode in
                         ("parallel", "sequential", "sequential_with_bypass")]
        + [p(u), n(u), n(p(u))], physics, net, u,
    )  # fmt: skip
    parallel, sequential, bypass, pu, nu, npu = outs
    np.testing.assert_allclose(parallel, pu + nu, atol=1e-6)
    np.testing.assert_allclose(sequential, npu, atol=1e-6)
    np.testing.assert_allclose(bypass, pu + npu, atol=1e-6)
    model = Corrected(physics, net)
    assert model.num_parameters == net.num_parameters
    # no gradient reaches the physics
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m(u) ** 2)))(model)
    assert not np.any(np.asarray(grads.physics.coefficients))
    # trained with its spec, the physics is neither updated nor in the optimizer state
    data = np.stack([np.asarray(u)] * 3)[None].repeat(4, 0)  # (4, 3, 1, 16)
    trainer = T.Trainer(data, Supervised(1), optax.adamw(1e-2, weight_decay=0.5), num_steps=3,
                        batch_size=2, trainable=model.trainable)  # fmt: skip
    result = trainer(model, key=KEY, progress=False)
    np.testing.assert_array_equal(result.model.physics.coefficients, physics.coefficients)
    assert not any(jnp.iscomplexobj(x) for x in jax.tree_util.tree_leaves(result.opt_state))
    assert not np.allclose(result.model.network.layers[0].weight, net.layers[0].weight)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: skeleton(FNO, 1, 1, 1, boundary="dirichlet"), ValueError,
         "`boundary` must be periodic for an FNO: its spectral convolutions treat every axis as "
         "periodic; got 'dirichlet'."),
        (lambda: skeleton(FNO, 2, 1, 1, num_modes=(3, 0)), ValueError,
         "`num_modes` must be an int >= 1 or one per spatial axis (2), got (3, 0)."),
        (lambda: eqx.filter_eval_shape(skeleton(FNO, 1, 1, 1, num_modes=10), jnp.zeros((1, 16))),
         ValueError,
         "`num_modes` 10 does not fit 16 points on axis 0: at most 9 modes there."),
        (lambda: skeleton(FNO, 1, 1, 1, num_blocks=0), ValueError,
         "`num_blocks` must be an int >= 1, got 0."),
        (lambda: skeleton(DilatedResNet, 1, 1, 1, dilation_rates=(1, 0)), ValueError,
         "`dilation_rates` must be a non-empty sequence of ints >= 1, got (1, 0)."),
        (lambda: skeleton(DilatedResNet, 1, 1, 1, use_norm="yes"), TypeError,
         "`use_norm` must be a bool, got str."),
        (lambda: skeleton(DilatedResNet, 1, 1, 1, hidden_channels=0), ValueError,
         "`hidden_channels` must be an int >= 1, got 0."),
        (lambda: skeleton(MLP, 1, 1, 1, num_points=0), ValueError,
         "`num_points` must be an int >= 1, got 0."),
        (lambda: skeleton(MLP, 1, 1, 1, num_points=4, depth=-1), ValueError,
         "`depth` must be an int >= 0, got -1."),
        (lambda: skeleton(MLP, 1, 1, 1, num_points=4, final_activation=3), TypeError,
         "`final_activation` must be callable, got int."),
        (lambda: skeleton(MLP, 1, 1, 2, num_points=4, residual=True), ValueError,
         "`residual=True` needs `in_channels == out_channels`"),
        (lambda: eqx.filter_eval_shape(skeleton(MLP, 1, 1, 1, num_points=4), jnp.zeros((1, 5))),
         ValueError, "`u` must have shape (1, 4) for this MLP (it is tied to `num_points`=4), "
         "got (1, 5)."),
        (lambda: Corrected(lambda u: u, 3), TypeError, "`network` must be callable, got int."),
        (lambda: Corrected(None, lambda u: u), TypeError,
         "`physics` must be callable, got NoneType."),
        (lambda: Corrected(lambda u: u, lambda u: u, "serial"), ValueError,
         "`mode` must be one of ('parallel', 'sequential', 'sequential_with_bypass'), got "
         "'serial'."),
    ],
)  # fmt: skip
def test_errors(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()
