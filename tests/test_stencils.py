"""Stencils: Fornberg weights, named stencils, convergence orders, upwinding, kernels."""

import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from trainax_fd.stencil import (
    Dirichlet,
    Grid,
    Neumann,
    Stencil,
    backward,
    central,
    fornberg_weights,
    forward,
    second,
    upwind,
)


def run(fn, *args):
    """Call `fn` compiled, get NumPy arrays back: op-by-op compiling would dominate test time."""
    return jax.tree.map(np.asarray, eqx.filter_jit(fn)(*args))


def slope(hs, errors):
    """Convergence order: the slope of log(error) against log(h)."""
    return np.polyfit(np.log(hs), np.log(errors), 1)[0]


# ---------------------------------------------------------------------------------------------
# Fornberg weights

CLOSED_FORMS = [  # offsets, derivative order, x0, weights (standard tables)
    ((-1, 0, 1), 1, 0.0, [-1 / 2, 0, 1 / 2]),
    ((-2, -1, 0, 1, 2), 1, 0.0, np.array([1, -8, 0, 8, -1]) / 12),
    ((-3, -2, -1, 0, 1, 2, 3), 1, 0.0, np.array([-1, 9, -45, 0, 45, -9, 1]) / 60),
    ((-1, 0, 1), 2, 0.0, [1, -2, 1]),
    ((-2, -1, 0, 1, 2), 2, 0.0, np.array([-1, 16, -30, 16, -1]) / 12),
    ((-3, -2, -1, 0, 1, 2, 3), 2, 0.0, np.array([2, -27, 270, -490, 270, -27, 2]) / 180),
    ((-2, -1, 0, 1, 2), 3, 0.0, [-1 / 2, 1, 0, -1, 1 / 2]),
    ((-2, -1, 0, 1, 2), 4, 0.0, [1, -4, 6, -4, 1]),
    ((0, 1), 1, 0.0, [-1, 1]),
    ((0, 1, 2), 1, 0.0, [-3 / 2, 2, -1 / 2]),
    ((0, 1, 2, 3), 1, 0.0, [-11 / 6, 3, -3 / 2, 1 / 3]),
    ((-2, -1, 0), 1, 0.0, [1 / 2, -2, 3 / 2]),
    ((0, 1, 2, 3), 2, 0.0, [2, -5, 4, -1]),
    ((0, 1), 0, 0.5, [1 / 2, 1 / 2]),  # interpolation to the midpoint
    ((-1.5, -0.5, 0.5, 1.5), 1, 0.0, [1 / 24, -9 / 8, 9 / 8, -1 / 24]),  # staggered
    ((3, 1, 2), 1, 2.0, [1 / 2, -1 / 2, 0]),  # unordered offsets, shifted x0
]


@pytest.mark.parametrize("offsets, order, x0, expected", CLOSED_FORMS)
def test_fornberg_closed_forms(offsets, order, x0, expected):
    weights = fornberg_weights(offsets, order, x0)
    assert weights.dtype == np.float64
    np.testing.assert_allclose(weights, expected, rtol=1e-13, atol=1e-13)


def test_fornberg_exact_on_polynomials():
    """On n points the weights differentiate every polynomial of degree < n exactly."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 8))
        if rng.random() < 0.5:
            offsets = rng.choice(np.arange(-6, 7), n, replace=False)
        else:
            offsets = np.sort(rng.uniform(-3, 3, n)) + 0.3 * np.arange(n)  # distinct reals
        order, x0 = int(rng.integers(0, n)), float(rng.uniform(-1, 1))
        weights = fornberg_weights(offsets, order, x0)
        for p in range(n):
            exact = math.perm(p, order) * x0 ** (p - order) if p >= order else 0.0
            scale = np.abs(weights) @ np.abs(offsets) ** p + 1.0
            assert abs(weights @ offsets**p - exact) <= 1e-10 * scale, (offsets, order, p)


def test_from_offsets_is_exact_on_grid_polynomials(x64):
    """`Stencil.from_offsets` applied on a grid: exact derivative, scaled by h^-order."""
    rng = np.random.default_rng(1)
    grid = Grid((12,), extent=3.0, placement="cell")
    x = grid.coordinates(0)
    stencils, polys = [], []
    for _ in range(4):
        n, order = int(rng.integers(3, 7)), int(rng.integers(1, 3))
        offsets = tuple(int(o) for o in rng.choice(np.arange(-3, 4), n, replace=False))
        stencils.append(Stencil.from_offsets(offsets, order))
        assert stencils[-1].accuracy >= n - order and stencils[-1].order == order
        polys.append(np.polynomial.Polynomial(rng.normal(size=n)))  # degree order + acc - 1
    us = [jnp.asarray(p(x)[None]) for p in polys]
    outs = run(lambda ss, us: [s(u, grid, "neumann") for s, u in zip(ss, us)], stencils, us)
    for out, stencil, poly in zip(outs, stencils, polys):
        low, high = stencil.reach
        inside = slice(low, 12 - high)  # points whose stencil needs no ghost
        expected = poly.deriv(stencil.order)(x)
        np.testing.assert_allclose(out[0, inside], expected[inside], rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Named stencils

NAMED = [  # factory, offsets, weights for unit spacing, order, accuracy
    (forward, (1, 1), (0, 1), [-1, 1], 1, 1),
    (forward, (1, 2), (0, 1, 2), [-3 / 2, 2, -1 / 2], 1, 2),
    (forward, (1, 3), (0, 1, 2, 3), [-11 / 6, 3, -3 / 2, 1 / 3], 1, 3),
    (forward, (2, 1), (0, 1, 2), [1, -2, 1], 2, 1),
    (forward, (2, 2), (0, 1, 2, 3), [2, -5, 4, -1], 2, 2),
    (backward, (1, 1), (-1, 0), [-1, 1], 1, 1),
    (backward, (1, 2), (-2, -1, 0), [1 / 2, -2, 3 / 2], 1, 2),
    (backward, (2, 1), (-2, -1, 0), [1, -2, 1], 2, 1),
    (backward, (2, 2), (-3, -2, -1, 0), [-1, 4, -5, 2], 2, 2),
    (central, (1, 2), (-1, 0, 1), [-1 / 2, 0, 1 / 2], 1, 2),
    (central, (1, 4), tuple(range(-2, 3)), np.array([1, -8, 0, 8, -1]) / 12, 1, 4),
    (central, (1, 6), tuple(range(-3, 4)), np.array([-1, 9, -45, 0, 45, -9, 1]) / 60, 1, 6),
    (central, (3, 2), tuple(range(-2, 3)), [-1 / 2, 1, 0, -1, 1 / 2], 3, 2),
    (central, (4, 2), tuple(range(-2, 3)), [1, -4, 6, -4, 1], 4, 2),
    (second, (2,), (-1, 0, 1), [1, -2, 1], 2, 2),
    (second, (4,), tuple(range(-2, 3)), np.array([-1, 16, -30, 16, -1]) / 12, 2, 4),
    (second, (6,), tuple(range(-3, 4)), np.array([2, -27, 270, -490, 270, -27, 2]) / 180, 2, 6),
]


@pytest.mark.parametrize("factory, args, offsets, weights, order, accuracy", NAMED)
def test_named_stencils(factory, args, offsets, weights, order, accuracy):
    stencil = factory(*args)
    assert stencil.offsets == offsets and stencil.order == order
    np.testing.assert_allclose(stencil.weights, weights, rtol=1e-6, atol=1e-6)
    assert stencil.accuracy == accuracy
    assert stencil.reach == (max(0, -min(offsets)), max(0, max(offsets)))


def test_accuracy_of_hand_made_stencils():
    assert Stencil((-1, 0, 1), [0.0, -1.0, 1.0], order=1).accuracy == 1  # forward, padded
    assert Stencil((-1, 0, 1), [1.0, -2.0, 1.0], order=2).accuracy == 2
    assert Stencil((0,), [1.0], order=0).accuracy >= 1  # the identity is exact
    assert Stencil((-1, 1), [-0.5, 0.5], order=1).accuracy == 2
    assert Stencil((-1, 0, 1), [-0.5, 0.1, 0.5], order=1).accuracy < 1  # inconsistent


def periodic_field(coords, length):
    """exp(sin(2 pi x / L)) and its first and second derivatives."""
    k = 2 * np.pi / length
    f = np.exp(np.sin(k * coords))
    d1 = k * np.cos(k * coords) * f
    return f, d1, (d1 / f) ** 2 * f - k**2 * np.sin(k * coords) * f


CONVERGENCE = [  # stencil factory and arguments, expected order
    (central, (1, 2), 2),
    (central, (1, 4), 4),
    (central, (1, 6), 6),
    (forward, (1, 1), 1),
    (forward, (1, 2), 2),
    (backward, (1, 1), 1),
    (backward, (1, 2), 2),
    (second, (2,), 2),
    (second, (4,), 4),
]
SIZES = (32, 48, 64, 96, 128)


@pytest.mark.parametrize("factory, args, expected", CONVERGENCE)
def test_convergence_periodic_1d_and_2d(x64, factory, args, expected):
    stencil = factory(*args)
    grids_1d = [Grid((n,), extent=1.0, placement="periodic") for n in SIZES]
    # 2D: the stencil acts along axis 1 of length 2, the field also varies along axis 0
    grids_2d = [Grid((3, n), extent=(1.0, 2.0), placement=("cell", "periodic")) for n in SIZES]
    fields_1d = [periodic_field(g.coordinates(0), 1.0) for g in grids_1d]
    fields_2d = []
    for g in grids_2d:
        f, d1, d2 = periodic_field(g.coordinates(1), 2.0)
        shift = np.cos(2 * np.pi * g.coordinates(0))[:, None]
        fields_2d.append([f * np.exp(shift), d1 * np.exp(shift), d2 * np.exp(shift)])

    def apply(stencil, us_1d, us_2d):
        out_1d = [stencil(u[None], g, "periodic") for u, g in zip(us_1d, grids_1d)]
        out_2d = [stencil(u[None], g, "periodic", axis=1) for u, g in zip(us_2d, grids_2d)]
        return out_1d, out_2d

    us_1d, us_2d = ([jnp.asarray(f[0]) for f in fields] for fields in (fields_1d, fields_2d))
    outs = run(apply, stencil, us_1d, us_2d)
    for out, fields, grids, axis in zip(outs, (fields_1d, fields_2d), (grids_1d, grids_2d), (0, 1)):
        errors = [np.abs(o[0] - f[stencil.order]).max() for o, f in zip(out, fields)]
        hs = [g.spacing[axis] for g in grids]
        assert abs(slope(hs, errors) - expected) < 0.2, (errors, slope(hs, errors))


NON_PERIODIC = [  # placement, boundary condition, u, u'' (ghosts consistent with u)
    (
        "vertex",
        lambda: Dirichlet(0.0),
        lambda x: np.sin(np.pi * x),
        lambda x: -(np.pi**2) * np.sin(np.pi * x),
    ),
    (
        "cell",
        lambda: ((Dirichlet(1.0), Dirichlet(3.0)),),
        lambda x: np.sin(np.pi * x) + 1 + 2 * x,
        lambda x: -(np.pi**2) * np.sin(np.pi * x),
    ),
    (
        "cell",
        lambda: ((Neumann(0.6), Neumann(1.4)),),  # outward derivatives of (x - 0.3)^2
        lambda x: np.cos(np.pi * x) + (x - 0.3) ** 2,
        lambda x: -(np.pi**2) * np.cos(np.pi * x) + 2,
    ),
]


@pytest.mark.parametrize("placement, bc, u, uxx", NON_PERIODIC)
def test_convergence_second_difference_with_boundaries(x64, placement, bc, u, uxx):
    """Odd (Dirichlet) or even (Neumann) u about each face: widths 1 and 2 ghosts are exact."""
    stencils = [second(2), second(4)]
    grids = [Grid((n,), extent=1.0, placement=placement) for n in SIZES]
    us = [jnp.asarray(u(g.coordinates(0))[None]) for g in grids]
    outs = run(
        lambda ss, us, bc: [[s(v, g, bc) for v, g in zip(us, grids)] for s in ss],
        stencils,
        us,
        bc(),
    )
    hs = [g.spacing[0] for g in grids]
    for out, expected in zip(outs, (2, 4)):
        errors = [np.abs(o[0] - uxx(g.coordinates(0))).max() for o, g in zip(out, grids)]
        assert abs(slope(hs, errors) - expected) < 0.2, errors


def test_exact_up_to_the_boundary(x64):
    """Ghosts are exact for linear u (Dirichlet) and quadratic u (Neumann), so are stencils."""
    cell, vertex = (
        Grid((7,), extent=2.0, placement="cell"),
        Grid((7,), extent=2.0, placement="vertex"),
    )
    xc, xv = cell.coordinates(0), vertex.coordinates(0)
    linear = lambda x: 0.5 - 1.5 * x  # noqa: E731  u(0) = 0.5, u(2) = -2.5
    quadratic = lambda x: (x - 0.3) ** 2  # noqa: E731  u'(0) = -0.6, u'(2) = 3.4
    dirichlet = ((Dirichlet(0.5), Dirichlet(-2.5)),)
    neumann = ((Neumann(0.6), Neumann(3.4)),)
    first = [central(1, 2), central(1, 4), central(1, 6), forward(1, 3), backward(1, 3)]
    seconds = [second(2), second(4), second(6)]

    def apply(first, seconds, lc, lv, q):
        return (
            [s(lc, cell, dirichlet) for s in first],
            [s(lv, vertex, dirichlet) for s in first],
            [s(q, cell, neumann) for s in first[:3]],
            [s(q, cell, neumann) for s in seconds],
        )

    inputs = [jnp.asarray(f(x)[None]) for f, x in ((linear, xc), (linear, xv), (quadratic, xc))]
    lin_cell, lin_vertex, quad_first, quad_second = run(apply, first, seconds, *inputs)
    for out in lin_cell + lin_vertex:
        np.testing.assert_allclose(out[0], -1.5, rtol=1e-12)
    for out in quad_first:
        np.testing.assert_allclose(out[0], 2 * (xc - 0.3), rtol=1e-11, atol=1e-12)
    for out in quad_second:
        np.testing.assert_allclose(out[0], 2.0, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Upwinding


def naive_one_sided(u, h, accuracy, forward_side):
    """Periodic one-sided differences along the last axis with np.roll."""
    s = -1 if forward_side else 1  # roll by s brings u[i - s] to i
    if accuracy == 1:
        return s * (u - np.roll(u, s, axis=-1)) / h
    return s * (3 * u - 4 * np.roll(u, s, axis=-1) + np.roll(u, 2 * s, axis=-1)) / (2 * h)


@pytest.mark.parametrize("accuracy", [1, 2])
def test_upwind_picks_the_side_against_the_flow(accuracy):
    rng = np.random.default_rng(2)
    grid_1d = Grid((10,), extent=2.0, placement="periodic")
    grid_2d = Grid((4, 10), extent=(1.0, 2.0), placement=("cell", "periodic"))
    u1, u2 = rng.normal(size=(1, 10)), rng.normal(size=(1, 4, 10))
    v1 = np.array([[1.0, -1.0, 0.0, 2.0, 2.0, -0.5, -0.5, 0.0, 3.0, -3.0]])
    v2 = rng.choice([-1.0, 0.0, 1.0], size=(1, 4, 10))
    bc_2d = ("dirichlet", "periodic")

    def apply(u1, u2, v1, v2):
        return (
            upwind(u1, v1, grid_1d, "periodic", accuracy=accuracy),
            upwind(u1, v1[0], grid_1d, "periodic", accuracy=accuracy),  # spatial shape only
            [upwind(u1, c, grid_1d, "periodic", accuracy=accuracy) for c in (2.0, -2.0, 0.0)],
            upwind(u2, v2, grid_2d, bc_2d, axis=1, accuracy=accuracy),
        )

    args = [jnp.asarray(a, dtype=jnp.float32) for a in (u1, u2, v1, v2)]
    field, spatial, (pos, neg, zero), field_2d = run(apply, *args)
    h = grid_1d.spacing[0]
    assert grid_2d.spacing[1] == h
    back, fwd = naive_one_sided(u1, h, accuracy, False), naive_one_sided(u1, h, accuracy, True)
    np.testing.assert_allclose(field, np.where(v1 > 0, back, fwd), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(spatial, field)
    np.testing.assert_allclose(pos, back, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(neg, fwd, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(zero, fwd, rtol=1e-5, atol=1e-4)
    back, fwd = naive_one_sided(u2, h, accuracy, False), naive_one_sided(u2, h, accuracy, True)
    np.testing.assert_allclose(field_2d, np.where(v2 > 0, back, fwd), rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Stencil <-> convolution kernel


@pytest.mark.parametrize(
    "stencil, kernel",
    [
        (central(1, 4), np.array([1, -8, 0, 8, -1]) / 12),
        (forward(), [0, -1, 1]),
        (backward(), [-1, 1, 0]),
        (forward(1, 2), [0, 0, -3 / 2, 2, -1 / 2]),
        (Stencil((-2, 1), [1.0, 2.0], order=1), [1, 0, 0, 2, 0]),
        (Stencil((0,), [3.0]), [3]),
    ],
)
def test_to_kernel_and_back(stencil, kernel):
    grid = Grid((8, 10), extent=(1.0, 2.5))
    hs = grid.spacing

    def convert(stencil):
        scaled = [stencil.to_kernel(grid, axis=a) for a in (0, 1)]
        backs = [Stencil.from_kernel(k, stencil.order, h) for k, h in zip(scaled, hs)]
        return stencil.to_kernel(), scaled, backs

    plain, scaled, backs = run(convert, stencil)
    np.testing.assert_allclose(plain, kernel, rtol=1e-6)
    r = len(kernel) // 2
    for axis, shape in ((0, (2 * r + 1, 1)), (1, (1, 2 * r + 1))):
        assert scaled[axis].shape == shape
        expected = np.asarray(kernel) * hs[axis] ** -stencil.order
        np.testing.assert_allclose(scaled[axis].ravel(), expected, rtol=1e-5)
        back = backs[axis]
        assert back.offsets == tuple(range(-r, r + 1)) and back.order == stencil.order
        np.testing.assert_allclose(back.weights, kernel, rtol=1e-5, atol=1e-6)
        assert back.accuracy == stencil.accuracy


@pytest.mark.parametrize("stencil", [central(1, 4), forward(1, 2), backward(2, 1)])
def test_kernel_as_cross_correlation_matches_stencil(stencil):
    rng = np.random.default_rng(3)
    grid_1d = Grid((12,), extent=3.0, placement="periodic")
    grid_2d = Grid((6, 7), extent=(1.0, 2.0), placement="periodic")
    u1 = jnp.asarray(rng.normal(size=(1, 12)), dtype=jnp.float32)
    u2 = jnp.asarray(rng.normal(size=(1, 6, 7)), dtype=jnp.float32)
    r = max(abs(o) for o in stencil.offsets)

    def apply(stencil, u1, u2):
        kernel = stencil.to_kernel(grid_1d)
        wrapped = jnp.pad(u1[0], r, mode="wrap")
        correlated = jnp.correlate(wrapped, kernel, mode="valid")
        convolved = jnp.convolve(wrapped, kernel[::-1], mode="valid")  # convolution flips
        conv_2d = []
        for axis in (0, 1):
            widths = [(0, 0), (0, 0), (0, 0)]
            widths[axis + 1] = (r, r)
            wrapped_2d = jnp.pad(u2, widths, mode="wrap")[None]  # (batch, channel, H, W)
            rhs = stencil.to_kernel(grid_2d, axis)[None, None]  # (out, in, kh, kw)
            conv_2d.append(lax.conv_general_dilated(wrapped_2d, rhs, (1, 1), "VALID")[0])
        direct_2d = [stencil(u2, grid_2d, "periodic", axis=a) for a in (0, 1)]
        return correlated, convolved, stencil(u1, grid_1d, "periodic"), conv_2d, direct_2d

    correlated, convolved, direct, conv_2d, direct_2d = run(apply, stencil, u1, u2)
    np.testing.assert_allclose(correlated, direct[0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(convolved, direct[0], rtol=1e-5, atol=1e-4)
    for conv, ref in zip(conv_2d, direct_2d):
        np.testing.assert_allclose(conv, ref, rtol=1e-5, atol=1e-3)


def test_stencil_under_jit_and_grad():
    """Traced weights (zeros not skipped) give the eager result; weights are learnable leaves."""
    grid = Grid((9,), extent=2.0, placement="periodic")
    u = jnp.asarray(np.random.default_rng(4).normal(size=(1, 9)), dtype=jnp.float32)
    stencil = central(1, 2)  # its middle weight is zero
    eager = np.asarray(stencil(u, grid, "periodic"))
    traced, grads = run(
        lambda s, u: (s(u, grid, "periodic"), jax.grad(lambda s: s(u, grid, "periodic").sum())(s)),
        stencil,
        u,
    )
    np.testing.assert_allclose(traced, eager, rtol=1e-6, atol=1e-6)
    # d/dw_k sum_i h^-1 w_k u[i + o_k] = h^-1 sum(u) on a periodic grid, for every k
    h = grid.spacing[0]
    np.testing.assert_allclose(grads.weights, np.full(3, float(np.sum(u)) / h), rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# Errors

GRID_1D = Grid((5,))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Stencil.from_kernel(np.ones(4)), "got shape (4,)."),
        (lambda: Stencil.from_kernel(np.ones((2, 1))), "got shape (2, 1)."),
        (
            lambda: Stencil.from_kernel(np.ones((3, 3))),
            "`kernel` must have odd length along one axis and size 1 along the others, got "
            "shape (3, 3).",
        ),
        (
            lambda: Stencil((-1, 0, 1), np.ones(2)),
            "`weights` must have shape (3,) to match `offsets` (-1, 0, 1), got (2,).",
        ),
        (
            lambda: Stencil((0, 1, 0), np.ones(3)),
            "`offsets` must be distinct ints, at least one, got (0, 1, 0).",
        ),
        (
            lambda: Stencil((), np.ones(0)),
            "`offsets` must be distinct ints, at least one, got ().",
        ),
        (
            lambda: Stencil((0, 1), np.ones(2), order=-1),
            "`order` must be a non-negative int, got -1.",
        ),
        (
            lambda: central()(np.ones((1, 5)), GRID_1D, "periodic", axis=1),
            "`axis` must be a spatial axis in [0, 0] (channels are not counted), got 1.",
        ),
        (
            lambda: central().to_kernel(Grid((4, 4)), axis=2),
            "`axis` must be a spatial axis in [0, 1] (channels are not counted), got 2.",
        ),
        (
            lambda: upwind(np.ones((1, 5)), 1.0, GRID_1D, "periodic", axis=-1),
            "`axis` must be a spatial axis in [0, 0] (channels are not counted), got -1.",
        ),
        (lambda: central(1, 3), "`accuracy` of a central stencil must be even, got 3."),
        (lambda: second(5), "`accuracy` of a central stencil must be even, got 5."),
        (lambda: central(1, 1), "`accuracy` must be an int >= 2, got 1."),
        (lambda: forward(0), "`order` must be an int >= 1, got 0."),
        (lambda: backward(0, 2), "`order` must be an int >= 1, got 0."),
        (lambda: central(0), "`order` must be an int >= 1, got 0."),
        (lambda: forward(1, 0), "`accuracy` must be an int >= 1, got 0."),
        (
            lambda: fornberg_weights((0, 1), 2),
            "A derivative of order 2 needs more than 2 offsets, got 2: (0, 1).",
        ),
        (lambda: Stencil.from_offsets((0,), 1), "needs more than 1 offsets, got 1: (0,)."),
        (lambda: fornberg_weights((0, 1, 1), 1), "`offsets` must be distinct, got (0, 1, 1)."),
        (lambda: fornberg_weights((0, 1), -1), "`order` must be a non-negative int, got -1."),
        (lambda: fornberg_weights((0, 1), 1.0), "`order` must be a non-negative int, got 1.0."),
        (
            lambda: second()(np.ones((1, 5)), Grid((5,), placement="vertex"), "neumann"),
            "`Neumann` does not fit a grid with placement 'vertex'",
        ),
        (
            lambda: central(1, 6)(np.ones((1, 2)), Grid((2,)), "periodic"),
            "`width` 3 exceeds the 2 points of axis 0.",
        ),
    ],
)
def test_stencil_errors(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()
