"""Reference steppers against analytic solutions, naive NumPy loops and dense linear solves."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd import Dirichlet, Grid, Neumann
from trainax_fd.reference import (
    Advection,
    Burgers,
    Diffusion,
    FourierHeat,
    PoissonRelaxation,
    rollout,
)
from trainax_fd.stencil import div_k_grad

# ---------------------------------------------------------------------------------------------
# helpers


def f32(x) -> jax.Array:
    return jnp.asarray(np.asarray(x), dtype=jnp.float32)


def f64(x) -> jax.Array:
    """A float64 array; call inside the `x64` fixture."""
    return jnp.asarray(np.asarray(x, dtype=np.float64), dtype=jnp.float64)


def random_field(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def last(stepper, u0, num_steps):
    """The state after `num_steps` calls, through a compiled rollout."""
    return np.asarray(rollout(stepper, num_steps)(u0)[-1])


def slope(h, errors) -> float:
    """The log-log slope of `errors` against `h` (the observed order of convergence)."""
    return float(np.polyfit(np.log(h), np.log(errors), 1)[0])


def stable_choice(message: str) -> float:
    """The `dt` a stability error message suggests."""
    found = re.search(r"a stable choice is dt=([0-9.eE+-]+)\.", message)
    assert found is not None, message
    return float(found.group(1))


def reported_limit(message: str) -> float:
    found = re.search(r"exceeds the stable limit ([0-9.eE+-]+) of", message)
    assert found is not None, message
    return float(found.group(1))


# ---------------------------------------------------------------------------------------------
# advection


@pytest.mark.parametrize(
    "scheme, order, velocity", [("lax_wendroff", 2.0, 1.0), ("upwind", 1.0, -1.0)]
)
def test_advection_sine_converges_to_exact_shift(x64, scheme, order, velocity):
    """Error against `u(x - c t)` at t = 1/2 and CFL 1/2 shrinks like `h^order`."""
    sizes = np.array([40, 80, 160])
    errors = []
    for n in sizes:
        grid = Grid((n,), placement="periodic")
        x = grid.coordinates(0)
        dt, steps = 0.5 / n, int(n)  # |c| dt / h = 1/2, t = 1/2
        stepper = Advection(grid, "periodic", velocity, dt, scheme)
        u = last(stepper, f64(np.sin(2 * np.pi * x)[None]), steps)
        exact = np.sin(2 * np.pi * (x - velocity * steps * dt))
        errors.append(np.max(np.abs(u[0] - exact)))
    assert slope(1.0 / sizes, errors) == pytest.approx(order, abs=0.1)
    assert errors[-1] < (1e-3 if scheme == "lax_wendroff" else 5e-2)


def naive_upwind_1d(u: np.ndarray, c: float, dt: float, h: float) -> np.ndarray:
    du = (u - np.roll(u, 1, axis=-1)) / h if c > 0 else (np.roll(u, -1, axis=-1) - u) / h
    return u - dt * c * du


@pytest.mark.parametrize("velocity", [0.7, -0.7])
def test_upwind_one_step_matches_numpy_roll(velocity):
    grid = Grid((24,), extent=2.0, placement="periodic")
    h, dt = grid.spacing[0], 0.05
    u = random_field((2, 24), seed=1)
    out = Advection(grid, "periodic", velocity, dt)(f32(u))
    np.testing.assert_allclose(out, naive_upwind_1d(u, velocity, dt, h), rtol=1e-5, atol=1e-5)


def test_upwind_2d_velocity_vector_matches_numpy_roll():
    grid = Grid((12, 10), extent=(1.0, 2.0), placement="periodic")
    (hx, hy), dt, c = grid.spacing, 0.01, (1.5, -2.0)
    u = random_field((1, 12, 10), seed=2)
    dudx = (u - np.roll(u, 1, axis=1)) / hx  # c_x > 0: backward
    dudy = (np.roll(u, -1, axis=2) - u) / hy  # c_y < 0: forward
    expected = u - dt * (c[0] * dudx + c[1] * dudy)
    out = Advection(grid, "periodic", c, dt)(f32(u))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scheme, tol", [("lax_wendroff", 5e-3), ("upwind", 0.1)])
def test_advection_2d_velocity_vector_against_exact_shift(x64, scheme, tol):
    grid = Grid((48, 24), extent=(1.0, 2.0), placement="periodic")
    c, dt, steps = np.array([0.5, -0.25]), 0.01, 40
    x, y = (np.asarray(a) for a in grid.mesh())

    def exact(t):
        return np.sin(2 * np.pi * (x - c[0] * t)) * np.cos(np.pi * (y - c[1] * t))

    u = last(Advection(grid, "periodic", c, dt, scheme), f64(exact(0.0)[None]), steps)
    error = np.max(np.abs(u[0] - exact(steps * dt)))
    assert error < tol
    if scheme == "upwind":
        assert error > 1e-3  # first order: visibly diffusive at this resolution


def test_upwind_vertex_dirichlet_matches_hand_loop():
    """The upwind-advection experiment: c = -0.1, 40 interior points, dt = 0.1, u = 0 at ends."""
    grid = Grid((40,), extent=1.0, placement="vertex")
    c, dt, h = -0.1, 0.1, 1.0 / 41
    x = grid.coordinates(0)
    u = np.exp(-((x - 0.2) ** 2) / 0.01) + 0.5 * (x > 0.9)
    stepper = Advection(grid, "dirichlet", c, dt)
    out = np.asarray(u)
    state = f32(u[None])
    for _ in range(5):
        padded = np.concatenate([[0.0], out, [0.0]])  # boundary vertices carry the value 0
        new = np.empty_like(out)
        for i in range(40):
            # c < 0: information comes from the right, forward difference
            new[i] = out[i] - dt * c * (padded[i + 2] - padded[i + 1]) / h
        out = new
        state = stepper(state)
        np.testing.assert_allclose(state[0], out, rtol=1e-5, atol=1e-6)


def test_central_advection_one_step_and_warning():
    grid = Grid((16,), placement="periodic")
    h, dt, c = grid.spacing[0], 0.01, 0.8
    u = random_field((1, 16), seed=3)
    with pytest.warns(UserWarning, match=re.escape("unconditionally unstable")):
        stepper = Advection(grid, "periodic", c, dt, "central")
    expected = u - dt * c * (np.roll(u, -1, axis=1) - np.roll(u, 1, axis=1)) / (2 * h)
    np.testing.assert_allclose(stepper(f32(u)), expected, rtol=1e-5, atol=1e-5)


def test_lax_wendroff_one_step_matches_numpy_roll():
    grid = Grid((20,), placement="periodic")
    h, dt, c = grid.spacing[0], 0.02, -1.5
    nu = c * dt / h
    u = random_field((1, 20), seed=4)
    up, um = np.roll(u, -1, axis=1), np.roll(u, 1, axis=1)
    expected = u - 0.5 * nu * (up - um) + 0.5 * nu**2 * (up - 2 * u + um)
    out = Advection(grid, "periodic", c, dt, "lax_wendroff")(f32(u))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# diffusion


def test_diffusion_fourier_mode_converges_to_analytic_decay_1d(x64):
    """`sin(4 pi x)` decays like `exp(-k kappa^2 t)`; order 2 at fixed `k dt / h^2 = 1/4`."""
    k, t_end, sizes = 0.1, 0.05, np.array([20, 40, 80])
    errors = []
    for n in sizes:
        grid = Grid((n,), placement="periodic")
        x, h = grid.coordinates(0), grid.spacing[0]
        dt = 0.25 * h**2 / k
        steps = round(t_end / dt)
        assert steps * dt == pytest.approx(t_end)
        u = last(Diffusion(grid, "periodic", k, dt), f64(np.sin(4 * np.pi * x)[None]), steps)
        exact = np.exp(-k * (4 * np.pi) ** 2 * t_end) * np.sin(4 * np.pi * x)
        errors.append(np.max(np.abs(u[0] - exact)))
    assert slope(1.0 / sizes, errors) == pytest.approx(2.0, abs=0.1)
    assert errors[-1] < 3e-3


def test_diffusion_fourier_mode_analytic_decay_2d(x64):
    """Cell-centred points with periodic boundaries; `kappa = (2 pi, 4 pi)`."""
    grid = Grid((64, 32), extent=(1.0, 0.5), placement="cell")
    k, dt, steps = 0.05, 2e-4, 500
    x, y = (np.asarray(a) for a in grid.mesh())
    mode = np.sin(2 * np.pi * x) * np.cos(4 * np.pi * y)
    kappa2 = (2 * np.pi) ** 2 + (4 * np.pi) ** 2
    u = last(Diffusion(grid, "periodic", k, dt), f64(mode[None]), steps)
    exact = np.exp(-k * kappa2 * steps * dt) * mode
    np.testing.assert_allclose(u[0], exact, atol=2e-3)
    assert np.max(np.abs(u[0])) < 0.8  # it did decay


def test_diffusion_dirichlet_sine_is_a_discrete_eigenvector(x64):
    """On a vertex grid with u = 0 at both ends `sin(pi x_i)` is an exact eigenvector."""
    grid = Grid((31,), extent=1.0, placement="vertex")
    x, h = grid.coordinates(0), grid.spacing[0]
    k, dt, steps = 0.3, 4e-4, 25
    factor = 1 - dt * k * 4 / h**2 * np.sin(np.pi * h / 2) ** 2
    u = last(Diffusion(grid, "dirichlet", k, dt), f64(np.sin(np.pi * x)[None]), steps)
    np.testing.assert_allclose(u[0], factor**steps * np.sin(np.pi * x), rtol=1e-12, atol=1e-14)
    # and the discrete decay is close to the analytic one
    np.testing.assert_allclose(factor**steps, np.exp(-k * np.pi**2 * steps * dt), rtol=1e-3)


def naive_div_k_grad_1d(u, k, h, low_ghost, high_ghost, periodic=False):
    """`(k_{i+1/2}(u_{i+1} - u_i) - k_{i-1/2}(u_i - u_{i-1})) / h^2` with explicit loops.

    `low_ghost`/`high_ghost` map the row to the ghost value beyond each end; boundary faces
    take the edge value of `k` (wrap on periodic grids).
    """
    n = len(u)
    out = np.zeros(n)
    for i in range(n):
        if periodic:
            left, right = u[(i - 1) % n], u[(i + 1) % n]
            k_left = 0.5 * (k[i] + k[(i - 1) % n])
            k_right = 0.5 * (k[i] + k[(i + 1) % n])
        else:
            left = u[i - 1] if i > 0 else low_ghost(u)
            right = u[i + 1] if i < n - 1 else high_ghost(u)
            k_left = 0.5 * (k[i] + k[i - 1]) if i > 0 else k[0]
            k_right = 0.5 * (k[i] + k[i + 1]) if i < n - 1 else k[n - 1]
        out[i] = (k_right * (right - u[i]) - k_left * (u[i] - left)) / h**2
    return out


BC_CASES_1D = {
    # name: (placement, bc, low ghost, high ghost)
    "periodic": ("periodic", "periodic", None, None),
    "cell-dirichlet": (
        "cell",
        [(Dirichlet(1.5), Dirichlet(-0.5))],
        lambda u: 2 * 1.5 - u[0],
        lambda u: 2 * -0.5 - u[-1],
    ),
    "vertex-dirichlet": (
        "vertex",
        [(Dirichlet(1.5), Dirichlet(-0.5))],
        lambda u: 1.5,
        lambda u: -0.5,
    ),
    "cell-neumann": (
        "cell",
        [(Neumann(0.25), Neumann(-2.0))],
        lambda u: u[0] + 0.1 * 0.25,  # h = 0.1
        lambda u: u[-1] + 0.1 * -2.0,
    ),
}


@pytest.mark.parametrize("case", list(BC_CASES_1D))
def test_variable_diffusivity_one_step_matches_naive_loop(case):
    placement, bc, low, high = BC_CASES_1D[case]
    n = 9 if placement == "vertex" else 10
    grid = Grid((n,), extent=1.0, placement=placement)
    h = grid.spacing[0]
    assert h == pytest.approx(0.1)
    dt = 1e-3
    rng = np.random.default_rng(5)
    u = rng.standard_normal((2, n))
    k = 0.5 + rng.uniform(size=(1, n))
    out = Diffusion(grid, bc, f32(k), dt)(f32(u))
    for ch in range(2):
        rate = naive_div_k_grad_1d(u[ch], k[0], h, low, high, periodic=placement == "periodic")
        np.testing.assert_allclose(out[ch], u[ch] + dt * rate, rtol=1e-5, atol=1e-5)


def test_variable_diffusivity_2d_matches_naive_loop():
    grid = Grid((6, 5), extent=(1.2, 1.0), placement="periodic")
    (hx, hy), dt = grid.spacing, 1e-3
    rng = np.random.default_rng(6)
    u = rng.standard_normal((1, 6, 5))
    k = 0.5 + rng.uniform(size=(1, 6, 5))
    expected = np.empty((6, 5))
    for i in range(6):
        for j in range(5):
            total = 0.0
            for (di, dj), h in (((1, 0), hx), ((0, 1), hy)):
                ip, jp = (i + di) % 6, (j + dj) % 5
                im, jm = (i - di) % 6, (j - dj) % 5
                k_plus, k_minus = (
                    0.5 * (k[0, i, j] + k[0, ip, jp]),
                    0.5 * (k[0, i, j] + k[0, im, jm]),
                )
                flux_plus = k_plus * (u[0, ip, jp] - u[0, i, j])
                flux_minus = k_minus * (u[0, i, j] - u[0, im, jm])
                total += (flux_plus - flux_minus) / h**2
            expected[i, j] = u[0, i, j] + dt * total
    out = Diffusion(grid, "periodic", f32(k), dt)(f32(u))
    np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(16,), (8, 6)])
def test_zero_flux_neumann_conserves_the_sum(x64, shape):
    grid = Grid(shape, placement="cell")
    rng = np.random.default_rng(7)
    u0 = rng.standard_normal((2, *shape))
    k = 0.2 + rng.uniform(size=(1, *shape))
    dt = 0.9 / (np.max(k) * sum(2 / h**2 for h in grid.spacing))
    u = last(Diffusion(grid, "neumann", f64(k), dt), f64(u0), 50)
    axes = tuple(range(1, u.ndim))
    np.testing.assert_allclose(u.sum(axis=axes), u0.sum(axis=axes), rtol=0, atol=1e-11)
    assert np.max(np.abs(u - u0)) > 1e-2  # it did diffuse


def test_neumann_flux_changes_the_sum_by_the_boundary_flux(x64):
    """`d/dt sum(u) h = k (q_low + q_high)` for the outward derivatives `q`."""
    grid = Grid((12,), placement="cell")
    h, k, dt = grid.spacing[0], 0.7, 1e-4
    u0 = random_field((1, 12), seed=8)
    stepper = Diffusion(grid, [(Neumann(0.5), Neumann(1.25))], k, dt)
    u = last(stepper, f64(u0), 10)
    expected = u0.sum() + 10 * dt * k * (0.5 + 1.25) / h
    assert u.sum() == pytest.approx(expected, rel=1e-12)


def test_source_adds_dt_times_source():
    grid = Grid((6, 7), placement="cell")
    rng = np.random.default_rng(9)
    u = f32(rng.standard_normal((2, 6, 7)))
    source = rng.standard_normal((1, 6, 7))
    dt = 1e-3
    with_source = Diffusion(grid, "dirichlet", 0.5, dt, source=f32(source))(u)
    without = Diffusion(grid, "dirichlet", 0.5, dt)(u)
    np.testing.assert_allclose(
        with_source - without, np.broadcast_to(dt * source, (2, 6, 7)), atol=1e-6
    )
    # a constant state on a periodic grid only feels the source
    const = Diffusion(grid, "periodic", 0.5, dt, source=2.0)(jnp.ones((1, 6, 7)))
    np.testing.assert_allclose(const, 1.0 + 2.0 * dt, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Fourier heat


@pytest.mark.parametrize("placement", ["periodic", "cell"])
def test_fourier_heat_decays_mode_by_mode_1d(placement):
    grid = Grid((32,), extent=2.0, placement=placement)
    x = grid.coordinates(0)
    k, dt = 0.05, 0.3
    modes = [(1, 1.0, np.sin), (3, 0.5, np.cos), (7, 0.25, np.sin)]  # (m, amplitude, function)

    def field(t):
        return sum(
            a * np.exp(-k * (2 * np.pi * m / 2.0) ** 2 * t) * f(2 * np.pi * m * x / 2.0)
            for m, a, f in modes
        )

    out = FourierHeat(grid, k, dt)(f32(field(0.0)[None]))
    np.testing.assert_allclose(out[0], field(dt), atol=2e-6)


def test_fourier_heat_decays_mode_by_mode_2d():
    grid = Grid((16, 8), extent=(1.0, 2.0), placement="periodic")
    x, y = (np.asarray(a) for a in grid.mesh())
    k, dt = 0.02, 0.5
    # (mx, my, amplitude): cos(2 pi mx x / Lx) cos(2 pi my y / Ly)
    modes = [(1, 0, 1.0), (0, 1, -0.5), (2, 3, 0.75), (5, 1, 0.3)]

    def field(t):
        out = np.zeros_like(x)
        for mx, my, a in modes:
            kappa2 = (2 * np.pi * mx) ** 2 + (2 * np.pi * my / 2.0) ** 2
            out += a * np.exp(-k * kappa2 * t) * np.cos(2 * np.pi * mx * x) * np.cos(np.pi * my * y)
        return out

    u0 = np.stack([field(0.0), 2 * field(0.0)])  # two channels step independently
    out = FourierHeat(grid, k, dt)(f32(u0))
    np.testing.assert_allclose(out, np.stack([field(dt), 2 * field(dt)]), atol=5e-6)


def test_fourier_heat_is_the_limit_of_explicit_diffusion():
    grid = Grid((32,), placement="periodic")
    u0 = f32(random_field((1, 32), seed=10))
    k, t_end, steps = 0.01, 0.5, 2000
    exact = FourierHeat(grid, k, t_end)(u0)
    explicit = last(Diffusion(grid, "periodic", k, t_end / steps), u0, steps)
    np.testing.assert_allclose(explicit, exact, atol=2e-2)
    assert np.max(np.abs(np.asarray(exact) - np.asarray(u0))) > 0.1


def test_fourier_heat_errors():
    with pytest.raises(ValueError, match=re.escape("must be periodic for FourierHeat")):
        FourierHeat(Grid((8,), placement="vertex"), 0.1, 0.1)
    with pytest.raises(
        ValueError, match=re.escape("`diffusivity` of FourierHeat must be a scalar")
    ):
        FourierHeat(Grid((8,), placement="periodic"), jnp.ones((1, 8)), 0.1)


# ---------------------------------------------------------------------------------------------
# Burgers


def test_burgers_channel_count_must_equal_dimension():
    stepper = Burgers(Grid((8, 8), placement="periodic"), "periodic", 0.01, 1e-3)
    with pytest.raises(ValueError, match=re.escape("must have 2 channel(s) for Burgers")):
        stepper(jnp.ones((1, 8, 8)))
    assert stepper(jnp.ones((2, 8, 8))).shape == (2, 8, 8)


@pytest.mark.parametrize("bc", ["periodic", "dirichlet"])
def test_burgers_1d_one_step_matches_naive_loop(bc):
    grid = Grid((20,), placement="periodic" if bc == "periodic" else "cell")
    h, nu, dt = grid.spacing[0], 0.02, 5e-3
    x = grid.coordinates(0)
    u = np.sin(2 * np.pi * x) + 0.3  # both signs
    assert u.min() < 0 < u.max()
    n = len(u)
    if bc == "periodic":
        ext = np.concatenate([[u[-1]], u, [u[0]]])
    else:
        ext = np.concatenate([[-u[0]], u, [-u[-1]]])  # odd reflection about u = 0
    expected = np.empty(n)
    for i in range(n):
        left, mid, right = ext[i], ext[i + 1], ext[i + 2]
        convection = mid * (mid - left) / h if mid > 0 else mid * (right - mid) / h
        expected[i] = mid + dt * (nu * (left - 2 * mid + right) / h**2 - convection)
    out = Burgers(grid, bc, nu, dt)(f32(u[None]))
    np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-5)


def test_burgers_2d_one_step_matches_numpy_roll():
    grid = Grid((10, 12), extent=(1.0, 1.5), placement="periodic")
    (hx, hy), nu, dt = grid.spacing, 0.01, 1e-3
    u = random_field((2, 10, 12), seed=11)

    def upwind(f, v, axis, h):
        back = (f - np.roll(f, 1, axis=axis)) / h
        fwd = (np.roll(f, -1, axis=axis) - f) / h
        return np.where(v > 0, back, fwd)

    lap = sum(
        (np.roll(u, -1, axis=a) - 2 * u + np.roll(u, 1, axis=a)) / h**2
        for a, h in ((1, hx), (2, hy))
    )
    conv = u[0:1] * upwind(u, u[0:1], 1, hx) + u[1:2] * upwind(u, u[1:2], 2, hy)
    expected = u + dt * (nu * lap - conv)
    out = Burgers(grid, "periodic", nu, dt)(f32(u))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_burgers_max_stable_dt():
    grid = Grid((16, 8), extent=(1.0, 2.0), placement="periodic")
    (hx, hy), nu = grid.spacing, 0.05
    u = random_field((2, 16, 8), seed=12)
    stepper = Burgers(grid, "periodic", nu, 1e-4)
    rate = nu * (2 / hx**2 + 2 / hy**2) + np.abs(u[0]).max() / hx + np.abs(u[1]).max() / hy
    assert float(stepper.max_stable_dt(f32(u))) == pytest.approx(1 / rate, rel=1e-5)
    # the combined limit is within the viscous one, so a stepper with it is accepted
    Burgers(grid, "periodic", nu, stepper.max_stable_dt(f32(u)))


# ---------------------------------------------------------------------------------------------
# Poisson relaxation against a dense solve
#
# Compiling is the expensive part on CPU, so the tests share a few compiled rollouts: the same
# grid, boundary structure, coefficient shapes and number of sweeps hit the same cache entry
# (boundary values, conductivity, source and omega are array leaves).

SWEEPS_1D, SWEEPS_2D = 20000, 1000


def dense_solve(grid, conductivity, source, bc, bc_homogeneous) -> np.ndarray:
    """Solve `div(k grad u) + s = 0` with a dense matrix assembled column by column."""
    n = grid.size

    @jax.jit  # one compiled program instead of eager op-by-op dispatch
    def assemble(k):
        unit_vectors = jnp.eye(n, dtype=jnp.float64).reshape(n, 1, *grid.shape)
        columns = jax.vmap(lambda e: div_k_grad(e, k, grid, bc_homogeneous))(unit_vectors)
        affine = div_k_grad(jnp.zeros((1, *grid.shape), jnp.float64), k, grid, bc)
        return columns, affine

    columns, affine = assemble(conductivity)
    matrix = np.asarray(columns).reshape(n, n).T  # column j is the operator applied to e_j
    rhs = -(np.asarray(affine) + np.broadcast_to(np.asarray(source), (1, *grid.shape))).ravel()
    return np.linalg.solve(matrix, rhs).reshape(1, *grid.shape)


POISSON_CASES = {
    # name: (shape, placement, bc, homogeneous bc)
    "1d-cell-dirichlet": ((16,), "cell", [(Dirichlet(1.0), Dirichlet(-0.5))], "dirichlet"),
    "1d-vertex-dirichlet": ((16,), "vertex", Dirichlet(2.0), "dirichlet"),
    "1d-mixed": ((16,), "cell", [(Dirichlet(1.0), Neumann(0.5))], [(Dirichlet(), Neumann())]),
    "2d-vertex-dirichlet": ((8, 8), "vertex", Dirichlet(-1.0), "dirichlet"),
    "2d-mixed": (
        (8, 8),
        "cell",
        [Dirichlet(1.0), (Neumann(-0.5), Neumann(0.25))],
        ["dirichlet", "neumann"],
    ),
}


def poisson_problem(case, seed=13):
    """Grid, bc, variable conductivity, source and the dense solution of one case (x64)."""
    shape, placement, bc, bc0 = POISSON_CASES[case]
    grid = Grid(shape, extent=1.0, placement=placement)
    rng = np.random.default_rng(seed)
    k = f64(0.5 + 1.5 * rng.uniform(size=(1, *shape)))
    source = f64(rng.standard_normal((1, *shape)))
    return grid, bc, k, source, dense_solve(grid, k, source, bc, bc0)


def relax(stepper, shape) -> np.ndarray:
    """All iterates `u_1, ..., u_n` from `u_0 = 0`, shape `(n, 1, *shape)`."""
    sweeps = SWEEPS_1D if len(shape) == 1 else SWEEPS_2D
    return np.asarray(rollout(stepper, sweeps)(f64(np.zeros((1, *shape)))))


@pytest.mark.parametrize(
    "case, method, omega",
    [
        ("1d-cell-dirichlet", "jacobi", 1.0),
        ("1d-cell-dirichlet", "red_black", 1.0),
        ("1d-vertex-dirichlet", "red_black", 1.0),
        ("1d-mixed", "jacobi", 2 / 3),
        ("1d-mixed", "red_black", 1.6),
        ("2d-vertex-dirichlet", "jacobi", 0.8),
        ("2d-mixed", "red_black", 1.2),
    ],
)
def test_poisson_relaxation_converges_to_dense_solve(x64, case, method, omega):
    grid, bc, k, source, expected = poisson_problem(case)
    stepper = PoissonRelaxation(grid, bc, k, source, omega=omega, method=method)
    u = relax(stepper, grid.shape)[-1]
    scale = np.max(np.abs(expected))
    np.testing.assert_allclose(u, expected, atol=1e-8 * scale)


@pytest.mark.parametrize("method", ["jacobi", "red_black"])
def test_poisson_matches_analytic_quadratic(x64, method):
    """`-u'' = 1`, u(0) = u(1) = 0: the 3-point stencil is exact for `x (1 - x) / 2`."""
    grid = Grid((16,), extent=1.0, placement="vertex")
    x = grid.coordinates(0)
    exact = x * (1 - x) / 2
    ones = f64(np.ones((1, 16)))  # fields, so that the compiled rollout is shared
    dense = dense_solve(grid, ones, ones, "dirichlet", "dirichlet")
    np.testing.assert_allclose(dense[0], exact, rtol=1e-12)
    stepper = PoissonRelaxation(grid, "dirichlet", ones, ones, method=method)
    np.testing.assert_allclose(relax(stepper, grid.shape)[-1, 0], exact, rtol=1e-10)


def test_red_black_needs_fewer_sweeps_than_jacobi(x64):
    grid, bc, k, source, expected = poisson_problem("1d-cell-dirichlet")
    tol = 1e-6 * np.max(np.abs(expected))
    sweeps = {}
    for method in ("jacobi", "red_black"):
        iterates = relax(PoissonRelaxation(grid, bc, k, source, method=method), grid.shape)
        errors = np.max(np.abs(iterates - expected[None]), axis=(1, 2))
        below = np.flatnonzero(errors < tol)
        assert below.size, f"{method} did not converge"
        sweeps[method] = int(below[0]) + 1
    assert sweeps["red_black"] < 0.65 * sweeps["jacobi"]


def test_poisson_residual_decreases(x64):
    grid, bc, k, source, _ = poisson_problem("2d-vertex-dirichlet", seed=15)
    k = f64(np.full((1, 8, 8), 2.0))  # constant diagonal on a vertex grid: Jacobi is symmetric
    stepper = PoissonRelaxation(grid, bc, k, source, omega=0.8, method="jacobi")
    iterates = np.concatenate([np.zeros((1, 1, 8, 8)), relax(stepper, grid.shape)[:200]])
    residuals = np.asarray(jax.jit(jax.vmap(stepper.residual))(f64(iterates)))
    # at u = 0 the residual is the source plus the boundary value -1 seen through the stencil
    boundary = -1.0 * 2.0 / grid.spacing[0] ** 2
    expected = np.asarray(source)[0].copy()
    expected[0, :] += boundary
    expected[-1, :] += boundary
    expected[:, 0] += boundary
    expected[:, -1] += boundary
    np.testing.assert_allclose(residuals[0, 0], expected, rtol=1e-12)
    norms = np.linalg.norm(residuals.reshape(len(residuals), -1), axis=1)
    assert np.all(np.diff(norms) <= 1e-12 * norms[0])
    assert norms[-1] < 1e-3 * norms[0]


def test_poisson_errors():
    grid = Grid((8,), placement="cell")
    with pytest.raises(ValueError, match=re.escape("`omega` must lie in (0, 1] for jacobi")):
        PoissonRelaxation(grid, "dirichlet", omega=1.5)
    with pytest.raises(ValueError, match=re.escape("`omega` must lie in (0, 2] for red_black")):
        PoissonRelaxation(grid, "dirichlet", omega=2.5, method="red_black")
    with pytest.raises(ValueError, match=re.escape("`omega` must lie in (0, 1]")):
        PoissonRelaxation(grid, "dirichlet", omega=0.0)
    with pytest.raises(ValueError, match=re.escape("`method` must be one of")):
        PoissonRelaxation(grid, "dirichlet", method="sor")
    with pytest.raises(
        ValueError, match=re.escape("`conductivity` must be a scalar or have shape")
    ):
        PoissonRelaxation(grid, "dirichlet", conductivity=jnp.ones((8,)))
    with pytest.raises(ValueError, match="vmap"):
        PoissonRelaxation(grid, "dirichlet").residual(jnp.ones((8,)))


# ---------------------------------------------------------------------------------------------
# stability checks


GRID_2D = Grid((16, 8), extent=(1.0, 2.0), placement="periodic")
H0, H1 = GRID_2D.spacing

STABILITY_CASES = {
    # name: (factory(dt), limit, phrase naming the scheme and its condition)
    "upwind": (
        lambda dt: Advection(GRID_2D, "periodic", (1.0, -2.0), dt),
        1 / (1.0 / H0 + 2.0 / H1),
        "upwind advection (dt * sum_a |c_a| / h_a <= 1)",
    ),
    "lax_wendroff": (
        lambda dt: Advection(GRID_2D, "periodic", (1.0, -2.0), dt, "lax_wendroff"),
        1 / max(1.0 / H0, 2.0 / H1),
        "Lax-Wendroff advection (|c_a| dt / h_a <= 1)",
    ),
    "diffusion": (
        lambda dt: Diffusion(GRID_2D, "periodic", 0.3, dt),
        1 / (0.3 * (2 / H0**2 + 2 / H1**2)),
        "explicit diffusion (dt max(k) sum 2/h^2 <= 1)",
    ),
    "diffusion-field": (
        lambda dt: Diffusion(
            GRID_2D, "periodic", jnp.full((1, 16, 8), 0.1).at[0, 3, 2].set(0.4), dt
        ),
        1 / (0.4 * (2 / H0**2 + 2 / H1**2)),
        "explicit diffusion (dt max(k) sum 2/h^2 <= 1)",
    ),
    "burgers": (
        lambda dt: Burgers(GRID_2D, "periodic", 0.2, dt),
        1 / (0.2 * (2 / H0**2 + 2 / H1**2)),
        "viscous Burgers (dt nu sum_a 2/h_a^2 <= 1)",
    ),
}


@pytest.mark.parametrize("case", list(STABILITY_CASES))
def test_dt_over_the_limit_raises_and_suggests_a_stable_dt(case):
    factory, limit, phrase = STABILITY_CASES[case]
    with pytest.raises(ValueError, match=re.escape("exceeds the stable limit")) as info:
        factory(1.5 * limit)
    message = str(info.value)
    assert phrase in message
    assert reported_limit(message) == pytest.approx(limit, rel=1e-5)
    suggested = stable_choice(message)
    assert 0 < suggested < limit
    factory(suggested)  # accepted
    factory(limit * (1 - 1e-6))  # just below the limit is stable


@pytest.mark.parametrize(
    "case, jit",
    [
        ("upwind", jax.jit),
        ("lax_wendroff", eqx.filter_jit),
        ("diffusion", eqx.filter_jit),
        ("diffusion-field", jax.jit),
        ("burgers", jax.jit),
    ],
)
def test_traced_dt_over_the_limit_raises_at_run_time(case, jit):
    factory, limit, _ = STABILITY_CASES[case]
    channels = 2 if case == "burgers" else 1
    u = jnp.zeros((channels, 16, 8))

    @jit
    def run(dt):
        return factory(dt)(u)

    assert run(jnp.asarray(0.5 * limit)).shape == u.shape
    with pytest.raises(Exception, match="stable limit"):
        jax.block_until_ready(run(jnp.asarray(1.5 * limit)))


def test_non_positive_dt_raises():
    grid = Grid((8,), placement="periodic")
    with pytest.raises(ValueError, match=re.escape("`dt` must be positive")):
        Diffusion(grid, "periodic", 1.0, -1e-3)
    with pytest.raises(ValueError, match=re.escape("`dt` must be positive")):
        Advection(grid, "periodic", 1.0, 0.0)


def test_central_advection_warns_only_for_nonzero_velocity():
    grid = Grid((8,), placement="periodic")
    with pytest.warns(UserWarning, match=re.escape("Central (FTCS) advection")):
        Advection(grid, "periodic", -1.0, 10.0, "central")  # no dt limit, but a warning
    Advection(grid, "periodic", 0.0, 0.1, "central")  # nothing moves: no warning (errors)


# ---------------------------------------------------------------------------------------------
# input validation


STEPPERS_1D = {
    "advection": lambda g: Advection(g, "periodic", 1.0, 1e-3),
    "diffusion": lambda g: Diffusion(g, "periodic", 1.0, 1e-4),
    "fourier_heat": lambda g: FourierHeat(g, 1.0, 1e-3),
    "burgers": lambda g: Burgers(g, "periodic", 0.01, 1e-4),
    "poisson": lambda g: PoissonRelaxation(g, "periodic", 1.0, 0.0),
}


@pytest.mark.parametrize("name", list(STEPPERS_1D))
@pytest.mark.parametrize("shape", [(16,), (3, 1, 16), (1, 15)])
def test_wrong_input_shape_mentions_vmap(name, shape):
    stepper = STEPPERS_1D[name](Grid((16,), placement="periodic"))
    with pytest.raises(ValueError, match=r"must have shape \(channels, 16\).*vmap"):
        stepper(jnp.ones(shape))


def test_advection_argument_errors():
    grid = Grid((8, 8), placement="periodic")
    with pytest.raises(
        ValueError, match=re.escape("`velocity` must be a scalar or have shape (2,)")
    ):
        Advection(grid, "periodic", (1.0, 2.0, 3.0), 1e-3)
    with pytest.raises(ValueError, match=re.escape("`scheme` must be one of")):
        Advection(grid, "periodic", 1.0, 1e-3, "downwind")


@pytest.mark.parametrize(
    "factory, name",
    [
        (lambda v: Diffusion(Grid((8,)), "dirichlet", v, 1e-3), "diffusivity"),
        (lambda v: Diffusion(Grid((8,)), "dirichlet", 1.0, v), "dt"),
        (lambda v: Advection(Grid((8,)), "dirichlet", v, 1e-3), "velocity"),
        (lambda v: Burgers(Grid((8,)), "dirichlet", v, 1e-3), "viscosity"),
        (lambda v: FourierHeat(Grid((8,)), v, 1e-3), "diffusivity"),
        (lambda v: PoissonRelaxation(Grid((8,)), "dirichlet", conductivity=v), "conductivity"),
    ],
)
@pytest.mark.parametrize("value", ["fast", True, jnp.ones(2, dtype=bool)])
def test_non_numeric_coefficient_is_a_type_error(factory, name, value):
    with pytest.raises(TypeError, match=re.escape(f"`{name}` must be")):
        factory(value)


def test_none_coefficient_names_the_argument():
    """`None` is not numeric either; the error must still name the argument (DESIGN)."""
    with pytest.raises((TypeError, ValueError), match=re.escape("`diffusivity`")):
        Diffusion(Grid((8,)), "dirichlet", None, 1e-3)


@pytest.mark.parametrize(
    "factory, match",
    [
        (
            lambda: Diffusion(Grid((8,), placement="vertex"), "neumann", 1.0, 1e-4),
            "`Neumann` does not fit a grid with placement 'vertex'",
        ),
        (
            lambda: Advection(Grid((8,), placement="vertex"), "periodic", 1.0, 1e-3),
            "`Periodic` does not fit a grid with placement 'vertex'",
        ),
        (
            lambda: Diffusion(Grid((8,)), "reflecting", 1.0, 1e-4),
            "Unknown boundary condition 'reflecting'",
        ),
        (
            lambda: Burgers(Grid((8, 8)), ["periodic"], 0.1, 1e-4),
            "`bc` must give one entry per axis (2 for this grid), got 1",
        ),
        (
            lambda: PoissonRelaxation(Grid((8,)), [("periodic", "dirichlet")]),
            "`Periodic` must be used on both sides",
        ),
        (
            lambda: Diffusion(Grid((8, 4)), "dirichlet", jnp.ones((1, 4, 8)), 1e-4),
            "`diffusivity` must be a scalar or have shape (1 or channels, 8, 4)",
        ),
        (
            lambda: Diffusion(Grid((8,)), "dirichlet", 1.0, 1e-4, source=jnp.ones((2, 7))),
            "`source` must be a scalar or have shape (1 or channels, 8)",
        ),
        (
            lambda: Burgers(Grid((8,)), "dirichlet", jnp.ones(2), 1e-4),
            "`viscosity` must be a scalar",
        ),
    ],
)
def test_grid_boundary_and_coefficient_mismatch_errors(factory, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        factory()


# ---------------------------------------------------------------------------------------------
# coefficients are array leaves: differentiable and vmappable


def diffusion_loss(stepper, u0):
    return jnp.sum(rollout(stepper, 3)(u0)[-1] ** 2)


def test_filter_grad_wrt_diffusivity_field_matches_finite_difference(x64):
    grid = Grid((12,), placement="cell")
    rng = np.random.default_rng(17)
    u0 = f64(rng.standard_normal((1, 12)))
    k = f64(0.5 + rng.uniform(size=(1, 12)))
    direction = rng.standard_normal((1, 12))
    stepper = Diffusion(grid, "neumann", k, 1e-3)
    grads = eqx.filter_jit(eqx.filter_grad(diffusion_loss))(stepper, u0)
    eps = 1e-6

    def shifted(sign):
        moved = Diffusion(grid, "neumann", k + sign * eps * f64(direction), 1e-3)
        return float(eqx.filter_jit(diffusion_loss)(moved, u0))

    fd = (shifted(1) - shifted(-1)) / (2 * eps)
    assert float(np.sum(np.asarray(grads.diffusivity) * direction)) == pytest.approx(fd, rel=1e-6)


def test_grad_wrt_velocity_matches_finite_difference(x64):
    grid = Grid((8, 6), placement="periodic")
    u0 = f64(random_field((1, 8, 6), seed=18))
    target = f64(random_field((1, 8, 6), seed=19))

    @jax.jit
    def loss(c):
        trajectory = rollout(Advection(grid, "periodic", c, 0.01), 3)(u0)
        return jnp.mean((trajectory[-1] - target) ** 2)

    c, eps = np.array([0.8, -1.3]), 1e-6
    grad = np.asarray(jax.jit(jax.grad(loss))(f64(c)))
    for a in range(2):
        step = np.eye(2)[a] * eps
        fd = (loss(f64(c + step)) - loss(f64(c - step))) / (2 * eps)
        assert grad[a] == pytest.approx(float(fd), rel=1e-6)


def test_vmap_over_diffusivities_matches_python_loop():
    grid = Grid((16,), placement="cell")
    u0 = f32(random_field((1, 16), seed=20))
    ks = jnp.asarray([0.1, 0.5, 1.0, 2.0])
    dt = 1e-4

    def run(k):
        return rollout(Diffusion(grid, "dirichlet", k, dt), 3)(u0)

    batched = jax.vmap(run)(ks)
    looped = np.stack([np.asarray(run(float(k))) for k in ks])
    np.testing.assert_allclose(batched, looped, rtol=1e-6, atol=1e-7)
    assert not np.allclose(batched[0], batched[-1])


def test_vmap_over_velocities_and_dt():
    grid = Grid((16,), placement="periodic")
    u0 = f32(random_field((1, 16), seed=21))
    cs = jnp.asarray([-1.0, 0.5, 2.0])
    dts = jnp.asarray([0.01, 0.02, 0.005])
    batched = jax.vmap(lambda c, dt: Advection(grid, "periodic", c, dt)(u0))(cs, dts)
    for i in range(3):
        expected = naive_upwind_1d(np.asarray(u0), float(cs[i]), float(dts[i]), 1 / 16)
        np.testing.assert_allclose(batched[i], expected, rtol=1e-5, atol=1e-5)
