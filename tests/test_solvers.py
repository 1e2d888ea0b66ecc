"""Elliptic solves: multigrid and multigrid-CG against scipy's sparse direct solve, mesh-
independent convergence, the Neumann null space, vmap, implicit derivatives, float32, the
sparse export and the backward-Euler stepper."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd.reference import ImplicitDiffusion
from trainax_fd.solvers import SolveReport, solve, to_sparse
from trainax_fd.solvers._implicit import linear_system
from trainax_fd.solvers._transfer import axis_rules, prolong, restrict
from trainax_fd.stencil import Dirichlet, Grid, Neumann, Periodic, boundary_pairs, div_k_grad

sparse = pytest.importorskip("scipy.sparse")
spsolve = pytest.importorskip("scipy.sparse.linalg").spsolve


def variable_k(grid, dtype=np.float64):
    """`k = 1 + 0.9 sin(6 pi x) sin(4 pi y)` (2D), its analogue in 1D and 3D; `(1, *spatial)`."""
    axes = np.meshgrid(*[grid.coordinates(a) for a in range(grid.ndim)], indexing="ij")
    wave = np.ones(grid.shape)
    for x, m in zip(axes, (6, 4, 2)):
        wave = wave * np.sin(m * np.pi * x)
    return (1 + 0.9 * wave)[None].astype(dtype)


def random(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def dense_solution(grid, bc, k, s, reaction=None):
    """scipy's sparse direct solve of `div_k_grad(u) - c u + s = 0`, one channel."""
    matrix = to_sparse(grid, bc, k, reaction)
    zero = jnp.zeros((1, *grid.shape), jnp.float64)
    boundary = np.asarray(div_k_grad(zero, jnp.asarray(k), grid, bc))[0].ravel()
    rhs = -(np.broadcast_to(s, (1, *grid.shape))[0].ravel() + boundary)
    return spsolve(matrix.tocsc(), rhs).reshape(1, *grid.shape)


def relative(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


# ---------------------------------------------------------------------------------------------
# against scipy's spsolve


def _cases():
    rng = np.random.default_rng(0)
    cell, vertex = Grid((32, 32)), Grid((31, 31), placement="vertex")
    return {
        "cell-dirichlet-values": (
            cell,
            ((Dirichlet(1.0), Dirichlet(rng.uniform(size=(1, 32)))), Dirichlet(-0.5)),
        ),
        "vertex-dirichlet-values": (vertex, ((Dirichlet(0.3), Dirichlet(0.0)), Dirichlet(1.0))),
        "cell-neumann-fluxes-dirichlet": (
            Grid((32, 32), extent=2.0),
            ((Neumann(0.7), Dirichlet(0.2)), (Dirichlet(0.0), Neumann(-1.0))),
        ),
        "periodic-dirichlet": (Grid((32, 32)), (Periodic(), Dirichlet(0.5))),
        "periodic-placement": (
            Grid((32, 31), placement=("periodic", "vertex")),
            (Periodic(), Dirichlet(0.0)),
        ),
        "1d-cell-96": (Grid((96,)), (Dirichlet(1.0), Neumann(0.5))),
        "3d-cell": (Grid((16, 16, 16)), "dirichlet"),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_matches_spsolve(x64, name):
    grid, bc = _cases()[name]
    k, s = variable_k(grid), random((1, *grid.shape), 1)
    u, report = solve(grid, bc, k, s)
    assert u.shape == (1, *grid.shape) and u.dtype == jnp.float64
    assert bool(report.converged) and int(report.iterations) <= (24 if grid.ndim == 3 else 16)
    assert relative(u, dense_solution(grid, bc, k, s)) <= 1e-10


@pytest.mark.parametrize("method", ["mg", "mgcg"])
def test_reaction_and_channels_match_spsolve(x64, method):
    """Two channels sharing `k`, each with its own source; a reaction field."""
    grid = Grid((32, 32))
    k, s, c = variable_k(grid), random((2, 32, 32), 2), 5.0 + random((1, 32, 32), 3) ** 2
    bc = (Neumann(0.5), Dirichlet(1.0))
    u, report = solve(grid, bc, k, s, reaction=c, method=method)
    assert bool(report.converged)
    for ch in range(2):
        expected = dense_solution(grid, bc, k, s[ch : ch + 1], c)
        assert relative(u[ch : ch + 1], expected) <= 1e-10


@pytest.mark.parametrize(
    "options",
    [
        dict(cycle="W"),
        dict(cycle="F"),
        dict(coarse="galerkin"),
        dict(method="mgcg", cycle="W", smoothing=(1, 1)),
        dict(fmg=True, smoothing=(1, 2)),
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_variants_reach_the_same_solution(x64, options):
    grid = Grid((63, 63), placement="vertex")
    k, s = variable_k(grid), random((1, 63, 63), 4)
    u, report = solve(grid, "dirichlet", k, s, **options)
    assert bool(report.converged) and int(report.iterations) <= 15
    assert relative(u, dense_solution(grid, "dirichlet", k, s)) <= 1e-10


def test_galerkin_on_cells_with_neumann(x64):
    grid = Grid((64, 64))
    bc = ((Dirichlet(), Neumann()), Dirichlet())
    k, s = variable_k(grid), random((1, 64, 64), 5)
    u, report = solve(grid, bc, k, s, coarse="galerkin")
    assert bool(report.converged) and float(report.convergence_factor) <= 0.1
    assert relative(u, dense_solution(grid, bc, k, s)) <= 1e-10


@pytest.mark.parametrize(
    "grid, bc",
    [
        (Grid((7, 5), placement="vertex"), "dirichlet"),
        (Grid((8, 6)), ((Dirichlet(), Neumann()), Periodic())),
        (Grid((6, 4), placement=("periodic", "cell")), (Periodic(), Neumann())),
        (Grid((4, 8, 6)), ((Neumann(), Dirichlet()), Dirichlet(), Periodic())),
    ],
)
def test_transfers_full_weighting_is_scaled_transpose_of_interpolation(x64, grid, bc):
    """`R = P^T / 2^d`, and `P` reproduces linear functions away from the walls."""
    pairs = boundary_pairs(bc, grid)
    rules = axis_rules(grid, pairs)
    coarse = (
        1,
        *[(n - 1) // 2 if p == "vertex" else n // 2 for n, p in zip(grid.shape, grid.placement)],
    )
    c = jnp.asarray(random(coarse, 50))
    transpose = jax.linear_transpose(lambda c: prolong(c, rules), c)
    f = jnp.asarray(random((1, *grid.shape), 51))
    expected = transpose(f)[0] / 2**grid.ndim
    np.testing.assert_allclose(jax.jit(restrict, static_argnums=1)(f, rules), expected, atol=1e-14)
    if grid.placement == ("vertex", "vertex"):  # linear in x and y: exact
        xc = np.arange(1, coarse[1] + 1)[:, None] * 2.0 + 3 * np.arange(1, coarse[2] + 1)
        fine = np.asarray(prolong(jnp.asarray(xc[None]), rules))[0]
        xf = (np.arange(1, 8)[:, None] * 2.0 + 3 * np.arange(1, 6)) / 2
        np.testing.assert_allclose(fine[1:-1, 1:-1], xf[1:-1, 1:-1])


def test_right_hand_side_is_the_stencil_cores_boundary_term(x64):
    """The system's `f` is `s + div_k_grad(0, k, grid, bc)`, built from the ghosts alone."""
    rng = np.random.default_rng(3)
    grid = Grid((8, 6))
    bc = (
        (Dirichlet(1.0), Dirichlet(rng.uniform(size=(2, 6)))),
        (Neumann(0.3), Neumann(rng.uniform(size=(2, 8)))),
    )
    pairs = boundary_pairs(bc, grid)
    k, s = 1 + rng.uniform(size=(1, 8, 6)), rng.standard_normal((2, 8, 6))
    build = jax.jit(lambda k, s: linear_system(grid, pairs, k, s, None, (2, 8, 6))[1])
    expected = s + div_k_grad(jnp.zeros((2, 8, 6)), k, grid, pairs)
    np.testing.assert_allclose(build(k, s), expected, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# convergence


@pytest.mark.parametrize("placement", ["vertex", "cell"])
@pytest.mark.parametrize("n", [64, 256])
def test_v22_convergence_factor_is_mesh_independent(x64, placement, n):
    """V(2,2) from zero (no full multigrid), to 1e-10: the mean factor per cycle."""
    size = n - 1 if placement == "vertex" else n
    grid = Grid((size, size), placement=placement)
    s = random((1, size, size), 6)
    for k, bound in ((np.ones((1, size, size)), 0.1), (variable_k(grid), 0.15)):
        _, report = solve(grid, "dirichlet", k, s, tol=1e-10, fmg=False)
        assert bool(report.converged)
        assert float(report.convergence_factor) <= bound


def test_report_fields(x64):
    grid = Grid((31, 31), placement="vertex")
    k, s = variable_k(grid), random((1, 31, 31), 8)
    u, report = solve(grid, "dirichlet", k, s, tol=1e-9)
    n = int(report.iterations)
    assert isinstance(report, SolveReport)
    assert report.residuals.shape == (51,) and report.factors.shape == (50,)
    assert float(report.residuals[0]) == 1.0  # from zero
    assert np.all(np.isfinite(report.residuals[: n + 1]))
    assert np.all(np.isnan(report.residuals[n + 1 :])) and np.all(np.isnan(report.factors[n:]))
    np.testing.assert_allclose(
        report.factors[:n], report.residuals[1 : n + 1] / report.residuals[:n]
    )
    assert float(report.residual) == float(report.residuals[n]) <= 1e-9 < report.residuals[n - 1]
    assert float(report.tolerance) == pytest.approx(1e-9)
    assert 0 < float(report.floor) < 1e-12
    assert float(report.convergence_factor) == pytest.approx(float(report.residual) ** (1 / n))
    # the residual it reports is the true one
    f = s + div_k_grad(jnp.zeros_like(u), k, grid, "dirichlet")
    true = jnp.linalg.norm(f + div_k_grad(u, k, grid, "dirichlet")) / jnp.linalg.norm(f)
    assert float(true) == pytest.approx(float(report.residual), rel=1e-6)


def test_stops_after_max_iterations(x64):
    grid = Grid((31, 31), placement="vertex")
    k, s = variable_k(grid), random((1, 31, 31), 8)
    _, report = solve(grid, "dirichlet", k, s, tol=1e-14, max_iterations=2)
    assert int(report.iterations) == 2 and not bool(report.converged)


def test_full_multigrid_start_and_warm_start(x64):
    grid = Grid((63, 63), placement="vertex")
    k, s = variable_k(grid), random((1, 63, 63), 4)
    expected = dense_solution(grid, "dirichlet", k, s)
    _, cold_report = solve(grid, "dirichlet", k, s)
    fmg, fmg_report = solve(grid, "dirichlet", k, s, fmg=True)
    assert bool(fmg_report.converged) and relative(fmg, expected) <= 1e-10
    # the full-multigrid pass starts where V-cycles from zero arrive after a few cycles
    assert float(fmg_report.residuals[0]) < 0.1 * float(cold_report.residuals[0])
    assert int(fmg_report.iterations) < int(cold_report.iterations)
    warm, warm_report = solve(grid, "dirichlet", k, s, initial=jnp.asarray(expected), tol=1e-9)
    assert int(warm_report.iterations) == 0 and relative(warm, expected) <= 1e-12


@pytest.mark.parametrize("bc", ["dirichlet", "neumann"])
def test_one_level_hierarchy_refines_to_the_floor(x64, bc):
    """A grid small enough to be solved densely: each cycle corrects the iterate, so the
    default tolerance (the rounding floor) is met."""
    grid = Grid((16, 16))
    k, s = variable_k(grid), random((1, 16, 16), 9)
    u, report = solve(grid, bc, k, s)
    assert bool(report.converged) and int(report.iterations) <= 3
    if bc == "dirichlet":
        assert relative(u, dense_solution(grid, bc, k, s)) <= 1e-12


def test_zero_reaction_counts_as_none_and_reactions_may_have_channels(x64):
    grid = Grid((32, 32))
    k, s = variable_k(grid), random((1, 32, 32), 7)
    none, _ = solve(grid, "neumann", k, s)
    zero, report = solve(grid, "neumann", k, s, reaction=0.0)
    assert bool(report.converged) and relative(zero, np.asarray(none)) <= 1e-12
    c = 1.0 + random((2, 32, 32), 8) ** 2  # one reaction field per channel
    for coarse in ("rediscretise", "galerkin"):
        u, report = solve(grid, "dirichlet", k, s, reaction=c, coarse=coarse)
        assert bool(report.converged) and u.shape == (2, 32, 32)
        for ch in range(2):
            expected = dense_solution(grid, "dirichlet", k, s, c[ch : ch + 1])
            assert relative(u[ch : ch + 1], expected) <= 1e-10


# ---------------------------------------------------------------------------------------------
# null space, uneven sizes


@pytest.mark.parametrize("bc", ["neumann", (Periodic(), Neumann())])
def test_singular_problem_has_zero_mean_and_removes_the_mean_source(x64, bc):
    grid = Grid((32, 32))
    k, s = variable_k(grid), random((1, 32, 32), 7) + 0.3  # sources do not balance
    u, report = solve(grid, bc, k, s)
    assert bool(report.converged)
    assert abs(float(jnp.mean(u))) <= 1e-12
    matrix = to_sparse(grid, bc, k).toarray()
    rhs = -(s - s.mean()).ravel()
    expected = np.linalg.lstsq(matrix, rhs, rcond=None)[0]
    assert relative(u, (expected - expected.mean()).reshape(1, 32, 32)) <= 1e-10


def test_neumann_fluxes_balanced_by_sources(x64):
    """A flux through one wall and a source that balances it: the equation holds exactly,
    nothing is projected away."""
    grid = Grid((32, 32))
    bc = ((Neumann(-1.0), Neumann(0.0)), Neumann(0.0))
    k = variable_k(grid)
    boundary = div_k_grad(jnp.zeros((1, 32, 32)), k, grid, bc)
    source = np.full((1, 32, 32), -float(jnp.mean(boundary)))
    u, report = solve(grid, bc, k, source)
    assert bool(report.converged)
    residual = div_k_grad(u, k, grid, bc) + source
    assert float(jnp.max(jnp.abs(residual))) <= 1e-9


@pytest.mark.parametrize(
    "grid, message",
    [
        (
            Grid((1000, 1000)),
            "it stops after 3 halving(s) at (125, 125), where axis 0 (125 cell points), "
            "axis 1 (125 cell points) does not halve, with 15625 points.",
        ),
        (
            Grid((64, 64), placement="vertex"),
            "it stops after 0 halving(s) at (64, 64), where axis 0 (64 vertex points), "
            "axis 1 (64 vertex points) does not halve, with 4096 points.",
        ),
    ],
)
def test_grids_that_do_not_coarsen_are_refused(grid, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        solve(grid, "dirichlet", 1.0, 1.0)
    with pytest.raises(ValueError, match=re.escape("'vertex' axes N = c 2^m - 1")):
        solve(grid, "dirichlet", 1.0, 1.0)


def test_max_levels_too_few_is_refused():
    with pytest.raises(ValueError, match=re.escape("within `max_levels`=2 grids")):
        solve(Grid((128, 128)), "dirichlet", 1.0, 1.0, max_levels=2)


# ---------------------------------------------------------------------------------------------
# transformations


def test_vmap_over_k_and_s_matches_a_loop_and_does_not_recompile(x64, compiles):
    grid = Grid((31, 31), placement="vertex")
    ks = np.stack([variable_k(grid) * (1 + i) for i in range(3)])
    ss = np.stack([random((1, 31, 31), 10 + i) for i in range(3)])

    @eqx.filter_jit
    def batch(ks, ss):
        return jax.vmap(lambda k, s: solve(grid, "dirichlet", k, s))(ks, ss)

    us, reports = batch(ks, ss)
    assert us.shape == (3, 1, 31, 31) and reports.iterations.shape == (3,)
    assert bool(jnp.all(reports.converged))
    for i in range(3):
        assert relative(us[i], dense_solution(grid, "dirichlet", ks[i], ss[i])) <= 1e-10
    solve(grid, "dirichlet", ks[0], ss[0])
    with compiles() as c:
        batch(ks * 2, ss)
        solve(grid, "dirichlet", ks[1], ss[1])  # new values, same shapes
    assert c.count == 0


def test_implicit_gradients_match_finite_differences(x64):
    """d/dk, d/ds and d/d(boundary value) of a weighted sum of the solution."""
    grid = Grid((31, 31), placement="vertex")
    k0, s0 = variable_k(grid), random((1, 31, 31), 20)
    weights = random((1, 31, 31), 21)

    def loss(k, s, value):
        u, _ = solve(grid, (Dirichlet(value), Dirichlet(0.0)), k, s, tol=1e-13)
        return jnp.sum(weights * u)

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(k0, s0, 0.5)
    value = jax.jit(loss)
    dk, ds = random((1, 31, 31), 22), random((1, 31, 31), 23)
    eps = 1e-4
    fd_k = (value(k0 + eps * dk, s0, 0.5) - value(k0 - eps * dk, s0, 0.5)) / (2 * eps)
    fd_s = (value(k0, s0 + eps * ds, 0.5) - value(k0, s0 - eps * ds, 0.5)) / (2 * eps)
    fd_v = (value(k0, s0, 0.5 + eps) - value(k0, s0, 0.5 - eps)) / (2 * eps)
    assert float(jnp.sum(grads[0] * dk)) == pytest.approx(float(fd_k), rel=1e-6)
    assert float(jnp.sum(grads[1] * ds)) == pytest.approx(float(fd_s), rel=1e-6)
    assert float(grads[2]) == pytest.approx(float(fd_v), rel=1e-6)


def test_gradient_is_one_adjoint_solve_not_an_unrolled_loop(x64):
    """The backward pass holds no while loop over cycles: its jaxpr transposes a linear solve."""
    grid = Grid((31, 31), placement="vertex")
    jaxpr = jax.make_jaxpr(jax.grad(lambda s: jnp.sum(solve(grid, "dirichlet", 1.0, s)[0])))(
        jnp.ones((1, 31, 31))
    )
    forward = jax.make_jaxpr(lambda s: solve(grid, "dirichlet", 1.0, s)[0])(jnp.ones((1, 31, 31)))
    # the forward solve and one transposed (adjoint) solve; an unrolled loop would add none
    assert str(forward).count("custom_linear_solve") == 1
    assert str(jaxpr).count("custom_linear_solve") == 2


# ---------------------------------------------------------------------------------------------
# float32


def test_float32_reaches_its_rounding_floor():
    """The residual float32 can reach grows like `1 / h^2`: about `1e-8 N^2` (N^2 points);
    the default tolerance is the floor estimate, which lies above it."""
    grid = Grid((63, 63), placement="vertex")
    k, s = variable_k(grid, np.float32), np.ones((1, 63, 63), np.float32)
    u, report = solve(grid, "dirichlet", k, s)
    assert u.dtype == jnp.float32 and bool(report.converged)
    assert 5e-5 <= float(report.floor) <= 1e-3 and float(report.residual) <= float(report.floor)
    u, report = solve(grid, "dirichlet", k, s, tol=1e-9)
    assert not bool(report.converged) and int(report.iterations) < 20  # stalls, stops
    assert 1e-6 <= float(report.residual) <= 1e-4


# ---------------------------------------------------------------------------------------------
# sparse export


@pytest.mark.parametrize(
    "grid, bc",
    [
        (Grid((6, 5)), ((Dirichlet(2.0), Neumann(1.0)), Periodic())),
        (Grid((5, 7), placement="vertex"), Dirichlet(1.0)),
        (Grid((4, 6), placement=("periodic", "cell")), (Periodic(), (Dirichlet(), Neumann()))),
        (Grid((4, 3, 5)), "neumann"),
        (Grid((9,)), (Neumann(), Dirichlet())),
    ],
)
def test_sparse_export_equals_the_matrix_free_operator(x64, grid, bc):
    k, c = variable_k(grid) + 0.2, random((1, *grid.shape), 30) ** 2
    matrix = to_sparse(grid, bc, k, c)
    assert matrix.shape == (grid.size, grid.size) and matrix.format == "csr"
    assert abs(matrix - matrix.T).max() == 0
    zero = jnp.zeros((1, *grid.shape))
    for seed in range(3):
        u = random((1, *grid.shape), seed)
        expected = div_k_grad(u, k, grid, bc) - div_k_grad(zero, k, grid, bc) - c * u
        np.testing.assert_allclose(matrix @ u.ravel(), np.ravel(expected), atol=1e-10)


def test_sparse_export_channel_and_errors():
    grid = Grid((4, 4))
    k = np.stack([np.ones((4, 4)), 2 * np.ones((4, 4))])
    assert (
        to_sparse(grid, "dirichlet", k, channel=1)[0, 0]
        == 2 * to_sparse(grid, "dirichlet", 1.0)[0, 0]
    )
    with pytest.raises(ValueError, match=re.escape("`channel` must lie in [0, 1] for")):
        to_sparse(grid, "dirichlet", k, channel=2)
    with pytest.raises(ValueError, match=re.escape("`conductivity` must be a scalar or have")):
        to_sparse(grid, "dirichlet", np.ones((4, 4)))
    with pytest.raises(TypeError, match=re.escape("`grid` must be a `Grid`, got tuple")):
        to_sparse((4, 4), "dirichlet")


# ---------------------------------------------------------------------------------------------
# the backward-Euler stepper


def test_implicit_diffusion_matches_dense_backward_euler_at_large_dt(x64):
    grid = Grid((31, 31), placement="vertex")
    k = variable_k(grid)
    bc = (Dirichlet(1.0), Dirichlet(0.0))
    explicit_limit = 1 / (np.max(k) * sum(2 / h**2 for h in grid.spacing))
    dt = 1000 * explicit_limit
    stepper = ImplicitDiffusion(grid, bc, k, dt, source=2.0)
    u = random((1, 31, 31), 40)
    matrix = to_sparse(grid, bc, k).tocsc()
    boundary = np.asarray(div_k_grad(jnp.zeros((1, 31, 31)), jnp.asarray(k), grid, bc))
    identity = sparse.identity(grid.size, format="csc")
    for _ in range(3):
        rhs = u.ravel() + dt * (2.0 + boundary.ravel())
        expected = spsolve(identity - dt * matrix, rhs).reshape(u.shape)
        u = np.asarray(stepper(jnp.asarray(u)))
        assert relative(u, expected) <= 1e-10
    for _ in range(20):  # many steps: to the steady state
        u = stepper(u)
    steady = dense_solution(grid, bc, k, 2.0)
    assert relative(u, steady) <= 1e-6
    _, report = stepper.solve(u)
    assert bool(report.converged)


def test_implicit_diffusion_errors():
    grid = Grid((31, 31), placement="vertex")
    with pytest.raises(ValueError, match=re.escape("`dt` must be positive, got -1.0.")):
        ImplicitDiffusion(grid, "dirichlet", 1.0, -1.0)
    with pytest.raises(ValueError, match=re.escape("`dt` must be a scalar, got shape (2,).")):
        ImplicitDiffusion(grid, "dirichlet", 1.0, jnp.ones(2))
    with pytest.raises(TypeError, match=re.escape("`dt` must be a float or an array, got str")):
        ImplicitDiffusion(grid, "dirichlet", 1.0, "big")
    with pytest.raises(ValueError, match=re.escape("`conductivity` must be finite and positive")):
        ImplicitDiffusion(grid, "dirichlet", -1.0, 0.1)
    with pytest.raises(ValueError, match=re.escape("`grid` of shape (64, 64) does not coarsen")):
        ImplicitDiffusion(Grid((64, 64), placement="vertex"), "dirichlet", 1.0, 0.1)


# ---------------------------------------------------------------------------------------------
# argument errors


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(method="cg"), ValueError, "`method` must be one of ('mg', 'mgcg'), got 'cg'."),
        (dict(cycle="X"), ValueError, "`cycle` must be one of ('V', 'W', 'F'), got 'X'."),
        (
            dict(coarse="exact"),
            ValueError,
            "`coarse` must be one of ('rediscretise', 'galerkin'), got 'exact'.",
        ),
        (
            dict(smoothing=(0, 0)),
            ValueError,
            "`smoothing` must be two non-negative ints (sweeps before, after the coarse "
            "correction), not both zero, got (0, 0).",
        ),
        (dict(smoothing=2), ValueError, "not both zero, got 2."),
        (dict(max_iterations=0), ValueError, "`max_iterations` must be an int >= 1, got 0."),
        (dict(max_levels=0), ValueError, "`max_levels` must be an int >= 1, got 0."),
        (dict(fmg=1), TypeError, "`fmg` must be a bool, got int: 1."),
        (
            dict(method="mgcg", smoothing=(2, 1)),
            ValueError,
            "`method='mgcg'` needs a symmetric preconditioner: equal pre- and post-smoothing "
            "and cycle 'V' or 'W', got smoothing=(2, 1) and cycle='V'.",
        ),
        (dict(method="mgcg", cycle="F"), ValueError, "got smoothing=(2, 2) and cycle='F'."),
        (dict(tol=0.0), ValueError, "`tol` must be positive, got 0.0."),
        (dict(tol="1e-8"), TypeError, "`tol` must be a float or None, got str: '1e-8'."),
        (
            dict(conductivity=np.ones((1, 31, 30))),
            ValueError,
            "`conductivity` must be a scalar or have shape (1 or channels, 31, 31), got "
            "(1, 31, 30). The solver acts on one sample; batch with `jax.vmap`.",
        ),
        (
            dict(source=np.ones((31, 31))),
            ValueError,
            "`source` must be a scalar or have shape (1 or channels, 31, 31), got (31, 31).",
        ),
        (
            dict(initial=np.ones((31, 31))),
            ValueError,
            "`initial` must have shape (channels, 31, 31) for this 2D grid, got (31, 31).",
        ),
        (
            dict(conductivity=None),
            TypeError,
            "`conductivity` must be a float or an array, got None.",
        ),
        (dict(source="one"), TypeError, "`source` must be a float or an array, got str: 'one'."),
        (
            dict(source=np.ones((1, 31, 31), np.complex64)),
            TypeError,
            "`source` must be real and numeric, got dtype complex64.",
        ),
        (
            dict(conductivity=np.zeros((1, 31, 31))),
            ValueError,
            "`conductivity` must be finite and positive everywhere, got values in [0, 0].",
        ),
        (
            dict(reaction=-1.0),
            ValueError,
            "`reaction` must be finite and non-negative everywhere, got values in [-1, -1].",
        ),
        (
            dict(source=np.ones((2, 31, 31)), conductivity=np.ones((3, 31, 31))),
            ValueError,
            "`source` has 2 channels where the other arguments have 3; fields need 1 channel "
            "or the same number.",
        ),
        (dict(grid=(31, 31)), TypeError, "`grid` must be a `Grid`, got tuple: (31, 31)."),
        (dict(bc="robin"), ValueError, "Unknown boundary condition 'robin'"),
    ],
)
def test_argument_errors(kwargs, error, message):
    args = dict(grid=Grid((31, 31), placement="vertex"), bc="dirichlet", conductivity=1.0)
    args.update(source=1.0)
    args.update(kwargs)
    with pytest.raises(error, match=re.escape(message)):
        solve(**args)


def test_traced_coefficients_are_checked_when_the_solve_runs():
    grid = Grid((32, 32))
    solve_k = eqx.filter_jit(lambda k, c: solve(grid, "dirichlet", k, 1.0, reaction=c)[0])
    ones = jnp.ones((1, 32, 32))
    assert bool(jnp.all(jnp.isfinite(solve_k(ones, ones))))
    with pytest.raises(eqx.EquinoxRuntimeError, match=re.escape("`conductivity` must be positive")):
        solve_k(ones.at[0, 3, 4].set(-1.0), ones)
    with pytest.raises(eqx.EquinoxRuntimeError, match=re.escape("`reaction` must be non-negative")):
        solve_k(ones, -ones)


def test_galerkin_refuses_periodic_axes():
    with pytest.raises(ValueError, match=re.escape("`coarse='galerkin'` does not support")):
        solve(Grid((32, 32)), Periodic(), 1.0, 1.0, coarse="galerkin")
