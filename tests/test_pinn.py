"""The PINN reproduction: the notebook at small settings, the command line with tiny sizes."""

import pathlib
import re

import pytest

from trainax_fd.reproductions.pinn import main

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"

# 200 Adam and 200 L-BFGS steps of a 2 x 16 network on 256 points reach ~3e-3 (penalty) and
# ~5e-5 (exact), the disk ~5e-4; the notebook's outputs hold the full sizes' errors.
SMALL = """import warnings

warnings.simplefilter("error")
warnings.filterwarnings("ignore", module="ipykernel|jupyter_client|zmq|tornado")
WIDTH, DEPTH = 16, 2
INTERIOR, BOUNDARY = 256, 64
ADAM_STEPS, LBFGS_STEPS = 200, 200
FD_SIZE = 31
PENALTY_TARGET, EXACT_TARGET = 1e-2, 1e-3
DISK_ADAM_STEPS, DISK_LBFGS_STEPS = 200, 200"""


def test_pinn_notebook_at_small_settings(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    before = sorted(p.name for p in NOTEBOOKS.iterdir())
    nb = nbformat.read(NOTEBOOKS / "pinn.ipynb", as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    cells[0].source = SMALL
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    assert sorted(p.name for p in NOTEBOOKS.iterdir()) == before  # nothing written

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    streams = [o for o in outputs if o.output_type == "stream"]
    assert not [s.text for s in streams if s.name == "stderr"]
    text = "".join(s.text for s in streams)
    assert "y = x² + 1 at x = 2: 4.0 2.0" in text
    assert "a linear layer's Jacobian equals its weights: True" in text
    assert "max |dy/dx - 2x| = 0.0  max |dy/dy| = 0.0" in text
    assert "Hessian entries (xx, xy, yy) at every point: {(2.0, 0.0, 0.0)}" in text
    for name in ("penalty", "exact"):
        line = re.search(rf"^{name}: relative L2 error (\S+) .*: met\), (\S+) against", text, re.M)
        assert line, f"{name} misses its target:\n{text}"
    ratios = re.findall(r"^\s*0\.\d+\s+\S+\s+(\d\.\d\d)$", text, re.M)
    assert len(ratios) == 4 and all(3.7 <= float(r) <= 4.3 for r in ratios)
    disk = re.search(r"^disk: relative L2 error (\S+),", text, re.M)
    assert disk and float(disk.group(1)) < 1e-2
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(figures) == 3  # samplers, the square's losses and errors, the disk


def test_command_line_with_tiny_sizes(tmp_path, capsys):
    tiny = ["--width", "8", "--depth", "1", "--interior", "64", "--boundary", "16",
            "--adam-steps", "40", "--lbfgs-steps", "20", "--fd-size", "15"]  # fmt: skip
    assert main([*tiny, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "y = x² + 1 at x = 2: dy/dx = 4, d²y/dx² = 2" in out
    assert "Jacobian equals the weights: True" in out
    assert "Jacobian diagonal equals cos: True" in out
    assert "Hessian entries (xx, xy, yy) = (2, 0, 0) at every point" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("penalty", "exact"))]
    # an untrained network is at ~1: 60 steps of a network of 8 reach ~0.5 and ~5e-3
    assert len(rows) == 2 and float(rows[0][-3]) < 0.8 and float(rows[1][-3]) < 0.05
    assert "-Δu = f on the unit disk" in out
    for name in ("pinn_poisson.png", "pinn_disk.png"):
        figure = tmp_path / name
        assert figure.stat().st_size > 10_000 and str(figure) in out


def test_command_line_rejects_bad_sizes(capsys):
    with pytest.raises(SystemExit):
        main(["--interior", "0"])
    assert "--interior must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--lbfgs-steps", "-1"])
    assert "--lbfgs-steps must be >= 0, got -1" in capsys.readouterr().err
