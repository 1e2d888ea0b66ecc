"""The steady-diffusion reproduction: residual loss and energy, optax minimisation in one
compiled loop, bilinear refinement, average pooling, coarse to fine, the learned relaxation,
the command line and the notebook."""

import pathlib
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest

from trainax_fd import configurations, reproductions as rp, trainers
from trainax_fd.reference import PoissonRelaxation
from trainax_fd.reproductions.steady_diffusion import main
from trainax_fd.stencil import Dirichlet, Grid, Neumann, div_k_grad

matplotlib.use("Agg")


# -- oracles ------------------------------------------------------------------------------
def naive_residual(t: np.ndarray, k: np.ndarray, s: np.ndarray, h: tuple) -> np.ndarray:
    """`div(k grad T) + s` on a 2D cell grid, `T = 0` on the boundary, point by point: face
    `k` the mean of its two cells (the edge cell's own value at the boundary), ghost `-T`."""
    n0, n1 = t.shape
    out = np.zeros_like(t)
    for i in range(n0):
        for j in range(n1):
            total = 0.0
            for di, dj, spacing in ((1, 0, h[0]), (-1, 0, h[0]), (0, 1, h[1]), (0, -1, h[1])):
                a, b = i + di, j + dj
                inside = 0 <= a < n0 and 0 <= b < n1
                neighbour = t[a, b] if inside else -t[i, j]
                k_face = 0.5 * (k[i, j] + k[a, b]) if inside else k[i, j]
                total += k_face * (neighbour - t[i, j]) / spacing**2
            out[i, j] = total + s[i, j]
    return out


def laplacian_matrix(n: int) -> np.ndarray:
    """The 2D cell-grid Laplacian (`k = 1`, zero Dirichlet, unit square) as a dense matrix,
    the Kronecker sum of 1D `[1, -2, 1] / h^2` with `-3` in the corners (ghost `-T`)."""
    line = np.diag(-2.0 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    line[0, 0] = line[-1, -1] = -3.0
    line *= n**2
    eye = np.eye(n)
    return np.kron(line, eye) + np.kron(eye, line)


# -- the problem --------------------------------------------------------------------------
def test_loss_is_mean_squared_residual_of_div_k_grad(x64):
    rng = np.random.default_rng(0)
    grid = Grid((6, 5))
    t, s = rng.normal(size=(1, 6, 5)), rng.normal(size=(1, 6, 5))
    k = rng.uniform(0.5, 2.0, size=(1, 6, 5))
    problem = rp.SteadyDiffusion(grid, k, s)
    expected = np.mean((np.asarray(div_k_grad(jnp.asarray(t), k, grid, Dirichlet(0.0))) + s) ** 2)
    naive = np.mean(naive_residual(t[0], k[0], s[0], grid.spacing) ** 2)
    np.testing.assert_allclose(float(problem.loss(jnp.asarray(t))), expected, rtol=1e-12)
    np.testing.assert_allclose(expected, naive, rtol=1e-12)


def test_energy_gradient_is_minus_the_residual(x64):
    rng = np.random.default_rng(1)
    grid = Grid((5, 7))
    k = rng.uniform(0.5, 2.0, size=(1, 5, 7))
    problem = rp.SteadyDiffusion(grid, k, rng.normal(size=(1, 5, 7)))
    t = jnp.asarray(rng.normal(size=(1, 5, 7)))
    grad = jax.grad(problem.energy)(t)
    np.testing.assert_allclose(grad, -problem.residual(t) / grid.size, rtol=1e-10, atol=1e-12)


def test_condition_number_matches_the_dense_matrix():
    eigenvalues = np.abs(np.linalg.eigvalsh(laplacian_matrix(8)))
    expected = eigenvalues.max() / eigenvalues.min()
    np.testing.assert_allclose(rp.condition_number(Grid((8, 8))), expected, rtol=1e-10)


# -- refinement and pooling ---------------------------------------------------------------
def test_refine_is_exact_for_linear_functions_with_their_ghosts(x64):
    coarse, fine = Grid((4, 6)), Grid((8, 12))
    a, b, c = 0.3, -1.2, 2.5

    def f(x, y):
        return a + b * x + c * y

    u = f(*np.meshgrid(*(coarse.coordinates(i) for i in range(2)), indexing="ij"))[None]
    # outward normal derivatives: the ghosts continue the line
    bc = ((Neumann(-b), Neumann(b)), (Neumann(-c), Neumann(c)))
    refined = rp.refine(jnp.asarray(u), coarse, bc)
    expected = f(*np.meshgrid(*(fine.coordinates(i) for i in range(2)), indexing="ij"))[None]
    assert refined.shape == (1, 8, 12)
    np.testing.assert_allclose(refined, expected, atol=1e-12)


def test_refine_is_exact_for_bilinear_functions_away_from_the_boundary(x64):
    coarse, fine = Grid((5, 4)), Grid((10, 8))

    def f(x, y):
        return 1.0 + 2.0 * x - 3.0 * y + 4.0 * x * y

    u = f(*np.meshgrid(*(coarse.coordinates(i) for i in range(2)), indexing="ij"))
    refined = np.asarray(rp.refine(jnp.asarray(np.stack([u, 2 * u])), coarse))  # 2 channels
    expected = f(*np.meshgrid(*(fine.coordinates(i) for i in range(2)), indexing="ij"))
    np.testing.assert_allclose(refined[0, 1:-1, 1:-1], expected[1:-1, 1:-1], atol=1e-12)
    np.testing.assert_allclose(refined[1, 1:-1, 1:-1], 2 * expected[1:-1, 1:-1], atol=1e-12)
    # T = 0 beyond the edges: ghosts -1 and -4, so the ends are (3 - 1) / 4 and (12 - 4) / 4
    line = Grid((3,))
    np.testing.assert_allclose(
        rp.refine(jnp.asarray([[1.0, 2.0, 4.0]]), line), [[0.5, 1.25, 1.75, 2.5, 3.5, 2.0]]
    )


def test_average_pool_takes_block_means_and_keeps_the_mean(x64):
    rng = np.random.default_rng(2)
    field = rng.normal(size=(2, 8, 12))
    pooled = np.asarray(rp.average_pool(jnp.asarray(field), 4))
    assert pooled.shape == (2, 2, 3)
    for c in range(2):
        for i in range(2):
            for j in range(3):
                block = field[c, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4]
                np.testing.assert_allclose(pooled[c, i, j], block.mean(), rtol=1e-12)
    np.testing.assert_allclose(pooled.mean(axis=(1, 2)), field.mean(axis=(1, 2)), rtol=1e-12)


def test_coarsened_problem_pools_conductivity_and_source(x64):
    rng = np.random.default_rng(3)
    k, s = rng.uniform(1, 2, size=(1, 8, 8)), rng.normal(size=(1, 8, 8))
    coarse = rp.SteadyDiffusion(Grid((8, 8)), k, s).coarsened(2)
    assert coarse.grid == Grid((4, 4))
    np.testing.assert_allclose(coarse.conductivity, rp.average_pool(jnp.asarray(k), 2))
    np.testing.assert_allclose(coarse.source, rp.average_pool(jnp.asarray(s), 2))
    scalar = rp.SteadyDiffusion(Grid((8, 8)), 2.0, 1.0).coarsened(4)
    assert scalar.conductivity.shape == () and float(scalar.conductivity) == 2.0


# -- minimisation -------------------------------------------------------------------------
def test_minimise_equals_a_hand_written_loop_and_compiles_once(compiles):
    grid = Grid((8, 8))
    problem = rp.SteadyDiffusion(grid, 1.0, 1.0)
    zeros = jnp.zeros((1, 8, 8))
    adam = optax.adam(1e-4)
    result = rp.minimise(problem, zeros, adam, 5)
    t, state, losses = zeros, adam.init(zeros), []
    for _ in range(5):
        grad = jax.grad(problem.loss)(t)
        with jax.numpy_dtype_promotion("standard"):
            updates, state = adam.update(grad, state, t)
        t = optax.apply_updates(t, updates)
        losses.append(float(problem.loss(t)))
    np.testing.assert_allclose(result.solution, t, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(result.loss, losses, rtol=1e-5)
    np.testing.assert_allclose(result.objective, losses, rtol=1e-5)
    np.testing.assert_array_equal(result.evaluations, np.ones(5))
    assert result.initial_loss == 1.0 and result.compile_seconds > 0
    with compiles() as counter:
        again = rp.minimise(problem, zeros, adam, 5)
    assert counter.count == 0 and again.compile_seconds == 0.0
    np.testing.assert_array_equal(again.loss, result.loss)


def test_energy_minimisation_reaches_the_direct_solution(x64):
    n = 16
    problem = rp.SteadyDiffusion(Grid((n, n)), 1.0, 1.0)
    direct = np.linalg.solve(laplacian_matrix(n), -np.ones(n * n)).reshape(1, n, n)
    zeros = jnp.zeros((1, n, n))
    lbfgs = optax.lbfgs()
    energy = rp.minimise(problem, zeros, lbfgs, 60, objective="energy")
    np.testing.assert_allclose(energy.solution, direct, rtol=1e-7, atol=1e-12)
    assert energy.final_loss < 1e-15 and np.all(np.asarray(energy.evaluations) >= 1)
    # least squares, same steps: the squared condition number leaves it far behind
    squares = rp.minimise(problem, zeros, lbfgs, 60)
    assert squares.final_loss > 1e-3


def test_coarse_to_fine_interpolates_level_to_level():
    grid = Grid((32, 32))
    x, y = np.meshgrid(grid.coordinates(0), grid.coordinates(1), indexing="ij")
    k = (1.0 + 0.5 * np.sin(2 * np.pi * x) * np.sin(2 * np.pi * y))[None].astype(np.float32)
    finest = rp.SteadyDiffusion(grid, k, 1.0)
    levels = rp.coarse_to_fine(finest, optax.lbfgs(), [60, 40, 40], coarsest=8)
    assert [r.grid.shape for r in levels] == [(8, 8), (16, 16), (32, 32)]
    assert [r.loss.shape for r in levels] == [(60,), (40,), (40,)]
    assert levels[0].initial_loss == 1.0 and levels[0].final_loss < 1e-8
    coarse = finest.coarsened(2)
    np.testing.assert_allclose(levels[1].final_loss, coarse.loss(levels[1].solution), rtol=1e-6)
    start = rp.refine(levels[1].solution, levels[1].grid)
    np.testing.assert_allclose(levels[2].initial_loss, float(finest.loss(start)), rtol=1e-5)
    for level in levels[1:]:
        assert level.initial_loss < 0.05  # the interpolated start is close already
        assert level.final_loss < 0.1 * level.initial_loss
    assert levels[2].final_loss < 5e-3
    table = rp.level_table(levels)
    assert "32x32" in table and table.splitlines()[-1].split()[0] == "total"


# -- the learned relaxation ---------------------------------------------------------------
def test_relaxation_sampler_draws_windows_of_jacobi_sweeps():
    grid = Grid((8, 8), extent=8.0)
    sampler = rp.relaxation_sampler(
        grid, sweeps_per_step=3, rollout=2, max_start=5, batch_size=4, omega=0.8
    )
    windows = np.asarray(sampler.draw(jax.random.key(0)))
    assert windows.shape == (4, 3, 2, 8, 8)
    for window in windows:
        s = window[0, 1:]
        np.testing.assert_array_equal(window[:, 1:], np.broadcast_to(s, (3, 1, 8, 8)))
        assert np.all(np.abs(s) <= 1.0)
        jacobi = PoissonRelaxation(grid, Dirichlet(0.0), 1.0, jnp.asarray(s), 0.8, "jacobi")
        t = jnp.asarray(window[0, :1])
        for level in (1, 2):
            for _ in range(3):
                t = jacobi(t)
            np.testing.assert_allclose(window[level, :1], t, rtol=1e-5, atol=1e-6)


def test_learned_relaxation_keeps_the_solution_whatever_its_weights(x64):
    n = 8
    grid = Grid((n, n), extent=float(n))  # unit spacing
    s = np.random.default_rng(4).uniform(-1, 1, size=(1, n, n))
    solution = np.linalg.solve(laplacian_matrix(n) / n**2, -s.ravel()).reshape(1, n, n)
    stepper = rp.LearnedRelaxation(grid, 5)
    assert stepper.correction.num_parameters == 25 and not np.any(stepper.correction.weight)
    weights = jax.random.normal(jax.random.key(0), (1, 1, 5, 5), jnp.float64)
    stepper = eqx.tree_at(lambda m: m.correction.weight, stepper, weights)
    state = jnp.asarray(np.concatenate([solution, s]))
    np.testing.assert_allclose(stepper(state), state, atol=1e-12)


def test_learned_relaxation_trains_to_the_jacobi_sweeps_it_is_shown():
    grid = Grid((12, 12), extent=12.0)
    sampler = rp.relaxation_sampler(grid, sweeps_per_step=2, rollout=2, max_start=24, batch_size=8)
    trainer = trainers.Trainer(
        sampler, configurations.Supervised(2), optax.adam(3e-2), num_steps=150
    )
    trained = trainer(rp.LearnedRelaxation(grid, 3), key=jax.random.key(0), progress=False)
    steps = rp.reference_relaxations(grid, omega=0.8, sweeps_per_step=2)
    assert list(steps) == ["Jacobi (omega 0.8)", "red-black Gauss-Seidel", "2 Jacobi sweeps"]
    learned = trained.model
    steps["learned"] = lambda t, s: learned(jnp.concatenate([t, s]))[:1]
    sources = jax.random.uniform(jax.random.key(1), (3, 1, 12, 12), minval=-1.0)
    histories = {name: rp.residual_history(f, sources, grid, 15) for name, f in steps.items()}
    assert all(h.shape == (16, 3) for h in histories.values())

    def per_step(r):
        return np.exp(np.mean(np.log(r[-1] / r[0]) / 15))

    factors = {name: per_step(h) for name, h in histories.items()}
    assert factors["learned"] < factors["Jacobi (omega 0.8)"] < 1
    np.testing.assert_allclose(factors["learned"], factors["2 Jacobi sweeps"], rtol=1e-2)
    table = rp.reduction_table(histories, last=5)
    assert table.splitlines()[0].split()[:3] == ["relaxation", "per", "step"]
    assert len(table.splitlines()) == 5


# -- figures ------------------------------------------------------------------------------
def test_figures_draw_levels_and_residuals():
    import matplotlib.pyplot as plt

    levels = rp.coarse_to_fine(rp.SteadyDiffusion(Grid((8, 8))), optax.adam(1e-4), 3, coarsest=4)
    ax = rp.plot_levels(levels)
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 4  # a line and a dot per level
    histories = {"a": np.ones((4, 2)), "b": np.full((4, 2), 0.5)}
    ax = rp.plot_residuals(histories)
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [0.5] * 4)
    plt.close("all")


# -- errors -------------------------------------------------------------------------------
def test_errors_name_the_argument():
    plane = Grid((8, 8))
    problem = rp.SteadyDiffusion(plane)
    cases = [
        (TypeError, "`grid` must be a `Grid`, got tuple.", lambda: rp.SteadyDiffusion((8, 8))),
        (
            ValueError,
            "`grid` must have placement 'cell' or 'vertex' on every axis (T = 0 on the "
            "boundary), got ('periodic', 'periodic').",
            lambda: rp.SteadyDiffusion(Grid((8, 8), placement="periodic")),
        ),
        (
            ValueError,
            "`factor` must divide the points of every axis, got factor=3 for grid shape (8, 8).",
            lambda: problem.coarsened(3),
        ),
        (
            ValueError,
            "`grid` must be a 'cell' grid on every axis (cells split in 2 per axis nest in the "
            "coarse cells), got placement ('vertex', 'vertex').",
            lambda: rp.refine(jnp.zeros((1, 8, 8)), Grid((8, 8), placement="vertex")),
        ),
        (
            ValueError,
            "`grid` must be a 'cell' grid on every axis (cells split in 2 per axis nest in the "
            "coarse cells), got placement ('vertex', 'vertex').",
            lambda: rp.SteadyDiffusion(Grid((8, 8), placement="vertex")).coarsened(2),
        ),
        (TypeError, "`grid` must be a `Grid`, got int.", lambda: rp.refine(jnp.zeros((1, 8)), 8)),
        (
            ValueError,
            "`field` must have shape (channels, *spatial) with every spatial size divisible by "
            "`factor`=3, got shape (1, 8, 9).",
            lambda: rp.average_pool(jnp.zeros((1, 8, 9)), 3),
        ),
        (
            TypeError,
            "`problem` must be a `SteadyDiffusion`, got Grid.",
            lambda: rp.minimise(plane, jnp.zeros((1, 8, 8)), optax.adam(1e-3), 1),
        ),
        (
            TypeError,
            "`optimizer` must be an `optax.GradientTransformation`, got str.",
            lambda: rp.minimise(problem, jnp.zeros((1, 8, 8)), "adam", 1),
        ),
        (
            ValueError,
            "`objective` must be one of ('residual', 'energy'), got 'energies'.",
            lambda: rp.minimise(
                problem, jnp.zeros((1, 8, 8)), optax.adam(1e-3), 1, objective="energies"
            ),
        ),
        (
            ValueError,
            "`initial` must have 1 channel (T), got shape (2, 8, 8).",
            lambda: rp.minimise(problem, jnp.zeros((2, 8, 8)), optax.adam(1e-3), 1),
        ),
        (
            TypeError,
            "`problem` must be a `SteadyDiffusion`, got Grid.",
            lambda: rp.coarse_to_fine(plane, optax.adam(1e-3), 1, coarsest=4),
        ),
        (
            ValueError,
            "`coarsest` must divide the finest grid's points per axis by a power of 2 (and the "
            "axes must be equal), got coarsest=3 for grid shape (8, 8).",
            lambda: rp.coarse_to_fine(problem, optax.adam(1e-3), 1, coarsest=3),
        ),
        (
            ValueError,
            "`num_steps` must be one int or one per level (2 levels from 4 to 8), got 3: "
            "[1, 2, 3].",
            lambda: rp.coarse_to_fine(problem, optax.adam(1e-3), [1, 2, 3], coarsest=4),
        ),
        (TypeError, "`grid` must be a `Grid`, got str.", lambda: rp.condition_number("8x8")),
        (
            TypeError,
            "`levels` must be a non-empty sequence of `Minimisation`s (what `coarse_to_fine` "
            "returns), got an empty list.",
            lambda: rp.plot_levels([]),
        ),
        (
            TypeError,
            "`levels` must be a non-empty sequence of `Minimisation`s (what `coarse_to_fine` "
            "returns), got tuple holding ndarray.",
            lambda: rp.plot_levels((np.ones(3),)),
        ),
        (
            TypeError,
            "`levels` must be a non-empty sequence of `Minimisation`s (what `coarse_to_fine` "
            "returns), got dict.",
            lambda: rp.plot_levels({}),
        ),
        (
            TypeError,
            "`histories` must be a non-empty mapping {name: residuals (steps + 1, samples)}, "
            "got list.",
            lambda: rp.plot_residuals([np.ones((2, 1))]),
        ),
        (
            TypeError,
            "`grid` must be a `Grid`, got tuple.",
            lambda: rp.LearnedRelaxation((8, 8), 3),
        ),
        (
            ValueError,
            "`grid` must have placement 'cell' or 'vertex' on every axis (T = 0 on the "
            "boundary), got ('periodic', 'periodic').",
            lambda: rp.relaxation_sampler(
                Grid((8, 8), placement="periodic"),
                sweeps_per_step=1,
                rollout=1,
                max_start=0,
                batch_size=1,
            ),
        ),
        (
            ValueError,
            "`u` must have shape (2, 8, 8) (channels T and s), got (1, 8, 8). The stepper acts "
            "on one sample; batch with `jax.vmap`.",
            lambda: rp.LearnedRelaxation(plane, 3)(jnp.zeros((1, 8, 8))),
        ),
        (
            ValueError,
            "`sources` must have shape (samples, 1, 8, 8), got (1, 8, 8).",
            lambda: rp.residual_history(lambda t, s: t, jnp.zeros((1, 8, 8)), plane, 2),
        ),
        (
            ValueError,
            "`last` must be at most the 3 steps of 'a', got 5.",
            lambda: rp.reduction_table({"a": np.ones((4, 2))}, last=5),
        ),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=re.escape(message)):
            call()


# -- the command line ---------------------------------------------------------------------
TINY = ["--size", "16", "--steps", "20", "--coarsest", "8", "--finest", "16", "--level-steps",
        "20", "--relax-size", "12", "--train-steps", "60", "--eval-steps", "12"]  # fmt: skip


def test_command_line_prints_the_tables_and_writes_the_figures(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "condition number of A 104" in out  # 4 N^2 / pi^2 for N = 16
    for name in ("L-BFGS, least squares", "Adam(1e-05), least squares", "L-BFGS, energy"):
        assert name in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if "x" in line[:11]}
    assert float(rows["16x16"][4]) < float(rows["8x8"][3])  # the finest level ends lower
    relax = {line.rsplit(maxsplit=3)[0]: float(line.split()[-3]) for line in out.splitlines()
             if line.startswith(("Jacobi", "learned"))}  # fmt: skip
    assert relax["learned"] < relax["Jacobi (omega 0.8)"]
    mg = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("multigrid")}
    float32, float64 = mg["multigrid 16x16, float32"], mg["multigrid 16x16, float64"]
    assert float(float32.split("loss ")[1].split()[0]) < 1e-8  # float32's floor on 16x16
    assert float(float64.split("loss ")[1].split()[0]) < 1e-20
    assert float(float64.split("cycles (")[1].split()[0]) < 0.1  # factor per V(2,2)-cycle
    for name in ("steady_diffusion_optimisation.png", "learned_relaxation.png"):
        path = tmp_path / name
        assert path.stat().st_size > 10_000 and f"figure written to {path}" in out


def test_command_line_refuses_bad_sizes(capsys):
    for argv, message in [
        (["--size", "0"], "--size must be >= 1, got 0"),
        (["--coarsest", "16", "--finest", "48"], "--finest must be --coarsest times a power of 2, "
         "got 48 and 16"),
        (["--adam-lr", "0"], "--adam-lr must be > 0, got 0.0"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err


# -- the notebook -------------------------------------------------------------------------
NOTEBOOK = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "steady_diffusion.ipynb"

SMALL = """import warnings

warnings.simplefilter("error")
warnings.filterwarnings("ignore", module="ipykernel|jupyter_client|zmq|tornado")
SIZE = 32
STEPS = 100
ADAM_LEARNING_RATES = (1e-5,)
LONG_STEPS = 0
COARSEST, FINEST = 16, 32
LEVEL_STEPS = 100
RELAX_SIZE = 16
SWEEPS_PER_STEP = 4
TRAIN_STEPS = 200
EVAL_STEPS = 20
SAMPLES = 4"""


def test_notebook_solves_coarse_to_fine_and_learns_a_faster_relaxation(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    folder = NOTEBOOK.parent
    before = sorted(p.name for p in folder.iterdir())
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    cells[0].source = SMALL
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    streams = [o for o in outputs if o.output_type == "stream"]
    assert not [s.text for s in streams if s.name == "stderr"]
    text = "".join(s.text for s in streams)
    lines = {line.split(":")[0]: line for line in text.splitlines() if ":" in line}

    def number(line: str, after: str) -> float:
        return float(line.split(after)[1].split()[0].rstrip(",;"))

    one = lines["one grid"]
    assert number(one, "energy ") < 1e-4 * number(one, "least squares ")
    c2f = lines["coarse to fine 32x32"]
    assert number(c2f, "least squares ") < 1e-4
    assert number(c2f, "energy ") < number(c2f, "least squares ")
    per_step = dict(
        (item.rsplit(" ", 1)[0], float(item.rsplit(" ", 1)[1]))
        for item in lines["per step"].split(": ", 1)[1].split(", ")
    )
    assert per_step["learned"] < per_step["red-black Gauss-Seidel"] < per_step["Jacobi (omega 0.8)"]
    assert abs(per_step["learned"] - per_step["4 Jacobi sweeps"]) < 1e-2
    assert number(lines["kernel (7, 7)"], "= ") < 5e-2
    # multigrid reaches the float32 floor, which float64 rounded to float32 measures
    assert number(lines["multigrid 32x32"], "loss ") < 1e-9
    float64 = lines["float64 multigrid"]
    assert number(float64, "loss ") < 1e-20 and number(float64, "float32: loss ") < 1e-9
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(figures) == 3  # one grid, coarse to fine, relaxations
