"""Rollout evaluation: every metric against a hand-written NumPy formula, the losses they share,
`evaluate` against a hand-written rollout loop, ensembles under vmap, the in-loop validation
metric, tables and plots."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest

from trainax_fd import evaluation as E, losses as L, plot, trainers as T
from trainax_fd.configurations import Supervised
from trainax_fd.stencil import Grid

matplotlib.use("Agg")

RNG = np.random.default_rng(0)


def pair(shape):
    p = RNG.normal(size=shape).astype(np.float32)
    t = RNG.normal(size=shape).astype(np.float32)
    return p, t


def norm2(x):
    return np.sqrt(np.mean(np.square(x)))


def per_channel(fn, p, t):
    return sum(fn(p[c], t[c]) for c in range(p.shape[0]))


FORMULAS = {  # exponax's definitions on a unit domain: per channel, summed over channels
    "MSE": lambda p, t: np.mean((p - t) ** 2),
    "nMSE": lambda p, t: np.mean((p - t) ** 2) / np.mean(t**2),
    "sMSE": lambda p, t: 2 * np.mean((p - t) ** 2) / (np.mean(p**2) + np.mean(t**2)),
    "RMSE": lambda p, t: norm2(p - t),
    "nRMSE": lambda p, t: norm2(p - t) / norm2(t),
    "sRMSE": lambda p, t: 2 * norm2(p - t) / (norm2(p) + norm2(t)),
    "MAE": lambda p, t: np.mean(np.abs(p - t)),
    "nMAE": lambda p, t: np.mean(np.abs(p - t)) / np.mean(np.abs(t)),
    "sMAE": lambda p, t: 2 * np.mean(np.abs(p - t)) / (np.mean(np.abs(p)) + np.mean(np.abs(t))),
}
METRICS = [E.MSE(), E.nMSE(), E.sMSE(), E.RMSE(), E.nRMSE(), E.sRMSE(), E.MAE(), E.nMAE(),
           E.sMAE()]  # fmt: skip


def band_power(x, low, high, derivative=0):
    """The band's mean square of the spectral derivative, from the full FFT."""
    spectrum = np.fft.fftn(x)
    ks = np.meshgrid(*[np.abs(np.fft.fftfreq(n, 1 / n)) for n in x.shape], indexing="ij")
    kmax = np.max(np.stack(ks), axis=0)
    weight = sum(k ** (2 * derivative) for k in ks) if derivative else 1.0
    inside = (kmax >= low) & (kmax <= high)
    return np.sum(np.where(inside, weight * np.abs(spectrum) ** 2, 0.0)) / x.size**2


@pytest.mark.parametrize("shape", [(2, 32), (2, 28, 30)])
def test_metrics_follow_the_formulas(shape):
    p, t = pair(shape)
    metrics = [*METRICS, E.correlation(), *E.fourier_bands(), E.fourier_nRMSE(1, 3, derivative=1)]
    got = jax.jit(lambda p, t: [m(p, t) for m in metrics])(p, t)
    expected = [per_channel(FORMULAS[m.name], p, t) for m in METRICS]

    def corr(a, b):
        return np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))

    expected.append(np.mean([corr(p[c], t[c]) for c in range(2)]))

    def band_nrmse(a, b, low, high, order=0):
        return np.sqrt(band_power(a - b, low, high, order) / band_power(b, low, high, order))

    for low, high in E.BANDS.values():
        high = 10**6 if high is None else high
        expected.append(per_channel(lambda a, b, lo=low, hi=high: band_nrmse(a, b, lo, hi), p, t))
    expected.append(per_channel(lambda a, b: band_nrmse(a, b, 1, 3, 1), p, t))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=2e-5)
    assert [m.name for m in metrics[-4:]] == [
        "fourier_nRMSE_low", "fourier_nRMSE_mid", "fourier_nRMSE_high", "fourier_nRMSE[1,3]d1"
    ]  # fmt: skip


def test_h1_metric_follows_central_differences(x64):
    grid = Grid((16,), extent=2.0, placement="periodic")
    p, t = (x.astype(np.float64) for x in pair((2, 16)))
    h = grid.spacing[0]

    def h1(x):
        dx = (np.roll(x, -1) - np.roll(x, 1)) / (2 * h)
        return np.mean(x**2) + np.mean(dx**2)

    got = E.H1_nRMSE(grid)(p, t)
    expected = per_channel(lambda a, b: np.sqrt(h1(a - b) / h1(b)), p, t)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_metrics_and_losses_are_one_implementation():
    p, t = pair((1, 32))
    grid = Grid((32,), placement="periodic")
    sobolev = L.Sobolev(grid, "periodic")

    def both(p, t):
        return [
            (E.nRMSE()(p, t), jnp.sqrt(L.NormalizedMSE()(p, t))),
            (E.RMSE()(p, t), L.RMSE()(p, t)),
            (E.MAE()(p, t), L.MAE()(p, t)),
            (E.nMAE()(p, t), L.NormalizedMAE()(p, t)),
            # the whole band is the whole error (Parseval), and the metric is the loss's root
            (E.fourier_nRMSE(0)(p, t), E.nRMSE()(p, t)),
            (E.H1_nRMSE(grid)(p, t), jnp.sqrt(sobolev(p, t) / sobolev(t))),
        ]

    for metric, loss in jax.jit(both)(p, t):
        np.testing.assert_allclose(metric, loss, rtol=1e-5)
    assert E.nRMSE().base == L.MSE() and not E.nRMSE().higher_is_better
    assert E.correlation().higher_is_better


def identity(u):
    return u


class Shift(eqx.Module):
    """A damped shift by one point: `u_next = a * roll(u, 1)`."""

    a: jax.Array

    def __call__(self, u):
        return self.a * jnp.roll(u, 1, -1)


def reference_data(samples=4, steps=12, points=16):
    u0 = RNG.normal(size=(samples, 1, points)).astype(np.float32)
    levels = [u0]
    for _ in range(steps):
        levels.append(np.roll(levels[-1], 1, -1))
    return np.stack(levels, axis=1)  # exact shifts: (samples, steps + 1, 1, points)


def test_evaluate_equals_a_hand_written_rollout():
    data = reference_data()
    model = Shift(jnp.asarray(0.9, jnp.float32))
    result = E.evaluate(model, data, metrics=(E.nRMSE(), E.MAE(), E.correlation()),
                        aggregate_steps=5, threshold=0.5)  # fmt: skip
    u, values = data[:, 0], []
    for s in range(1, 13):
        u = 0.9 * np.roll(u, 1, -1)
        ref = data[:, s]
        values.append([[per_channel(FORMULAS[n], u[i], ref[i]) for i in range(4)]
                       for n in ("nRMSE", "MAE")])  # fmt: skip
    values = np.moveaxis(np.asarray(values), 0, -1)  # (metrics, samples, steps)
    np.testing.assert_allclose(result.values[:2], values, rtol=1e-5)
    curves = values.mean(axis=1)
    np.testing.assert_allclose(result.curves[:2], curves, rtol=1e-5)
    np.testing.assert_allclose(result.gmean[:2], np.exp(np.log(curves[:, :5]).mean(-1)), rtol=1e-5)
    np.testing.assert_allclose(result.mean[:2], curves[:, :5].mean(-1), rtol=1e-5)
    # a damped exact shift stays perfectly correlated: nRMSE = 1 - 0.9^s
    np.testing.assert_allclose(result.curve("nRMSE"), 1 - 0.9 ** np.arange(1, 13), rtol=1e-4)
    np.testing.assert_allclose(result.correlation, 1.0, rtol=1e-5)
    assert int(result.correlation_time) == 13  # never below the threshold: steps + 1
    assert result.names == ("nRMSE", "MAE", "correlation")
    shifted = Shift(jnp.asarray(1.0, jnp.float32))
    exact = E.evaluate(shifted, data, num_steps=4)
    assert exact.curves.shape == (1, 4) and float(exact.gmean[0]) < 1e-6


def test_correlation_time_is_the_first_step_below_the_threshold():
    data = reference_data(samples=2, steps=6)
    exact = E.evaluate(Shift(jnp.asarray(1.0, jnp.float32)), data)
    assert int(exact.correlation_time) == 7  # never below the threshold: steps + 1
    still = E.evaluate(identity, data, threshold=0.99)  # the state does not move: decorrelates
    corr = np.asarray(still.correlation)
    first = int(np.argmax(corr < 0.99)) + 1
    assert int(still.correlation_time) == first <= 6


def test_ensembles_vmap_and_show_their_spread():
    data = reference_data()
    members = Shift(jnp.asarray([0.8, 0.9, 1.0], jnp.float32))
    ensemble = E.evaluate_ensemble(members, data, metrics=(E.nRMSE(), E.correlation()))
    assert ensemble.member_shape == (3,) and ensemble.values.shape == (3, 2, 4, 12)
    for i, a in enumerate((0.8, 0.9, 1.0)):
        alone = E.evaluate(Shift(jnp.asarray(a, jnp.float32)), data,
                           metrics=(E.nRMSE(), E.correlation()))  # fmt: skip
        np.testing.assert_allclose(ensemble.curves[i], alone.curves, rtol=1e-6, atol=1e-7)
        assert int(ensemble.correlation_time[i]) == int(alone.correlation_time)
    # plain eqx.filter_vmap gives the same
    vmapped = eqx.filter_vmap(lambda m: E.evaluate(m, data, metrics=(E.nRMSE(), E.correlation())))
    np.testing.assert_allclose(vmapped(members).gmean, ensemble.gmean, rtol=1e-6)
    rows = ensemble.summary()
    assert [r["member"] for r in rows] == [0, 1, 2]
    assert set(rows[0]) == {"member", "nRMSE_gmean", "correlation_mean", "correlation_time"}
    spread = ensemble.spread()["nRMSE_gmean"]
    values = np.asarray(ensemble.gmean[:, 0])
    assert spread == {"median": float(np.median(values)), "min": float(values.min()),
                      "max": float(values.max())}  # fmt: skip
    text = str(ensemble)
    assert text.splitlines()[0].split() == ["member", "nRMSE_gmean", "correlation_mean",
                                            "correlation_time"]  # fmt: skip
    assert [line.split()[0] for line in text.splitlines()[-3:]] == ["median", "min", "max"]
    tidy = ensemble.rows()
    assert len(tidy) == 3 * 2 * 12 and tidy[0] == {
        "member": 0, "metric": "nRMSE", "step": 1, "value": float(ensemble.curves[0, 0, 0])
    }  # fmt: skip
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=re.escape("`to_pandas` needs pandas")):
            ensemble.to_pandas()
    else:
        assert ensemble.to_pandas("curves").shape == (72, 4)


def test_the_validation_rollout_records_evaluate_inside_the_loop():
    data = reference_data(samples=6, steps=8)
    validation = E.ValidationRollout(data[:2], every=3, metrics=(E.nRMSE(), E.correlation()))
    keep = T.KeepStepper(3)
    trainer = T.Trainer(data[2:], Supervised(1), optax.adam(1e-2), num_steps=7, batch_size=4,
                        callbacks=[validation, keep])  # fmt: skip
    model = Shift(jnp.asarray(0.5, jnp.float32))
    result = trainer(model, key=jax.random.key(0), progress=False)
    record = result.metrics["validation"]
    assert record["gmean"].shape == (3, 2) and record["curves"].shape == (3, 2, 8)
    for r in range(3):
        alone = E.evaluate(keep.stepper(result, r, like=model), data[:2],
                           metrics=(E.nRMSE(), E.correlation()))  # fmt: skip
        np.testing.assert_allclose(record["gmean"][r], alone.gmean, rtol=1e-5)
        np.testing.assert_allclose(record["curves"][r], alone.curves, rtol=1e-5)
        assert int(record["correlation_time"][r]) == int(alone.correlation_time)
    assert record["gmean"][-1, 0] < record["gmean"][0, 0]  # training helps


def test_plots_draw_curves_with_spread_and_panels():
    import matplotlib.pyplot as plt

    data = reference_data()
    members = Shift(jnp.asarray([0.8, 0.9], jnp.float32))
    ensemble = E.evaluate_ensemble(members, data)
    single = E.evaluate(Shift(jnp.asarray(0.95, jnp.float32)), data)
    fig = plot.error_curves({"ensemble": ensemble, "single": single})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and len(ax.lines) == 2 and len(ax.collections) == 1
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.median(ensemble.curves[:, 0], 0))
    fig2 = plot.rollout_panels(data[0], Shift(jnp.asarray(0.9, jnp.float32)))
    assert [a.get_title() for a in fig2.axes[:3]] == ["reference", "prediction", "difference"]
    fig3 = plot.rollout_panels(np.zeros((3, 1, 4, 5)), np.ones((3, 1, 4, 5)), times=[0, 2])
    assert len(fig3.axes) == 12  # two rows of three panels, a colour bar each
    plt.close("all")


@pytest.fixture(scope="module")
def cheap():
    return E.evaluate(identity, np.zeros((2, 3, 1, 4), np.float32))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: E.evaluate(Shift(jnp.asarray(1.0)), np.zeros((2, 1, 1, 4))), ValueError,
         "`test_trajectories` must be reference trajectories of shape (samples, time, channels, "
         "*spatial) with at least 2 time levels (the first the initial condition), got shape "
         "(2, 1, 1, 4)."),
        (lambda: E.evaluate(Shift(jnp.asarray(1.0)), np.zeros((2, 3, 1, 4), np.int32)),
         TypeError, "`test_trajectories` must hold floating-point states, got dtype int32."),
        (lambda: E.evaluate(Shift(jnp.asarray(1.0)), np.zeros((2, 3, 1, 4), np.float32),
                            num_steps=3), ValueError,
         "`num_steps` must be at most the 2 steps `test_trajectories` holds after the initial "
         "condition, got 3."),
        (lambda: E.evaluate(Shift(jnp.asarray(1.0)), np.zeros((2, 3, 1, 4), np.float32),
                            aggregate_steps=3), ValueError,
         "`aggregate_steps` must be at most `num_steps` (2), got 3."),
        (lambda: E.evaluate(Shift(jnp.asarray(1.0)), np.zeros((2, 3, 1, 4), np.float32),
                            threshold=2.0), ValueError,
         "`threshold` must be a correlation in [-1, 1], got 2.0."),
        (lambda: E.evaluate(lambda u: u[:, :2], np.zeros((2, 3, 1, 4), np.float32)),
         ValueError, "`stepper` must map one state (1, 4) of dtype float32 to a state of the "
         "same shape and dtype"),
        (lambda: E.evaluate(3, np.zeros((2, 3, 1, 4), np.float32)), TypeError,
         "`stepper` must be callable, got int."),
        (lambda: E.evaluate(lambda u: u, np.zeros((2, 3, 1, 4), np.float32), metrics=()),
         ValueError, "`metrics` must be a metric or a non-empty sequence of metrics"),
        (lambda: E.evaluate(lambda u: u, np.zeros((2, 3, 1, 4), np.float32), metrics=[L.MSE()]),
         TypeError, "`metrics` must hold `trainax_fd.evaluation` metrics (`nRMSE()`, "
         "`Error(...)`, ...), got trainax_fd.losses.MSE."),
        (lambda: E.evaluate(lambda u: u, np.zeros((2, 3, 1, 4), np.float32),
                            metrics=[E.nRMSE(), E.nRMSE()]), ValueError,
         "`metrics` must have unique names, got ['nRMSE', 'nRMSE']."),
        (lambda: E.evaluate(identity, np.zeros((2, 3, 1, 4), np.float32), aggregate_steps=0),
         ValueError, "`aggregate_steps` must be an int >= 1, got 0."),
        (lambda: E.evaluate(identity, np.zeros((2, 3, 1, 4), np.float32), threshold="high"),
         TypeError, "`threshold` must be a float, got str."),
        (lambda: E.evaluate(identity, np.zeros((2, 3, 1, 4), np.float32),
                            canonical_convolutions="yes"), ValueError,
         "`canonical_convolutions` must be True, False or None, got 'yes'."),
        (lambda e: plot.error_curves([e, e], labels=["a"]), ValueError,
         "`labels` must hold 2 labels, one per evaluation, got 1."),
        (lambda: E.Error(E.nRMSE(), root=True, name="x"), TypeError,
         "`base` must be a `trainax_fd.losses` loss (e.g. `MSE()`), got Error."),
        (lambda: E.Error(L.MSE(), "relative", root=True, name="x"), ValueError,
         "`mode` must be one of ('absolute', 'normalized', 'symmetric'), got 'relative'."),
        (lambda: E.Error(L.MSE(), root=1, name="x"), TypeError, "`root` must be a bool, got int."),
        (lambda: E.Correlation(""), ValueError, "`name` must be a non-empty string, got ''."),
        (lambda: E.nRMSE()(np.zeros((1, 4)), np.zeros((1, 5))), ValueError,
         "`prediction` and `target` must be one sample each, arrays of the same shape "
         "(channels, *spatial), for nRMSE, got shapes (1, 4) and (1, 5)."),
        (lambda: E.evaluate_ensemble(Shift(jnp.asarray(1.0)), np.zeros((2, 3, 1, 4))),
         ValueError, "`steppers` must hold the members' arrays stacked on a leading axis"),
        (lambda: E.evaluate_ensemble([jnp.zeros(2), jnp.zeros(3)], np.zeros((2, 3, 1, 4))),
         ValueError, "`steppers` must stack every array on one leading members axis, got "
         "leading sizes [2, 3]."),
        (lambda e: e.to_pandas("x"), ValueError, "`kind` must be 'summary' or 'curves', got 'x'."),
        (lambda e: e.curve("x"), ValueError,
         "`name` must be one of the metrics ('nRMSE',), got 'x'."),
        (lambda: E.ValidationRollout(np.zeros((2, 3, 1, 4), np.float32), 0), ValueError,
         "`every` must be an int >= 1, got 0."),
        (lambda: plot.error_curves([]), ValueError,
         "`evaluations` must be an `Evaluation`, a non-empty sequence of them or a mapping"),
        (lambda: plot.error_curves({"a": 1}), TypeError,
         "`evaluations` must hold `Evaluation`s (from `trainax_fd.evaluation.evaluate`), got "
         "int for 'a'."),
        (lambda: plot.rollout_panels(np.zeros((3, 4)), np.zeros((3, 4))), ValueError,
         "`reference` must be one 1D or 2D trajectory (time, channels, *spatial), got shape "
         "(3, 4)."),
        (lambda: plot.rollout_panels(np.zeros((3, 1, 4)), np.zeros((2, 1, 4))), ValueError,
         "`prediction` must have the shape of `reference` (3, 1, 4), got (2, 1, 4)."),
        (lambda: L.FourierBand(0, 2, derivative=-1), ValueError,
         "`derivative` must be a non-negative int, got -1."),
    ],
)  # fmt: skip
def test_errors(call, error, message, cheap):
    with pytest.raises(error, match=re.escape(message)):
        call(cheap) if call.__code__.co_argcount else call()
