"""The APEBench advection reproduction: its data equal APEBench's construction, the notebook at
tiny settings, and the command line."""

import pathlib
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd import Grid, reference
from trainax_fd.reproductions import apebench_baseline as ape

NOTEBOOK = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "apebench_baseline.ipynb"

TINY = """import warnings

warnings.simplefilter("error")
warnings.filterwarnings("ignore", module="ipykernel|jupyter_client|zmq|tornado")
NUM_SEEDS = 2
NUM_STEPS = 20
WIDTH, DEPTH = 3, 1
ROLLOUT = 2
TEST_STEPS = 12
CORRECTION_STEPS = 20
VALIDATE_EVERY = 10"""


def test_the_data_are_apebench_s():
    u = ape.apebench_initial(160, key=jax.random.key(5))
    spectrum = np.abs(np.fft.rfft(np.asarray(u[0])))
    assert np.all(spectrum[6:] < 1e-4) and spectrum[0] < 1e-4  # modes 1-5, zero mean
    assert np.isclose(np.abs(u).max(), 1.0)
    stepper = ape.DifficultyLinear(160, (0.0, -4.0))
    np.testing.assert_allclose(stepper(u), jnp.roll(u, 4, -1), atol=1e-5)  # 4 points a step
    data = ape.make_data(num_train=3, train_steps=2, num_test=2, test_steps=3)
    assert data.train.shape == (3, 3, 1, 160) and data.test.shape == (2, 4, 1, 160)
    np.testing.assert_array_equal(data.train[:, 0], ape.apebench_initial_set(160, 3, seed=0))
    assert eqx.filter_eval_shape(ape.convnet, jax.random.key(0)).num_parameters == 31_757
    lecun, uniform = (ape.convnet(jax.random.key(0), width=3, depth=1, init=i)
                      for i in ("lecun", "uniform"))  # fmt: skip
    assert len(lecun.layers) == 2 and not jnp.any(lecun.layers[0].bias)  # flax: zero biases
    assert jnp.all(uniform.layers[0].bias != 0)
    assert ape.within(0.07) and not ape.within(0.09)


def test_the_notebook_at_tiny_settings(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    cells[0].source = TINY
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()  # fmt: skip
    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.outputs]
    streams = [o for o in outputs if o.output_type == "stream"]
    assert not [s.text for s in streams if s.name == "stderr"]
    text = "".join(s.text for s in streams)
    assert "31,757" not in text and "parameters, receptive field (5,)" in text
    assert "physics unchanged: True | complex leaves in the optimizer state: 0" in text
    for label in ("one", "sup-02", "div-02", "corrected"):
        assert f"\n{label:>9}  " in text
    assert "median" in text and "first step with correlation below 0.8" in text
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(figures) == 3


def test_the_command_line(tmp_path, capsys):
    arguments = ["--seeds", "1", "--steps", "3", "--width", "2", "--depth", "1", "--test-steps",
                 "4", "--trainings", "one", "--out", str(tmp_path)]  # fmt: skip
    code = ape.main(arguments)
    assert code == 0
    out = capsys.readouterr().out
    assert "ConvNet width 2, depth 1 (15 parameters, lecun init)" in out
    assert "one-step median" in out and "(small settings; --full for the comparison)" in out
    assert (tmp_path / "apebench_baseline.png").is_file()
    with pytest.raises(SystemExit):
        ape.main(["--trainings", "two"])
    assert "--trainings must name some of one, sup, div, got 'two'" in capsys.readouterr().err


class ExponaxStyle(eqx.Module):
    """An initial-condition generator called as exponax's: `generator(num_points, *, key)`."""

    num_spatial_dims: int = 1

    def __call__(self, num_points, *, key):
        return jax.random.normal(key, (1, num_points))


def test_initial_conditions_from_any_generator():
    grid = Grid((16,), placement="periodic")
    ours = reference.initial_conditions(reference.random_fourier, grid, 3, key=jax.random.key(1))
    expected = reference.random_fourier(grid, key=jax.random.split(jax.random.key(1), 3))
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    theirs = reference.initial_conditions(ExponaxStyle(), grid, 3, key=jax.random.key(2))
    keys = jax.random.split(jax.random.key(2), 3)
    np.testing.assert_allclose(theirs, jnp.stack([jax.random.normal(k, (1, 16)) for k in keys]))
    assert reference.initial_conditions(ExponaxStyle(), 8, 2, key=jax.random.key(2)).shape == (
        2, 1, 8
    )  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: reference.initial_conditions(3, 8, 2, key=jax.random.key(0)), TypeError,
         "`generator` must be callable, got int."),
        (lambda: reference.initial_conditions(ExponaxStyle(), Grid((8,)), 2,
                                              key=jax.random.key(0)), ValueError,
         "`where` must be a periodic grid of 1 equal sides for this exponax generator (or the "
         "points per axis, an int), got"),
        (lambda: reference.initial_conditions(ExponaxStyle(), 0, 2, key=jax.random.key(0)),
         ValueError, "`where` must be an int >= 1, got 0."),
        (lambda: reference.initial_conditions(reference.random_fourier, 8, 2,
                                              key=jax.random.key(0)), TypeError,
         "`where` must be a `Grid` for the generator"),
        (lambda: reference.initial_conditions(ExponaxStyle(), 8, 0, key=jax.random.key(0)),
         ValueError, "`num_samples` must be an int >= 1, got 0."),
        (lambda: ape.DifficultyLinear(160, ()), ValueError,
         "`difficulties` must hold at least one value, got ()."),
        (lambda: ape.DifficultyLinear(1), ValueError, "`num_points` must be an int >= 2, got 1."),
        (lambda: ape.convnet(jax.random.key(0), init="xavier"), ValueError,
         "`init` must be 'lecun' or 'uniform', got 'xavier'."),
        (lambda: ape.apebench_initial_set(160, 0, seed=0), ValueError,
         "`num_samples` must be an int >= 1, got 0."),
    ],
)  # fmt: skip
def test_errors(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
