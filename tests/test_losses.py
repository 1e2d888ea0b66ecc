"""Tests of the time-level losses: naive NumPy oracles, analytic values, Parseval, errors."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd.losses import (
    MAE,
    MSE,
    RMSE,
    FourierBand,
    NormalizedMAE,
    NormalizedMSE,
    Sobolev,
    Weighted,
)
from trainax_fd.stencil import Dirichlet, Grid


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """Run a test in float32 and, with the `x64` fixture, in float64."""
    if request.param == "float64":
        request.getfixturevalue("x64")
    return jnp.dtype(request.param)


def _tol(dtype) -> dict:
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == jnp.float32 else {"rtol": 1e-11, "atol": 0}


def _random(seed: int, shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


# One sample per case: a single array in 1D, one in 2D, and a PyTree of two leaves whose
# shapes differ.
SHAPES = {"1d": [(3, 16)], "2d": [(2, 8, 6)], "tree": [(2, 16), (1, 8, 6)]}


def _as_sample(arrays, dtype, case):
    leaves = [jnp.asarray(a, dtype=dtype) for a in arrays]
    return {"u": leaves[0], "p": leaves[1]} if case == "tree" else leaves[0]


def _naive_leaf(name, p, t):
    d = p - t
    return {
        "mse": np.mean(d**2),
        "mae": np.mean(np.abs(d)),
        "rmse": np.sqrt(np.mean(d**2)),
        "nmse": np.mean(d**2) / np.mean(t**2),
        "nmae": np.mean(np.abs(d)) / np.mean(np.abs(t)),
    }[name]


LOSSES = {
    "mse": MSE(),
    "mae": MAE(),
    "rmse": RMSE(),
    "nmse": NormalizedMSE(),
    "nmae": NormalizedMAE(),
}


def test_pointwise_against_numpy(dtype):
    """1D, 2D and a two-leaf PyTree, all losses, in one compiled program per dtype."""
    cases = sorted(SHAPES)
    raw = {case: (_random(0, SHAPES[case]), _random(1, SHAPES[case])) for case in cases}
    samples = {
        case: (_as_sample(ps, dtype, case), _as_sample(ts, dtype, case))
        for case, (ps, ts) in raw.items()
    }

    @jax.jit
    def all_losses(samples):
        return {
            case: {name: loss(p, t) for name, loss in LOSSES.items()}
            for case, (p, t) in samples.items()
        }

    got = all_losses(samples)
    for case, (ps, ts) in raw.items():
        # Round the oracle's inputs to the tested dtype, then compute in float64.
        ps = [np.asarray(jnp.asarray(a, dtype=dtype), dtype=np.float64) for a in ps]
        ts = [np.asarray(jnp.asarray(a, dtype=dtype), dtype=np.float64) for a in ts]
        for name in LOSSES:
            value = got[case][name]
            assert value.dtype == dtype
            expected = sum(_naive_leaf(name, p, t) for p, t in zip(ps, ts))  # sum over leaves
            np.testing.assert_allclose(float(value), expected, **_tol(dtype), err_msg=name)


def _naive_sobolev(d, h, weight, dirichlet=False):
    """MSE plus weight times the mean squared central difference, by explicit loops."""
    d = np.asarray(d, dtype=np.float64)
    total = np.mean(d**2)
    for a, ha in enumerate(h):
        ax = a + 1
        n = d.shape[ax]
        deriv = np.zeros_like(d)
        for i in range(n):
            left = np.take(d, i - 1, axis=ax) if i > 0 else None
            right = np.take(d, i + 1, axis=ax) if i < n - 1 else None
            if dirichlet:  # cell grid, zero value: odd reflection about the face
                left = -np.take(d, 0, axis=ax) if left is None else left
                right = -np.take(d, n - 1, axis=ax) if right is None else right
            else:  # periodic
                left = np.take(d, n - 1, axis=ax) if left is None else left
                right = np.take(d, 0, axis=ax) if right is None else right
            idx = [slice(None)] * d.ndim
            idx[ax] = i
            deriv[tuple(idx)] = (right - left) / (2 * ha)
        total += weight * np.mean(deriv**2)
    return total


def test_sobolev_against_naive(dtype):
    grid2 = Grid((8, 6), extent=(1.0, 2.0))
    grid1 = Grid((16,), extent=3.0)
    rng = np.random.default_rng(2)
    u, v = rng.standard_normal((2, 8, 6)), rng.standard_normal((1, 8, 6))
    tu, tv = rng.standard_normal((2, 8, 6)), rng.standard_normal((1, 8, 6))
    w = rng.standard_normal((3, 16))
    cast = lambda a: jnp.asarray(a, dtype=dtype)  # noqa: E731
    f64 = lambda a: np.asarray(cast(a), dtype=np.float64)  # noqa: E731
    periodic = Sobolev(grid2, "periodic", order_weight=0.3)
    dirichlet = Sobolev(grid1, Dirichlet(0.0), order_weight=2.0)

    @jax.jit
    def run(pred, targ, single):
        return periodic(pred, targ), dirichlet(single)

    tree_loss, residuum = run({"u": cast(u), "v": cast(v)}, {"u": cast(tu), "v": cast(tv)}, cast(w))
    h2 = grid2.spacing
    expected = _naive_sobolev(f64(u) - f64(tu), h2, 0.3) + _naive_sobolev(f64(v) - f64(tv), h2, 0.3)
    np.testing.assert_allclose(float(tree_loss), expected, **_tol(dtype))
    expected = _naive_sobolev(f64(w), grid1.spacing, 2.0, dirichlet=True)
    np.testing.assert_allclose(float(residuum), expected, **_tol(dtype))


def test_sobolev_sine_analytic(x64):
    """`d = sin(2 pi m x)`: MSE 1/2 and derivative term (2 pi m)^2 / 2, up to O(h^2)."""
    m, weight, sizes = 2, 0.5, (32, 64)
    grids = [Grid((n,), extent=1.0, placement="periodic") for n in sizes]

    @jax.jit
    def run():
        out = []
        for grid in grids:
            (x,) = grid.mesh(dtype=jnp.float64)
            d = jnp.sin(2 * jnp.pi * m * x)[None]
            out.append(Sobolev(grid, "periodic", order_weight=weight)(d))
        return out

    k, errors = 2 * np.pi * m, []
    for grid, got in zip(grids, run()):
        h = grid.spacing[0]
        # The central difference of sin(kx) is sin(kh)/h cos(kx): exact discrete value.
        exact = 0.5 + weight * (np.sin(k * h) / h) ** 2 / 2
        np.testing.assert_allclose(float(got), exact, rtol=1e-12)
        errors.append(abs(float(got) - (0.5 + weight * k**2 / 2)))
        assert errors[-1] / (weight * k**2 / 2) < (k * h) ** 2 / 2
    assert 3.5 < errors[0] / errors[1] < 4.5  # second order


def test_target_none_equals_zero_target():
    grid = Grid((8, 6))
    losses = (
        MSE(),
        MAE(),
        RMSE(),
        Sobolev(grid, "periodic"),
        FourierBand(1, 3),
        Weighted((MSE(), FourierBand(0, 2)), weights=[2.0, 0.5]),
    )
    p = jnp.asarray(np.random.default_rng(3).standard_normal((2, 8, 6)), dtype=jnp.float32)

    @jax.jit
    def run(p):
        return [(loss(p), loss(p, jnp.zeros_like(p))) for loss in losses]

    for none, zero in run(p):
        np.testing.assert_allclose(float(none), float(zero), rtol=1e-6)


def test_normalized_scale_invariant(x64):
    rng = np.random.default_rng(4)
    shapes = {"a": (2, 16), "b": (1, 4, 5)}
    p = {key: jnp.asarray(rng.standard_normal(shape)) for key, shape in shapes.items()}
    t = {key: jnp.asarray(rng.standard_normal(shape)) for key, shape in shapes.items()}
    scales = (1.0, 1e-3, 7.0, -2.5)
    losses = (NormalizedMSE(), NormalizedMAE())
    ones, zero = jnp.ones((1, 4)), jnp.zeros((1, 4))

    @jax.jit
    def run(p, t):
        scaled = [
            [loss(*jax.tree_util.tree_map(lambda x, s=s: s * x, (p, t))) for s in scales]
            for loss in losses
        ]
        guarded = (
            NormalizedMSE()(ones, zero),
            NormalizedMSE(eps=0.5)(ones, zero),
            NormalizedMAE(eps=0.25)(ones, zero),
        )
        return scaled, guarded

    scaled, (unguarded, mse_eps, mae_eps) = run(p, t)
    for values in scaled:
        np.testing.assert_allclose(np.asarray(values), float(values[0]), rtol=1e-12)
    # A zero target: inf or nan with the default eps, finite with eps > 0.
    assert not np.isfinite(float(unguarded))
    np.testing.assert_allclose(float(mse_eps), 2.0)
    np.testing.assert_allclose(float(mae_eps), 4.0)


PARSEVAL_SHAPES = [(2, 16), (1, 15), (2, 8, 6), (1, 7, 5), (1, 4, 6, 5)]


def test_fourier_band_parseval(x64):
    """The full band equals the MSE; two adjacent bands add up to it (1D, 2D, 3D, odd, even)."""
    rng = np.random.default_rng(5)
    pairs = [
        (jnp.asarray(rng.standard_normal(s)), jnp.asarray(rng.standard_normal(s)))
        for s in PARSEVAL_SHAPES
    ]

    @jax.jit
    def run(pairs):
        out = []
        for p, t in pairs:
            kmax = max(p.shape[1:]) // 2
            parts = FourierBand(0, 2)(p, t) + FourierBand(3, kmax)(p, t)
            out.append((MSE()(p, t), FourierBand(0, kmax)(p, t), parts))
        (p, t), (q, _) = pairs[0], pairs[2]
        tree = {"a": p, "b": q}  # two leaves of different shapes
        wide = FourierBand(0, 1000)(p, t)
        return out, (MSE()(tree), FourierBand(0, 1000)(tree), MSE()(p, t), wide)

    per_shape, tree_and_wide = run(pairs)
    for mse, full, parts in per_shape:
        np.testing.assert_allclose([float(full), float(parts)], float(mse), rtol=1e-12)
    tree_mse, tree_full, mse, wide = map(float, tree_and_wide)
    np.testing.assert_allclose([tree_full, wide], [tree_mse, mse], rtol=1e-12)


def test_fourier_band_single_mode(x64):
    """A single mode lands only in the band that holds its wavenumber (Nyquist included)."""
    n = 16
    i = np.arange(n)
    one_d = {
        3: np.cos(2 * np.pi * 3 * i / n + 0.4),
        0: np.full(n, 1.5),
        n // 2: np.cos(np.pi * i),  # Nyquist: real, counted once
    }
    # 2D, 16 x 12: wavenumbers (2, -5) have max |k_a| = 5.
    x, y = np.meshgrid(np.arange(16) / 16, np.arange(12) / 12, indexing="ij")
    signals = {k: jnp.asarray(s)[None] for k, s in one_d.items()}
    signals[5] = jnp.asarray(np.sin(2 * np.pi * (2 * x - 5 * y)))[None]

    @jax.jit
    def run(signals):
        out = {}
        for k, d in signals.items():
            below = FourierBand(0, k - 1)(d) if k > 0 else jnp.zeros((), d.dtype)
            out[k] = (MSE()(d), FourierBand(k, k)(d), below, FourierBand(k + 1, 100)(d))
        return out

    for mse, inside, below, above in run(signals).values():
        np.testing.assert_allclose(float(inside), float(mse), rtol=1e-12)
        assert float(below) < 1e-24
        assert float(above) < 1e-24


def test_weighted(dtype):
    grid = Grid((8, 6))
    members = (MSE(), MAE(), Sobolev(grid, "periodic"), FourierBand(1, 2))
    weights = np.array([0.5, 2.0, 0.1, 3.0])
    loss = Weighted(members, weights=weights)
    rng = np.random.default_rng(6)
    p = jnp.asarray(rng.standard_normal((2, 8, 6)), dtype=dtype)
    t = jnp.asarray(rng.standard_normal((2, 8, 6)), dtype=dtype)

    @jax.jit
    def run(loss, p, t):
        singles = jnp.stack([m(p, t) for m in loss.losses])
        grad_w = jax.grad(lambda w: eqx.tree_at(lambda m: m.weights, loss, w)(p, t))
        return loss(p, t), singles, grad_w(loss.weights)

    total, singles, grad_w = run(loss, p, t)
    assert total.dtype == dtype
    expected = float(np.sum(weights * np.asarray(singles, dtype=np.float64)))
    np.testing.assert_allclose(float(total), expected, **_tol(dtype))
    np.testing.assert_allclose(np.asarray(grad_w), np.asarray(singles), **_tol(dtype))


def test_grad_mse(dtype):
    rng = np.random.default_rng(7)
    p = {
        "a": jnp.asarray(rng.standard_normal((2, 8)), dtype=dtype),
        "b": jnp.asarray(rng.standard_normal((1, 3, 4)), dtype=dtype),
    }
    t = jax.tree_util.tree_map(lambda x: x[..., ::-1] * 0.5, p)
    grads = jax.jit(jax.grad(MSE()))(p, t)
    for key in p:
        expected = 2 * (np.asarray(p[key], np.float64) - np.asarray(t[key], np.float64))
        np.testing.assert_allclose(
            np.asarray(grads[key], np.float64), expected / p[key].size, **_tol(dtype)
        )


def test_vmap_equals_loop():
    grid = Grid((8,))
    losses = (MSE(), RMSE(), NormalizedMAE(), Sobolev(grid, "periodic"), FourierBand(1, 4))
    rng = np.random.default_rng(8)
    P = jnp.asarray(rng.standard_normal((3, 2, 8)), dtype=jnp.float32)
    T = jnp.asarray(rng.standard_normal((3, 2, 8)), dtype=jnp.float32)

    @jax.jit
    def run(P, T):
        batched = [jax.vmap(loss)(P, T) for loss in losses]
        looped = [jnp.stack([loss(P[i], T[i]) for i in range(P.shape[0])]) for loss in losses]
        return batched, looped

    for b, looped_b in zip(*run(P, T)):
        assert b.shape == (3,)
        np.testing.assert_allclose(np.asarray(b), np.asarray(looped_b), rtol=1e-6)
    # Vmapping over a loss parameter (an array leaf) needs no recompilation per value.
    weights = jnp.asarray([0.0, 1.0, 2.0], dtype=jnp.float32)
    sweep = jax.jit(jax.vmap(lambda w: Sobolev(grid, "periodic", order_weight=w)(P[0], T[0])))
    swept = sweep(weights)
    slope = float(swept[1] - swept[0])
    np.testing.assert_allclose(float(swept[2] - swept[0]), 2 * slope, rtol=1e-5)


def test_no_retrace():
    traces = []
    loss = Weighted((MSE(), FourierBand(0, 3)), weights=[1.0, 1.0])

    @eqx.filter_jit
    def f(loss, p, t):
        traces.append(None)
        return loss(p, t)

    p = jnp.ones((2, 8), dtype=jnp.float32)
    f(loss, p, p)
    f(Weighted((MSE(), FourierBand(0, 3)), weights=[3.0, 1.0]), 2 * p, p)
    assert len(traces) == 1


def test_errors():
    p = jnp.zeros((2, 8), dtype=jnp.float32)
    tree = {"a": p, "b": p}
    bad_tree = {"a": p, "c": p}
    structure = jax.tree_util.tree_structure(tree)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"`target` must have the PyTree structure of `prediction`, {structure}, got "
            f"{jax.tree_util.tree_structure(bad_tree)}."
        ),
    ):
        MSE()(tree, bad_tree)
    batch = jnp.zeros((4, 2, 8), dtype=jnp.float32)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`prediction` and `target` must have the same shape, got (4, 2, 8) and (2, 8) "
            "(leaf 0). Losses act on one sample `(channels, *spatial)`; batch with `jax.vmap` "
            "at the call site."
        ),
    ):
        MSE()(batch, p)
    with pytest.raises(
        ValueError, match=re.escape("`prediction` must hold at least one array leaf")
    ):
        MSE()({}, {})
    for cls in (NormalizedMSE, NormalizedMAE):
        with pytest.raises(
            ValueError,
            match=re.escape(
                f"`target` must be given for `{cls.__name__}`: it normalises by the target's "
                "size, got None."
            ),
        ):
            cls()(p)
    with pytest.raises(
        ValueError, match=re.escape("`eps` must be a non-negative float, got -1.0.")
    ):
        NormalizedMSE(eps=-1.0)
    with pytest.raises(ValueError, match=re.escape("`low` must be a non-negative int, got -1.")):
        FourierBand(-1, 3)
    with pytest.raises(ValueError, match=re.escape("`high` must be a non-negative int, got 2.5.")):
        FourierBand(0, 2.5)
    with pytest.raises(ValueError, match=re.escape("`high` must be at least `low` = 4, got 2.")):
        FourierBand(4, 2)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`prediction` must have shape (channels, *spatial) with at least one spatial axis, "
            "got (8,). Losses act on one sample; batch with `jax.vmap` at the call site."
        ),
    ):
        FourierBand(0, 3)(jnp.zeros((8,), dtype=jnp.float32))
    with pytest.raises(
        ValueError,
        match=re.escape("`weights` must have shape (2,), one weight per loss, got (3,)."),
    ):
        Weighted((MSE(), MAE()), weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=re.escape("`losses` must hold at least one loss")):
        Weighted((), weights=[])
    with pytest.raises(
        TypeError, match=re.escape("`losses` must hold `AbstractLoss` instances, got function.")
    ):
        Weighted((MSE(), lambda p, t: 0.0), weights=[1.0, 1.0])
    with pytest.raises(TypeError, match=re.escape("`grid` must be a `Grid`, got tuple.")):
        Sobolev((8,), "periodic")
    with pytest.raises(
        ValueError, match=re.escape("`order_weight` must be a scalar, got shape (2,).")
    ):
        Sobolev(Grid((8,)), "periodic", order_weight=[1.0, 2.0])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`prediction` must have shape (channels, 8) for this 1D grid, got (4, 2, 8)."
        ),
    ):
        Sobolev(Grid((8,)), "periodic")(batch)
