import jax.numpy as jnp
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


def test_readme_example_runs_and_both_ways_agree():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = readme.split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["data"].shape == (16, 101, 1, 256)
    again = namespace["tf"].trajectories(namespace["stepper"], namespace["u0"], 100)
    np.testing.assert_allclose(np.asarray(again), np.asarray(namespace["data"]), atol=1e-6)
    exec(readme.split("```python\n")[2].split("```")[0], namespace)  # the training example
    history = np.asarray(namespace["result"].loss_history)
    assert history.shape == (200,) and history[-1] < 0.1 * history[0]
    assert namespace["result"].metrics["weight_norm"].shape == (4,)
    exec(readme.split("```python\n")[3].split("```")[0], namespace)  # landscape and sweep
    plane, swept = namespace["plane"], namespace["swept"]
    w = np.asarray(namespace["result"].stepper.w)
    assert plane.loss.shape == (1, 9, 9)
    point = namespace["Stencil3"](jnp.array([w[0], 0.6, 0.0]))  # grid point (4, 4)
    want = float(namespace["trainer"].full_loss(point))
    assert float(plane.loss[0, 4, 4]) == pytest.approx(want, rel=1e-5)
    rows = swept.summary()
    assert [r["learning_rate"] for r in rows] == pytest.approx([1e-3, 3e-3, 1e-2, 3e-2])
    losses = np.asarray(swept.results.loss_history)
    assert np.all(losses[:, -1] < losses[:, 0]) and losses[2, -1] < 0.1 * losses[2, 0]
    exec(readme.split("```python\n")[4].split("```")[0], namespace)  # architectures
    from trainax_fd.stencil import backward, central, forward

    u, grid = namespace["u0"][0], namespace["grid"]
    want = jnp.concatenate([s(u, grid, "periodic") for s in (forward(), central(), backward())])
    np.testing.assert_allclose(namespace["du"], want, rtol=1e-5, atol=1e-3)
    read = namespace["differences"].stencils(order=1)[1][0]
    np.testing.assert_allclose(np.asarray(read.weights), [-0.5, 0.0, 0.5], atol=1e-6)
    net = namespace["net"]
    assert (net.num_parameters, net.receptive_field) == (1473, (13,))
    history = np.asarray(namespace["emulator"].loss_history)
    assert history.shape == (50,) and history[-1] < history[0]
