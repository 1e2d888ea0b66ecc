"""Architectures: stencil-conv exactness, shapes and boundaries in 1D/2D/3D, parameter counts,
receptive fields (by hand and measured), jit + vmap, gradients, error messages."""

import itertools
import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd.arch import ConvNet, ResNet, StencilConv, UNet, UpwindNet, finite_difference_net
from trainax_fd.stencil import (
    AbstractBoundary,
    Dirichlet,
    Grid,
    Neumann,
    Periodic,
    backward,
    boundary_pairs,
    central,
    forward,
    second,
    upwind,
)

KEY = jax.random.key(0)


def run(fn, *args):
    """Call `fn` compiled, get NumPy arrays back: op-by-op compiling would dominate test time."""
    return jax.tree.map(np.asarray, eqx.filter_jit(fn)(*args))


def skeleton(cls, *args, **kwargs):
    """A model with shapes instead of arrays (nothing computed): for counts and errors."""
    return eqx.filter_eval_shape(cls, *args, key=KEY, **kwargs)


FIRST = {  # the layer that pads with the boundary condition as given
    StencilConv: lambda m: m,
    UpwindNet: lambda m: m.conv,
    ConvNet: lambda m: m.layers[0],
    ResNet: lambda m: m.lift,
    UNet: lambda m: m.encoder[0][0],
}


def init(cls, *args, seed=0, boundary="periodic", **kwargs):
    """`cls(*args, boundary=boundary, **kwargs, key=...)` with its parameters drawn by NumPy.

    The constructors draw with `jax.random`, which compiles once per weight shape, op by op
    or inside `jit`; on a busy 2-core machine that would dominate the test time. So the
    structure comes from `eval_shape` (the constructor runs, nothing compiles), the
    parameters from NumPy, and the boundary values (which `eval_shape` turns into shapes) are
    put back: as given in the first layer, zero in the hidden ones.
    """
    model = skeleton(cls, *args, boundary=boundary, **kwargs)
    rng = np.random.default_rng(seed)

    def draw(x):
        if isinstance(x, AbstractBoundary):  # hidden layers: the homogeneous condition
            return jax.tree.map(lambda v: jnp.asarray(np.zeros(v.shape), v.dtype), x)
        if isinstance(x, jax.ShapeDtypeStruct):
            return jnp.asarray(rng.uniform(-0.6, 0.6, x.shape), x.dtype)
        return x

    model = jax.tree.map(draw, model, is_leaf=lambda x: isinstance(x, AbstractBoundary))
    first = FIRST[type(model)](model)
    grid = first.grid or Grid((1,) * first.num_spatial_dims)
    pairs = boundary_pairs(boundary, grid)
    return eqx.tree_at(lambda m: FIRST[type(m)](m).boundary, model, pairs)


def normal(shape, seed=0):
    """Standard normal test data in the default float dtype (NumPy: nothing to compile)."""
    data = np.random.default_rng(seed).standard_normal(shape)
    return jnp.asarray(data, dtype=jax.dtypes.canonicalize_dtype(float))


# ---------------------------------------------------------------------------------------------
# StencilConv against the stencil core

SHAPES = {1: (11,), 2: (7, 6), 3: (5, 4, 6)}
BOUNDARIES = [  # placement, the condition on the tested axis (others: Neumann or periodic)
    ("periodic", Periodic),
    ("cell", lambda: (Dirichlet(0.7), Dirichlet(-1.3))),
    ("cell", lambda: (Neumann(0.4), Neumann(-0.2))),
    ("vertex", lambda: Dirichlet(0.5)),
]


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_stencil_conv_reproduces_the_stencil_core(x64, ndim):
    """Periodic, Dirichlet (cell and vertex grids) and Neumann conditions, each along one axis
    (all axes in turn), with named stencils: equal to float64 rounding."""
    named = [forward(), second(), central(1, 4)]  # built under x64: float64 weights
    if ndim == 1:
        named += [central(), backward(), forward(2, 1)]
    cases = []
    for case, (placement, make_bc) in enumerate(BOUNDARIES):
        extent = tuple(1.0 + 0.5 * a for a in range(ndim))  # spacings != 1
        grid = Grid(SHAPES[ndim], extent=extent, placement=placement)
        axis = case % ndim
        other = {"cell": Neumann(0.1), "vertex": Dirichlet(-0.2)}.get(placement, Periodic())
        bc = [other] * ndim
        bc[axis] = make_bc()
        conv = StencilConv.from_stencils(named, axis=axis, grid=grid, boundary=bc)
        assert conv.weight.dtype == jnp.float64 and conv.grid == grid
        assert conv.kernel_size == tuple(5 if a == axis else 1 for a in range(ndim))
        cases.append((conv, grid, bc, axis))
        # the weights read back as the stencils, zero-padded to the common reach 2
        for (learned,), s in zip(conv.stencils(order=[s.order for s in named]), named):
            assert learned.offsets == (-2, -1, 0, 1, 2) and learned.order == s.order
            padded = np.zeros(5)
            padded[np.asarray(s.offsets) + 2] = s.weights
            np.testing.assert_allclose(learned.weights, padded, rtol=1e-14, atol=1e-14)
    convs = [c[0] for c in cases]

    def compare(convs, u):
        return [
            (conv(u), jnp.concatenate([s(u, grid, bc, axis) for s in named]))
            for conv, (_, grid, bc, axis) in zip(convs, cases)
        ]

    for got, expected in run(compare, convs, normal((1, *SHAPES[ndim]))):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13 * np.abs(expected).max())


def test_stencil_readback_reproduces_a_random_layer(x64):
    """Any layer (even kernel, two input channels, bias) is the sum of its read-back stencils."""
    grid = Grid((9, 8), extent=(2.0, 0.5), placement="cell")
    bc = [(Dirichlet(0.3), Neumann(1.0)), Periodic()]
    conv = init(StencilConv, 2, 2, 3, (1, 4), use_bias=True, boundary=bc, grid=grid)
    assert conv.reach == ((0, 0), (1, 2))
    back = conv.stencils(order=1)
    assert back[2][1].offsets == (-1, 0, 1, 2)  # 4 points: one more to the right
    np.testing.assert_allclose(back[2][1].weights, conv.weight[2, 1, 0] * grid.spacing[1])

    def both(conv, back, u):
        ref = [sum(s(u[i : i + 1], grid, bc, axis=1) for i, s in enumerate(row)) for row in back]
        return conv(u), jnp.concatenate(ref) + conv.bias[:, None, None]

    got, expected = run(both, conv, back, normal((2, *grid.shape)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_shifted_sums_equal_the_convolution(x64, monkeypatch, ndim):
    """Small layers (learned stencils) run as sums of shifted copies, larger ones as one
    convolution; both give the same result for the same layer."""
    from trainax_fd.arch import _stencil_conv

    grid = Grid(SHAPES[ndim], placement="cell")
    bc = [(Dirichlet(0.3), Neumann(1.0))] + [Periodic()] * (ndim - 1)
    kernel = (4, 3, 2)[:ndim]  # even and odd sizes
    conv = init(StencilConv, ndim, 2, 2, kernel, use_bias=True, boundary=bc, grid=grid)
    u = normal((2, *grid.shape))

    def convolutions(layer):
        return str(jax.make_jaxpr(layer)(u)).count("conv_general_dilated")

    assert conv.weight.size == 4 * math.prod(kernel) <= 96
    monkeypatch.setattr(_stencil_conv, "SHIFTED_SUM_UP_TO", 96)
    assert convolutions(conv) == 0
    shifted = run(lambda c, u: c(u), conv, u)
    monkeypatch.setattr(_stencil_conv, "SHIFTED_SUM_UP_TO", 0)
    assert convolutions(conv) == 1
    convolved = run(lambda c, u: c(u), conv, u)
    np.testing.assert_allclose(shifted, convolved, rtol=1e-13, atol=1e-13)


def test_stencil_conv_without_grid_has_unit_spacing():
    conv = StencilConv.from_stencils(backward(2, 1), boundary="neumann", use_bias=True)
    assert conv.weight.shape == (1, 1, 5) and conv.grid is None
    np.testing.assert_array_equal(conv.bias, [0.0])
    grid = Grid((12,), extent=12.0, placement="cell")
    got, expected = run(lambda u: (conv(u), backward(2, 1)(u, grid, "neumann")), normal((1, 12)))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_constructors_draw_from_the_key_and_hidden_layers_are_homogeneous():
    """The one test that pays for `jax.random` compiles: real constructor calls (few weight
    shapes, so few compilations)."""
    conv = StencilConv(1, 8, 8, 5, use_bias=True, key=KEY)
    limit = 1 / np.sqrt(8 * 5)  # uniform in +-1/sqrt(fan_in), as documented
    weight, bias = np.asarray(conv.weight, np.float64), np.asarray(conv.bias, np.float64)
    assert conv.weight.shape == (8, 8, 5) and conv.bias.shape == (8,)
    assert conv.weight.dtype == conv.bias.dtype == jnp.float32
    assert np.abs(weight).max() <= limit and np.abs(bias).max() <= limit
    assert weight.min() < -0.9 * limit and weight.max() > 0.9 * limit  # the whole range
    assert abs(weight.mean()) < 0.2 * limit  # 6 standard errors of 320 uniform draws
    np.testing.assert_allclose(weight.std(), limit / np.sqrt(3), rtol=0.1)
    assert len(np.unique(bias)) == 8
    again = StencilConv(1, 8, 8, 5, use_bias=True, key=KEY)
    other = StencilConv(1, 8, 8, 5, use_bias=True, key=jax.random.key(1))
    assert np.array_equal(conv.weight, again.weight) and np.array_equal(conv.bias, again.bias)
    assert not np.any(np.isclose(conv.weight, other.weight))
    assert not np.any(np.isclose(conv.bias, other.bias))
    raw = StencilConv(1, 8, 8, 5, use_bias=True, key=jax.random.key_data(KEY))
    assert np.array_equal(raw.weight, conv.weight)  # a raw key draws as its typed key
    # an ensemble: filter_vmap over keys draws what each key draws alone, and jit changes nothing
    keys = jax.random.split(KEY, 3)
    batch = eqx.filter_vmap(lambda k: StencilConv(1, 2, 2, 5, key=k))(keys)
    assert batch.weight.shape == (3, 2, 2, 5) and batch.bias is None
    jitted = eqx.filter_jit(lambda k: StencilConv(1, 2, 2, 5, key=k))
    for i, k in enumerate(keys):
        alone = StencilConv(1, 2, 2, 5, key=k)
        np.testing.assert_array_equal(batch.weight[i], alone.weight)
        np.testing.assert_array_equal(jitted(k).weight, alone.weight)
    assert not np.allclose(batch.weight[0], batch.weight[1])
    # every layer of a network gets a key of its own: same shapes, different weights
    net = ConvNet(1, 2, 2, width=2, depth=3, kernel_size=5, key=KEY)
    res = ResNet(1, 2, 2, width=2, num_blocks=1, kernel_size=5, key=KEY)
    unet = UNet(1, 1, 1, width=2, levels=1, key=KEY)
    for layers in (
        net.layers,
        (res.lift, *res.blocks[0]),
        (unet.encoder[0][1], unet.decoder[0][1]),
        (unet.ups[0], unet.decoder[0][0]),
    ):
        weights = [np.asarray(layer.weight) for layer in layers]
        assert len({w.shape for w in weights}) == 1
        assert all(not np.allclose(a, b) for a, b in itertools.combinations(weights, 2))
        fan_in = math.prod(weights[0].shape[1:])
        assert all(np.abs(w).max() <= 1 / np.sqrt(fan_in) for w in weights)
    other = ConvNet(1, 2, 2, width=2, depth=3, kernel_size=5, key=jax.random.key(1))
    assert not np.allclose(net.layers[0].weight, other.layers[0].weight)
    walls = [(Dirichlet(2.0), Neumann(1.0))]
    deep = ConvNet(1, 2, 2, width=2, depth=2, kernel_size=5, boundary=walls, key=KEY)
    first, hidden = (layer.boundary[0] for layer in deep.layers)
    assert (float(first[0].value), float(first[1].flux)) == (2.0, 1.0)
    assert [type(c) for c in hidden] == [Dirichlet, Neumann]
    assert (float(hidden[0].value), float(hidden[1].flux)) == (0.0, 0.0)


# ---------------------------------------------------------------------------------------------
# The upwind net


def test_hard_upwind_net_is_the_stencil_cores_upwind(x64):
    grid = Grid((10, 12), extent=(1.0, 3.0), placement="cell")
    bc = [Dirichlet(0.2), (Neumann(0.5), Dirichlet(-1.0))]
    net = UpwindNet.from_stencils(backward(), forward(), axis=1, hard=True, grid=grid, boundary=bc)
    assert net.conv.kernel_size == (1, 3) and net.num_parameters == 2 * 3 + 2 * 2
    np.testing.assert_array_equal(net.gate_weight, [[1.0], [-1.0]])  # complementary gates
    np.testing.assert_array_equal(net.gate_bias, [[0.0], [0.0]])
    got, expected = run(
        lambda net, u: (net(u), upwind(u, u, grid, bc, axis=1)), net, normal((1, 10, 12))
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13 * np.abs(expected).max())


def test_soft_upwind_net_follows_its_formula(x64):
    """`g_0 A u + g_1 B u`, `g_k = sigmoid(steepness (a_k u + b_k))`, per channel, by hand."""
    net = init(UpwindNet, 1, 2, 3, steepness=4.0)
    a = jnp.array([[0.5, -2.0], [1.5, 0.7]])  # (gate, channel)
    b = jnp.array([[0.1, 0.3], [-0.4, 0.0]])
    net = eqx.tree_at(lambda n: (n.gate_weight, n.gate_bias), net, (a, b))

    def both(net, u):
        w = net.conv.weight  # (4, 2, 3): out channels A_0, A_1, B_0, B_1
        shifted = jnp.stack([jnp.roll(u, 1, axis=1), u, jnp.roll(u, -1, axis=1)], axis=-1)
        stencils = jnp.einsum("oik,ink->on", w, shifted)
        g = jax.nn.sigmoid(4.0 * (a[:, :, None] * u[None] + b[:, :, None]))
        return net(u), g[0] * stencils[:2] + g[1] * stencils[2:]

    got, expected = run(both, net, normal((2, 16)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Shapes, boundaries, vmap, jit


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_shapes_boundaries_and_shifts_in_every_dimension(ndim):
    """Each architecture on `(2, *spatial)`, vmapped over three cases: the Dirichlet value of
    the low wall of axis 0 set to 0, then to 2 (the output changes exactly within reach of
    that wall), then 0 again on the input rolled along the periodic axis 1 (the output rolls
    along)."""
    shape = {1: (32,), 2: (16, 6), 3: (12, 4, 4)}[ndim]
    bc = [(Dirichlet(0.0), Neumann(0.5)), Periodic(), (Dirichlet(-1.0), Neumann(0.2))][:ndim]
    models = {
        "ConvNet": init(ConvNet, ndim, 2, 3, width=3, depth=2, boundary=bc),
        "ResNet": init(ResNet, ndim, 2, 3, width=3, num_blocks=1, boundary=bc),
        "UNet": init(UNet, ndim, 2, 3, width=2, levels=1, boundary=bc),
        "StencilConv": init(finite_difference_net, ndim, 2, 3, boundary=bc),
        "UpwindNet": init(UpwindNet, ndim, 2, boundary=bc),
    }
    u = normal((2, *shape))
    shift = 2  # a multiple of 2**levels for the UNet
    inputs = jnp.stack([u, u, jnp.roll(u, shift, axis=2) if ndim > 1 else u])
    values = jnp.array([0.0, 2.0, 0.0])

    def apply(models, inputs, values):
        def one(u, value):
            with_value = {  # the low wall of axis 0 in the layer that sees the input
                n: eqx.tree_at(lambda m: FIRST[type(m)](m).boundary[0][0].value, m, value)
                for n, m in models.items()
            }
            return {n: m(u) for n, m in with_value.items()}

        return jax.vmap(one)(inputs, values)

    for name, out in run(apply, models, inputs, values).items():
        channels = 2 if name == "UpwindNet" else 3
        assert out.shape == (3, channels, *shape) and out.dtype == np.float32, name
        assert np.isfinite(out).all() and np.abs(out).max() > 0
        changed = np.abs(out[1] - out[0]).max(axis=tuple(a for a in range(out.ndim - 1) if a != 1))
        rf = models[name].receptive_field[0]
        if name == "UNet":  # pooling may carry the value past the reach of the kernels alone
            assert changed[0] > 0 and not changed[rf:].any(), name
        else:
            np.testing.assert_array_equal(changed > 0, np.arange(shape[0]) < rf // 2, name)
        if ndim > 1:
            np.testing.assert_allclose(
                out[2], np.roll(out[0], shift, axis=2), rtol=1e-5, atol=1e-5, err_msg=name
            )


def test_residual_stepper_adds_the_state():
    direct = init(ConvNet, 1, 2, 2, depth=1)
    residual = init(ConvNet, 1, 2, 2, depth=1, residual=True)  # the same weights
    u = normal((2, 10))
    a, b = run(lambda d, r, u: (d(u), r(u)), direct, residual, u)
    np.testing.assert_allclose(b, np.asarray(u) + a, rtol=1e-6, atol=1e-6)


def test_jit_vmap_does_not_retrace_and_dtypes():
    traces = []

    @eqx.filter_jit
    def apply(net, batch):
        traces.append(1)
        return jax.vmap(net)(batch), net(batch[1])

    net = init(ConvNet, 1, 1, 1, width=2, depth=2)
    batched, single = apply(net, normal((2, 1, 16)))
    np.testing.assert_allclose(batched[1], single, rtol=1e-6, atol=1e-6)
    moved = eqx.tree_at(lambda n: n.layers[1].weight, net, net.layers[1].weight + 1)
    apply(moved, normal((2, 1, 16), seed=1))
    assert len(traces) == 1
    with jax.enable_x64(True):
        assert run(net, jnp.ones((1, 16), jnp.float64)).dtype == np.float64  # f32 weights
        net64 = skeleton(ConvNet, 1, 1, 1, width=2, depth=2)
        assert net64.layers[0].weight.dtype == jnp.float64


def test_gradients_reach_every_parameter_but_not_the_boundary_value():
    bc = [Dirichlet(1.5)]
    models = {
        "conv": init(ConvNet, 1, 1, 1, width=2, depth=2, boundary=bc),
        "unet": init(UNet, 1, 1, 1, width=1, levels=1, boundary=bc),
        "upwind": init(UpwindNet, 1, 1, boundary=bc),
    }

    def loss(models, u):
        return sum(jnp.mean(m(u) ** 2) for m in models.values())

    grads = run(eqx.filter_grad(loss), models, normal((1, 8)))
    for name, g in grads.items():
        walls = jax.tree.leaves(g, is_leaf=lambda x: isinstance(x, Dirichlet))
        walls = [w.value for w in walls if isinstance(w, Dirichlet)]
        assert walls and all(np.all(v == 0) for v in walls), name
        params = jax.tree.leaves(eqx.filter(g, eqx.is_inexact_array))
        assert all(np.isfinite(p).all() for p in params)
        assert sum(int(np.any(p != 0)) for p in params) == len(params) - len(walls), name


# ---------------------------------------------------------------------------------------------
# Parameter counts and receptive fields


def float_leaves(model) -> int:
    """Number of scalars in the float leaves (arrays or shapes) of `model`."""
    leaves = jax.tree.leaves(model)
    return sum(x.size for x in leaves if jnp.issubdtype(getattr(x, "dtype", int), jnp.floating))


def test_parameter_counts_by_hand():
    k2, k3 = 3 * 3, 3 * 3 * 3
    conv = skeleton(ConvNet, 2, 2, 1, width=5, depth=3)
    assert conv.num_parameters == (2 * 5 * k2 + 5) + (5 * 5 * k2 + 5) + (5 * 1 * k2 + 1)
    res = skeleton(ResNet, 3, 1, 2, width=4, num_blocks=2)
    assert res.num_parameters == (1 * 4 * k3 + 4) + 2 * 2 * (4 * 4 * k3 + 4) + (4 * 2 + 2)
    unet = skeleton(UNet, 1, 1, 1, width=2, levels=2, channel_multipliers=(1, 2, 3))
    c0, c1, c2 = 2, 4, 6

    def conv1d(cin, cout, k=3):
        return cin * cout * k + cout

    assert unet.num_parameters == (
        conv1d(1, c0) + conv1d(c0, c0) + conv1d(c0, c1) + conv1d(c1, c1) + conv1d(c1, c2)
        + conv1d(c2, c2)  # encoder
        + conv1d(c2, c1) + conv1d(c1, c0)  # up convolutions
        + conv1d(2 * c1, c1) + conv1d(c1, c1) + conv1d(2 * c0, c0) + conv1d(c0, c0)  # decoder
        + conv1d(c0, 1, k=1)  # projection
    )  # fmt: skip
    up = skeleton(UpwindNet, 2, 3, (3, 1))
    assert up.num_parameters == 6 * 3 * 3 + 2 * 3 + 2 * 3  # conv, gate weights and biases
    fd = skeleton(finite_difference_net)
    assert fd.num_parameters == 9 and fd.bias is None
    biased = skeleton(StencilConv, 1, 2, 4, 5, use_bias=True)
    assert biased.num_parameters == 2 * 4 * 5 + 4
    for model in (conv, res, unet, up, fd, biased):  # periodic: every float leaf is a parameter
        assert model.num_parameters == float_leaves(model)
    walled = skeleton(ConvNet, 1, 1, 1, width=2, depth=2, boundary=Dirichlet(1.0))
    assert walled.num_parameters == float_leaves(walled) - 4  # boundary values are not


def test_receptive_fields_by_hand():
    assert skeleton(ConvNet, 1, 1, 1, depth=4, kernel_size=5).receptive_field == (17,)
    assert skeleton(ConvNet, 2, 1, 1, depth=3, kernel_size=(3, 4)).receptive_field == (7, 10)
    assert skeleton(ResNet, 1, 1, 1, num_blocks=2, kernel_size=3).receptive_field == (11,)
    assert skeleton(UpwindNet, 2, 1, (3, 1)).receptive_field == (3, 1)
    assert skeleton(StencilConv, 3, 1, 1, (1, 2, 5)).receptive_field == (1, 2, 5)
    # UNet, levels=1, kernel 3, all reaches 1: for output point p, the skip path sees
    # [p - 4, p + 4]; the coarse path sees [2 ((p - 3) // 2) - 6, 2 ((p + 3) // 2) + 7],
    # i.e. [-10, 9] for p = 0 and [-8, 11] for p = 1: 20 points either way.
    assert skeleton(UNet, 1, 1, 1, levels=1).receptive_field == (20,)
    assert skeleton(UNet, 2, 1, 1, levels=1, kernel_size=(3, 1)).receptive_field == (20, 2)


def spans(depends, axis):
    """Largest span along `axis` of the `True` entries of `depends[index]`, over the indices
    in the middle half of `axis` (away from the periodic seam)."""
    n = depends.shape[axis]
    widths = []
    for index in np.ndindex(*depends.shape[: depends.ndim // 2]):
        if n // 4 <= index[axis] < 3 * n // 4:
            hits = np.argwhere(depends[index])[:, axis]
            widths.append(hits.max() - hits.min() + 1)
    return max(widths)


def test_receptive_field_matches_perturbations(x64):
    """Perturb each input point in turn (one vmapped forward pass) and record which output
    points change: `depends[i, j]` says output point `i` depends on input point `j`. In
    float64: through a U-Net's deepest path the farthest input moves an output by less than
    float32 resolves."""
    cases = [  # model, grid shape
        (init(ConvNet, 2, 1, 2, width=2, depth=2, kernel_size=(3, 4)), (12, 16)),
        (init(ResNet, 1, 2, 1, width=2, num_blocks=1, kernel_size=5), (40,)),
        (init(UNet, 1, 1, 1, width=1, levels=2, kernel_size=3), (112,)),
        (init(UpwindNet, 1, 1, 5), (16,)),
    ]

    def changes(model, u):
        n = math.prod(u.shape[1:])
        bumps = jnp.eye(n + 1, n, dtype=u.dtype).reshape(n + 1, 1, *u.shape[1:])  # last: none
        out = jax.vmap(model)(u[None] + bumps)  # all channels bumped at once
        return out[:-1] != out[-1:]  # (inputs, out, *spatial)

    models = [m for m, _ in cases]
    inputs = [normal((m.in_channels, *shape), seed=3) for m, shape in cases]
    changed = run(lambda ms, us: [changes(m, u) for m, u in zip(ms, us)], models, inputs)
    for (model, shape), change in zip(cases, changed):
        d = len(shape)
        reached = change.any(axis=1).reshape(shape + shape)  # (*spatial_in, *spatial_out)
        depends = np.moveaxis(reached, list(range(d)), list(range(d, 2 * d)))
        for axis in range(d):
            rows = spans(depends, axis)  # the inputs one output point depends on
            assert model.receptive_field[axis] == rows < shape[axis] // 2, (model, axis)
            if not isinstance(model, UNet):  # shift-invariant: the outputs one input reaches
                assert spans(reached, axis) == rows


# ---------------------------------------------------------------------------------------------
# Errors

ERRORS = [
    (lambda: skeleton(ConvNet, 1, 1, 1)(jnp.ones((2, 1, 8))), ValueError,
     "`u` must be one sample of shape (channels, *spatial) with 1 spatial axes for this "
     "ConvNet, got shape (2, 1, 8). Architectures act on one sample; batch with `jax.vmap`."),
    (lambda: skeleton(StencilConv, 2, 2, 1)(jnp.ones((3, 4, 4))), ValueError,
     "`u` must have 2 channel(s) for this StencilConv, got shape (3, 4, 4)."),
    (lambda: skeleton(StencilConv, 1, 1, 1, grid=Grid((8,)))(jnp.ones((1, 9))), ValueError,
     "`u` must have shape (channels, 8) for this 1D grid, got (1, 9). Steppers and operators "
     "act on one sample; batch with `jax.vmap`."),
    (lambda: StencilConv(4, 1, 1, key=KEY), ValueError,
     "`num_spatial_dims` must be 1, 2 or 3, got 4."),
    (lambda: StencilConv(2, 1, 1, grid=Grid((8,)), key=KEY), ValueError,
     "`grid` has 1 axes but `num_spatial_dims` is 2."),
    (lambda: StencilConv(1, 1, 1, grid=(8,), key=KEY), TypeError,
     "`grid` must be a `Grid` or None, got tuple."),
    (lambda: StencilConv(2, 1, 1, (3, 3, 3), key=KEY), ValueError,
     "`kernel_size` must be an int >= 1 or one per spatial axis (2), got (3, 3, 3)."),
    (lambda: StencilConv(1, 0, 1, key=KEY), ValueError,
     "`in_channels` must be an int >= 1, got 0."),
    (lambda: StencilConv(1, 1, 1, boundary=Neumann(), grid=Grid((8,), placement="vertex"),
                         key=KEY), ValueError,
     "Axis 0: `Neumann` does not fit a grid with placement 'vertex'"),
    (lambda: StencilConv(1, 1, 1, boundary="robin", key=KEY), ValueError,
     "Unknown boundary condition 'robin'"),
    (lambda: skeleton(StencilConv, 2, 1, 1).stencil(), ValueError,
     "Only a kernel longer than one point along at most one axis reads back as a `Stencil`; "
     "this layer has `kernel_size` (3, 3)."),
    (lambda: skeleton(StencilConv, 1, 1, 2).stencil(out=2), ValueError,
     "`out` must be an int in [0, 1], got 2."),
    (lambda: skeleton(StencilConv, 1, 1, 2).stencils(order=(1,)), ValueError,
     "`order` must be an int or one per output channel (2), got (1,)."),
    (lambda: StencilConv.from_stencils([]), TypeError,
     "`stencils` must be a `Stencil`, a non-empty sequence of them, or a rectangular nested "
     "sequence `[out][in]` of them, got []."),
    (lambda: StencilConv.from_stencils([[forward()], [central(), backward()]]), TypeError,
     "`stencils` must be a `Stencil`, a non-empty sequence of them, or a rectangular nested"),
    (lambda: StencilConv.from_stencils(forward(), axis=1), ValueError,
     "`axis` must be a spatial axis in [0, 0], got 1."),
    (lambda: ConvNet(1, 1, 2, residual=True, key=KEY), ValueError,
     "`residual=True` needs `in_channels == out_channels` (the stepper returns `u + f(u)`), got "
     "in_channels=1 and out_channels=2."),
    (lambda: ConvNet(1, 1, 1, residual=1, key=KEY), TypeError,
     "`residual` must be a bool, got int."),
    (lambda: ConvNet(1, 1, 1, depth=0, key=KEY), ValueError, "`depth` must be an int >= 1, got 0."),
    (lambda: ConvNet(1, 1, 1, key=jnp.zeros((2, 4), jnp.uint32)), TypeError,
     "one key: build several things with `eqx.filter_vmap` over split keys, got dtype uint32 "
     "and shape (2, 4)."),
    (lambda: ConvNet(1, 1, 1, key=0), TypeError,
     "`key` must be a `jax.random.key` (or a raw `jax.random.PRNGKey`), got int."),
    (lambda: StencilConv(1, 1, 1, key=jnp.zeros(2)), TypeError,
     "`key` must be a `jax.random.key` (or a raw `jax.random.PRNGKey`), got dtype float32 "
     "and shape (2,)."),
    (lambda: UNet(1, 1, 1, key=jax.random.split(KEY, 3)), TypeError,
     "one key: build several things with `eqx.filter_vmap` over split keys, got dtype key<fry> "
     "and shape (3,)."),
    (lambda: ResNet(1, 1, 1, num_blocks=0, key=KEY), ValueError,
     "`num_blocks` must be an int >= 1, got 0."),
    (lambda: ResNet(1, 1, 1, activation="relu", key=KEY), TypeError,
     "`activation` must be callable (e.g. `jax.nn.gelu`), got str: 'relu'."),
    (lambda: skeleton(UNet, 1, 1, 1, levels=2)(jnp.ones((1, 10))), ValueError,
     "A UNet with levels=2 needs spatial sizes divisible by 2**levels = 4; the spatial shape of "
     "`u` is (10,)."),
    (lambda: UNet(2, 1, 1, levels=1, grid=Grid((8, 5)), key=KEY), ValueError,
     "A UNet with levels=1 needs spatial sizes divisible by 2**levels = 2; grid.shape is (8, 5)."),
    (lambda: UNet(1, 1, 1, levels=2, channel_multipliers=(1, 2), key=KEY), ValueError,
     "`channel_multipliers` must hold levels + 1 = 3 ints >= 1, got (1, 2)."),
    (lambda: UpwindNet(steepness=0.0, key=KEY), ValueError,
     "`steepness` must be positive, got 0.0."),
    (lambda: UpwindNet(steepness="10", key=KEY), TypeError,
     "`steepness` must be a float, got str."),
    (lambda: UpwindNet(hard=None, key=KEY), TypeError, "`hard` must be a bool, got NoneType."),
]  # fmt: skip


@pytest.mark.parametrize("make, error, message", ERRORS)
def test_errors(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()
