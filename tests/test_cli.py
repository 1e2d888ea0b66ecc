import jax
import matplotlib
import numpy as np
import pytest

import trainax_fd as tf
from trainax_fd._cli import main
from trainax_fd.plot import snapshot, spacetime

matplotlib.use("Agg")


def test_main_job_prints_summary_and_writes_figure(tmp_path, capsys):
    assert main(["--samples", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("advection (upwind)", "diffusion (explicit)", "burgers (upwind)", "heat 2D"):
        assert name in out
    assert "(2, 101, 1, 40)" in out  # samples, time (with the initial state), channels, space
    residuals = out.split("max residual ")[1].split(" in ")[0].split(" -> ")
    assert float(residuals[1]) < 1e-3 * float(residuals[0])
    figure = tmp_path / "reference_trajectories.png"
    assert figure.stat().st_size > 10_000
    assert str(figure) in out
    # the training stage: a 3-point StencilConv recovers the upwind stencil (0, 0.59, 0.41)
    learned = [float(w) for w in out.split("  learned ")[1].split("\n")[0].split()]
    np.testing.assert_allclose(learned, [0.0, 0.59, 0.41], atol=1e-5)
    assert float(out.split("max |learned - upwind| = ")[1].split()[0]) < 1e-5
    figure = tmp_path / "learned_upwind.png"
    assert figure.stat().st_size > 10_000 and str(figure) in out


def test_main_job_rejects_bad_sample_count(capsys):
    with pytest.raises(SystemExit):
        main(["--samples", "0"])
    assert "--samples must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--steps", "0"])
    assert "--steps must be >= 1, got 0" in capsys.readouterr().err


def test_spacetime_and_snapshot_draw_the_data():
    import matplotlib.pyplot as plt

    line = tf.Grid((8,), 2.0)
    data = np.arange(3 * 8, dtype=np.float32).reshape(3, 1, 8)
    image = spacetime(data, line, dt=0.5)
    np.testing.assert_array_equal(image.get_array(), data[:, 0])
    assert image.get_extent() == [0.0, 2.0, 0.0, 1.0]
    plane = tf.Grid((4, 6))
    u = np.random.default_rng(0).normal(size=(2, 4, 6))
    image = snapshot(u, plane, channel=1)
    np.testing.assert_array_equal(image.get_array(), u[1].T)
    plt.close("all")


def test_plot_shape_errors():
    with pytest.raises(ValueError, match=r"must have shape \(time, channels, 8\) on a 1D grid"):
        spacetime(np.zeros((3, 8)), tf.Grid((8,)))
    with pytest.raises(ValueError, match=r"must have shape \(channels, 4, 6\) on a 2D grid"):
        snapshot(np.zeros((1, 6, 4)), tf.Grid((4, 6)))


def test_readme_examples_run_and_find_what_they_say():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = [b.split("```")[0] for b in readme.split("```python\n")[1:]]
    assert len(blocks) == 6
    ns: dict = {}
    exec(blocks[0], ns)  # reference data
    assert ns["data"].shape == (16, 51, 1, 128)
    again = jax.vmap(ns["tf"].rollout(ns["stepper"], 50, include_init=True))(ns["u0"])
    np.testing.assert_allclose(np.asarray(again), np.asarray(ns["data"]), atol=1e-6)
    exec(blocks[1], ns)  # a training and its curriculum continuation
    history = np.asarray(ns["result"].loss_history)
    assert int(ns["result"].step) == 400 and history.shape == (400,)
    assert history[-1] < 0.1 * history[0]
    exec(blocks[2], ns)  # pairs and a sampler: both recover upwind at CFL 0.5
    for name in ("fitted", "drawn"):
        np.testing.assert_allclose(ns[name].model.w, [0.5, 0.5, 0.0], atol=1e-4)
    exec(blocks[3], ns)  # a landscape of two rollouts and a sweep
    assert ns["plane"].loss.shape == (2, 21, 21) and np.all(np.isfinite(ns["plane"].loss))
    rows = ns["swept"].summary()
    assert [r["learning_rate"] for r in rows] == pytest.approx([1e-3, 3e-3, 1e-2, 3e-2] * 2)
    assert all(r["failed_at"] is None for r in rows)
    exec(blocks[4], ns)  # architectures
    read = ns["differences"].stencils(order=1)[1][0]
    np.testing.assert_allclose(np.asarray(read.weights), [-0.5, 0.0, 0.5], atol=1e-6)
    history = np.asarray(ns["trained_net"].loss_history)
    assert history.shape == (50,) and history[-1] < history[0]
    exec(blocks[5], ns)  # the trainax layer
    history = np.asarray(ns["loss_history"])
    assert history.shape == (200,) and history[-1] < history[0]
