"""Execute the reproduction notebooks at small settings (outputs are not written back)."""

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"

# 600 Adam steps bring the weights to ~4e-4 (rollout 1) and ~3e-4 (rollout 2) of the upwind
# stencil; the full 3000 steps reach ~1e-7. Any Python warning fails the run.
SMALL_UPWIND = """import warnings

warnings.simplefilter("error")
warnings.filterwarnings("ignore", module="ipykernel|jupyter_client|zmq|tornado")
NUM_STEPS = 600
LANDSCAPE_POINTS = 8
ROLLOUTS = (1, 2)
TOLERANCE = 1e-3"""


def execute(name: str, parameters: str):
    """Run notebook `name` with its `parameters` cell replaced; returns the executed notebook."""
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name} needs exactly one cell tagged `parameters`"
    cells[0].source = parameters
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    return nb


def outputs(nb, output_type: str):
    """All outputs of type `output_type` of the code cells, in order."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    return [o for c in code for o in c.outputs if o.output_type == output_type]


def test_upwind_advection_notebook_recovers_the_upwind_stencil(monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    before = sorted(p.name for p in NOTEBOOKS.iterdir())
    nb = execute("upwind_advection.ipynb", SMALL_UPWIND)
    assert sorted(p.name for p in NOTEBOOKS.iterdir()) == before  # nothing written

    streams = outputs(nb, "stream")
    assert not [s.text for s in streams if s.name == "stderr"]
    text = "".join(s.text for s in streams)
    assert "upwind stencil (w_centre, w_right) = (0.5900000, 0.4100000)" in text
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[0].isdigit():
            rows[int(fields[0])] = [float(f) for f in fields[1:]]
    assert sorted(rows) == [1, 2]
    for w_centre, w_right, error, loss in rows.values():
        assert abs(w_centre - 0.59) < 1e-3 and abs(w_right - 0.41) < 1e-3
        assert error < 1e-3 and loss < 1e-7
    figures = [o for o in outputs(nb, "display_data") if "image/png" in o.data]
    assert len(figures) == 2  # the landscapes and the loss histories


# 400 Adam(0.1) steps already bring the finite-difference net to ~1e-9 of the named stencils;
# 300 upwind steps from the default gates reach the pair to ~1e-2 (3000 steps: ~5e-3).
SMALL_STENCILS = """import warnings

warnings.simplefilter("error")
warnings.filterwarnings("ignore", module="ipykernel|jupyter_client|zmq|tornado")
FD_STEPS = 400
FD_TOLERANCE = 1e-6
UPWIND_STEPS = 300
RANDOM_GATE_SEEDS = 2
DEFAULT_GATE_SEEDS = 2
UPWIND_TOLERANCE = 5e-2"""


def test_learning_stencils_notebook_recovers_the_stencils(monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)
    before = sorted(p.name for p in NOTEBOOKS.iterdir())
    nb = execute("learning_stencils.ipynb", SMALL_STENCILS)
    assert sorted(p.name for p in NOTEBOOKS.iterdir()) == before  # nothing written

    streams = outputs(nb, "stream")
    assert not [s.text for s in streams if s.name == "stderr"]
    text = "".join(s.text for s in streams)
    fd = [line for line in text.splitlines() if line.startswith("finite-difference net:")]
    assert len(fd) == 1 and float(fd[0].split("=")[1]) < 1e-6
    upwind = [line for line in text.splitlines() if line.startswith("default gates:")]
    assert len(upwind) == 1 and upwind[0].startswith("default gates: 2/2 runs reach the pair")
    assert float(upwind[0].split("=")[1]) < 5e-2
    for name in ("forward", "central", "backward"):  # learned beside named, printed
        assert f"learned ({name})" in text and f"{name}()" in text
    figures = [o for o in outputs(nb, "display_data") if "image/png" in o.data]
    assert len(figures) == 1  # the loss histories


SMALL_SWEEP = """import warnings

warnings.simplefilter("error")
warnings.filterwarnings("ignore", module="ipykernel|jupyter_client|zmq|tornado")
NUM_STEPS = 100
LEARNING_RATES = (3e-4, 3e-3)
SEEDS = 2
SAMPLES, POINTS, TIME = 8, 32, 11
WIDTH, DEPTH = 8, 3"""


def test_emulator_sweep_notebook_trains_every_member(monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = execute("emulator_sweep.ipynb", SMALL_SWEEP)
    streams = outputs(nb, "stream")
    assert not [s.text for s in streams if s.name == "stderr"]
    text = "".join(s.text for s in streams)
    table = [line.split() for line in text.splitlines() if line.split()[:1] in (["0"], ["3"])]
    assert len(table) == 2 and all(row[4] == "100" and row[5] == "-" for row in table)
    assert "relative error after 1 / 10 / 40 steps" in text
    figures = [o for o in outputs(nb, "display_data") if "image/png" in o.data]
    assert len(figures) == 1
