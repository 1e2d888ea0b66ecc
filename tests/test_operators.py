"""Operators: gradient, Laplacian, `div(k grad u)` and its diagonal."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd.stencil import (
    Dirichlet,
    Grid,
    Neumann,
    Periodic,
    central,
    derivative,
    div_k_grad,
    div_k_grad_diagonal,
    gradient,
    laplacian,
)


def run(fn, *args):
    """Call `fn` compiled, get NumPy arrays back: op-by-op compiling would dominate test time."""
    return jax.tree.map(np.asarray, eqx.filter_jit(fn)(*args))


def mesh(grid):
    return np.meshgrid(*[grid.coordinates(a) for a in range(grid.ndim)], indexing="ij")


def to_bc(specs):
    """Per-axis `(low, high)` pairs of ("P",), ("D", value) or ("N", flux)."""
    make = {"P": lambda s: Periodic(), "D": lambda s: Dirichlet(s[1]), "N": lambda s: Neumann(s[1])}
    return tuple((make[lo[0]](lo), make[hi[0]](hi)) for lo, hi in specs)


# ---------------------------------------------------------------------------------------------
# gradient and Laplacian


@pytest.mark.parametrize("placement", ["cell", "vertex"])
def test_gradient_and_laplacian_exact_on_linear_fields(x64, placement):
    """u = a + b x + c y per channel, Dirichlet values varying along each boundary."""
    grid = Grid((5, 4), extent=(1.0, 2.0), placement=placement)
    x, y = mesh(grid)
    a, b, c = (np.array(v)[:, None, None] for v in ([0.5, -1.0], [1.5, 2.0], [-0.7, 0.3]))
    u = a + b * x + c * y
    grad_x, grad_y = np.broadcast_to(b, u.shape), np.broadcast_to(c, u.shape)
    a, b, c = a[:, 0], b[:, 0], c[:, 0]  # (channels, 1): broadcast along the faces
    xs, ys = grid.coordinates(0), grid.coordinates(1)
    bc = (  # u on x = 0, x = 1 (faces of shape (channels, 4)), then on y = 0, y = 2
        (Dirichlet(a + c * ys), Dirichlet(a + b + c * ys)),
        (Dirichlet(a + b * xs), Dirichlet(a + b * xs + 2 * c)),
    )

    def apply(u, bc):
        grads = [gradient(u, grid, bc, accuracy=acc) for acc in (2, 4, 6)]
        return grads, laplacian(u, grid, bc), derivative(u, grid, bc, axis=1, accuracy=4)

    grads, lap, dy = run(apply, jnp.asarray(u), bc)
    for grad in grads:
        assert grad.shape == (2, 2, 5, 4)  # (dim, channels, *spatial)
        np.testing.assert_allclose(grad[0], grad_x, rtol=1e-11)
        np.testing.assert_allclose(grad[1], grad_y, rtol=1e-11)
    np.testing.assert_allclose(lap, 0.0, atol=1e-10)
    np.testing.assert_allclose(dy, grads[1][1], rtol=1e-11)


def test_laplacian_and_div_k_grad_exact_on_quadratics_with_neumann(x64):
    grid = Grid((6, 5), extent=(1.0, 2.0), placement="cell")
    x, y = mesh(grid)
    u = jnp.asarray(((x - 0.3) ** 2 + 2 * (y - 0.6) ** 2)[None])
    # outward normal derivatives: -u_x(0), u_x(1), -u_y(0), u_y(2)
    bc = ((Neumann(0.6), Neumann(1.4)), (Neumann(2.4), Neumann(5.6)))
    lap, dkg, dkg_field = run(
        lambda u, bc: (
            laplacian(u, grid, bc),
            div_k_grad(u, 3.0, grid, bc),
            div_k_grad(u, jnp.full((1, 6, 5), 3.0), grid, bc),
        ),
        u,
        bc,
    )
    np.testing.assert_allclose(lap, 6.0, rtol=1e-10)
    np.testing.assert_allclose(dkg, 18.0, rtol=1e-10)
    np.testing.assert_allclose(dkg_field, 18.0, rtol=1e-10)


@pytest.mark.parametrize(
    "shape, extent, placement, modes",
    [
        ((16, 12), (1.0, 2.0), "periodic", (2, 1)),
        ((8, 6, 10), (1.0, 0.5, 2.0), ("periodic", "cell", "periodic"), (1, 1, 2)),
    ],
)
def test_laplacian_of_fourier_modes(x64, shape, extent, placement, modes):
    grid = Grid(shape, extent=extent, placement=placement)
    k = 2 * np.pi * np.array(modes) / np.array(extent)
    h = np.array(grid.spacing)
    u = np.sin(sum(ka * xa for ka, xa in zip(k, mesh(grid))))[None]
    laplacians = lambda u: [laplacian(u, grid, "periodic", acc) for acc in (2, 4)]  # noqa: E731
    lap2, lap4 = run(laplacians, jnp.asarray(u))
    exact = -(k @ k) * u
    # second order: the symbol -4/h^2 sin^2(k h / 2) differs from -k^2 by at most k^4 h^2 / 12
    np.testing.assert_allclose(lap2, -np.sum(4 / h**2 * np.sin(k * h / 2) ** 2) * u, atol=1e-9)
    assert np.abs(lap2 - exact).max() <= np.sum(k**4 * h**2) / 12 + 1e-9
    assert np.abs(lap2 - exact).max() > 0.1 * np.sum(k**4 * h**2) / 12  # truly second order
    assert np.abs(lap4 - exact).max() <= np.sum(k**6 * h**4) / 90 + 1e-9


# ---------------------------------------------------------------------------------------------
# div(k grad u) against a naive loop


def naive_neighbour(u, k, grid, specs, idx, axis, j):
    """u and k at index j along `axis` next to point idx; a ghost from `specs` outside."""
    n, h = grid.shape[axis], grid.spacing[axis]
    at = lambda j: (*idx[: axis + 1], j, *idx[axis + 2 :])  # noqa: E731
    if 0 <= j < n:
        return u[at(j)], k[at(j)]
    spec = specs[axis][0 if j < 0 else 1]
    if spec[0] == "P":
        return u[at(j % n)], k[at(j % n)]
    edge = u[idx]  # the boundary face takes the edge value of k: the mean of k and k
    if spec[0] == "N":
        return edge + h * spec[1], k[idx]
    if grid.placement[axis] == "cell":
        return 2 * spec[1] - edge, k[idx]
    return spec[1], k[idx]


def naive_div_k_grad(u, k, grid, specs):
    """(k_{i+1/2}(u_{i+1} - u_i) - k_{i-1/2}(u_i - u_{i-1})) / h^2 point by point."""
    u = np.asarray(u, dtype=np.float64)
    k = np.broadcast_to(np.asarray(k, dtype=np.float64), u.shape)
    out = np.zeros_like(u)
    for idx in np.ndindex(*u.shape):
        for axis in range(grid.ndim):
            i = idx[axis + 1]
            u_m, k_m = naive_neighbour(u, k, grid, specs, idx, axis, i - 1)
            u_p, k_p = naive_neighbour(u, k, grid, specs, idx, axis, i + 1)
            flux_p = 0.5 * (k[idx] + k_p) * (u_p - u[idx])
            flux_m = 0.5 * (k[idx] + k_m) * (u[idx] - u_m)
            out[idx] += (flux_p - flux_m) / grid.spacing[axis] ** 2
    return out


CASES = [  # shape, placement, per-axis boundary specs
    ((7,), "cell", [(("D", 1.0), ("N", 0.5))]),
    ((7,), "vertex", [(("D", 0.3), ("D", -1.0))]),
    ((7,), "periodic", [(("P",), ("P",))]),
    ((5, 4), ("periodic", "cell"), [(("P",), ("P",)), (("D", 1.0), ("N", 0.5))]),
    ((5, 4), "vertex", [(("D", 0.5), ("D", -1.0)), (("D", 2.0), ("D", 0.0))]),
    ((5, 4), "cell", [(("N", 0.3), ("N", 0.0)), (("D", 0.0), ("D", 1.5))]),
    ((5, 4), ("cell", "vertex"), [(("N", 0.0), ("D", 1.0)), (("D", -0.5), ("D", 0.5))]),
]


@pytest.mark.parametrize("shape, placement, specs", CASES)
def test_div_k_grad_matches_naive_loop(x64, shape, placement, specs):
    grid = Grid(shape, extent=(1.0, 2.0)[: len(shape)], placement=placement)
    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, *shape))
    k_shared, k_per_channel = rng.uniform(0.5, 2.0, (1, *shape)), rng.uniform(0.5, 2.0, (2, *shape))
    ks = [k_shared, k_per_channel, 0.7]
    outs, lap = run(
        lambda u, ks, bc: ([div_k_grad(u, k, grid, bc) for k in ks], laplacian(u, grid, bc)),
        jnp.asarray(u),
        [jnp.asarray(k) for k in ks[:2]] + ks[2:],
        to_bc(specs),
    )
    for out, k in zip(outs, ks):
        assert out.shape == u.shape
        np.testing.assert_allclose(out, naive_div_k_grad(u, k, grid, specs), rtol=1e-11, atol=1e-9)
    # constant k is k times the Laplacian (same ghosts)
    np.testing.assert_allclose(outs[2], 0.7 * lap, rtol=1e-12, atol=1e-10)


def test_div_k_grad_converges_at_second_order(x64):
    sizes = (32, 48, 64, 96, 128)
    grids = [Grid((n,), extent=1.0, placement="periodic") for n in sizes]
    xs = [g.coordinates(0) for g in grids]
    w = 2 * np.pi
    us = [np.exp(np.sin(w * x))[None] for x in xs]
    ks = [(1.5 + np.cos(w * x))[None] for x in xs]
    outs = run(
        lambda us, ks: [div_k_grad(u, k, g, "periodic") for u, k, g in zip(us, ks, grids)],
        [jnp.asarray(u) for u in us],
        [jnp.asarray(k) for k in ks],
    )
    errors = []
    for out, x, u, k in zip(outs, xs, us, ks):
        du = w * np.cos(w * x) * u[0]
        d2u = (w * np.cos(w * x)) ** 2 * u[0] - w**2 * np.sin(w * x) * u[0]
        exact = -w * np.sin(w * x) * du + k[0] * d2u  # k' u' + k u''
        errors.append(np.abs(out[0] - exact).max())
    rate = np.polyfit(np.log([g.spacing[0] for g in grids]), np.log(errors), 1)[0]
    assert abs(rate - 2) < 0.2, errors


# ---------------------------------------------------------------------------------------------
# Diagonal against the assembled matrix

DIAGONAL_CASES = [  # shape, placement, homogeneous per-axis specs, k: a field or a scalar
    ((6,), "cell", [(("D", 0.0), ("D", 0.0))], "field"),
    ((6,), "vertex", [(("D", 0.0), ("D", 0.0))], "field"),
    ((6,), "cell", [(("N", 0.0), ("N", 0.0))], "field"),
    ((6,), "periodic", [(("P",), ("P",))], "field"),
    ((6,), "cell", [(("D", 0.0), ("N", 0.0))], "field"),
    ((1,), "cell", [(("D", 0.0), ("D", 0.0))], "field"),
    ((4, 3), ("periodic", "cell"), [(("P",), ("P",)), (("D", 0.0), ("N", 0.0))], "field"),
    ((4, 3), "vertex", [(("D", 0.0), ("D", 0.0))] * 2, "field"),
    ((4, 3), ("cell", "vertex"), [(("N", 0.0), ("N", 0.0)), (("D", 0.0), ("D", 0.0))], "scalar"),
    ((4, 1), ("cell", "periodic"), [(("N", 0.0), ("D", 0.0)), (("P",), ("P",))], "field"),
    ((2, 3), "periodic", [(("P",), ("P",))] * 2, "scalar"),
]


@pytest.mark.parametrize("shape, placement, specs, k", DIAGONAL_CASES)
def test_div_k_grad_diagonal_matches_assembled_matrix(x64, shape, placement, specs, k):
    grid = Grid(shape, extent=(1.0, 2.0)[: len(shape)], placement=placement)
    if k == "field":
        k = jnp.asarray(np.random.default_rng(1).uniform(0.5, 2.0, (1, *shape)))
    else:
        k = 1.3
    size = grid.size
    basis = np.eye(size).reshape(size, 1, *shape)  # unit vectors, one sample each

    def apply(basis, k, bc):
        columns = jax.vmap(lambda e: div_k_grad(e, k, grid, bc))(basis)
        return columns, div_k_grad_diagonal(basis[0], k, grid, bc)

    columns, diagonal = run(apply, basis, k, to_bc(specs))
    matrix = columns.reshape(size, size).T  # column j is the image of unit vector j
    assert diagonal.shape == (1, *shape)
    np.testing.assert_allclose(diagonal.reshape(-1), np.diag(matrix), rtol=1e-12, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("operator", [div_k_grad, div_k_grad_diagonal])
@pytest.mark.parametrize(
    "u_shape, k_shape, grid_shape, expected",
    [
        ((1, 8), (8,), (8,), "(1 or channels, 8), got (8,)."),
        ((2, 4, 5), (3, 4, 5), (4, 5), "(1 or channels, 4, 5), got (3, 4, 5)."),
        ((1, 4, 5), (1, 5, 4), (4, 5), "(1 or channels, 4, 5), got (1, 5, 4)."),
    ],
)
def test_k_with_a_wrong_shape(operator, u_shape, k_shape, grid_shape, expected):
    message = "`k` must be a scalar or have shape " + expected
    u, k = np.zeros(u_shape, np.float32), np.ones(k_shape, np.float32)
    with pytest.raises(ValueError, match=re.escape(message)):
        operator(u, k, Grid(grid_shape), "dirichlet")


@pytest.mark.parametrize(
    "operator",
    [
        lambda u, g: gradient(u, g, "dirichlet"),
        lambda u, g: laplacian(u, g, "dirichlet"),
        lambda u, g: div_k_grad(u, 1.0, g, "dirichlet"),
        lambda u, g: div_k_grad_diagonal(u, 1.0, g, "dirichlet"),
        lambda u, g: central()(u, g, "dirichlet"),
    ],
)
@pytest.mark.parametrize("u_shape", [(3, 1, 8), (1, 5)])
def test_operators_reject_a_batch_or_a_wrong_grid(operator, u_shape):
    message = f"`u` must have shape (channels, 8) for this 1D grid, got {u_shape}."
    with pytest.raises(ValueError, match=re.escape(message) + ".*batch with `jax.vmap`"):
        jax.eval_shape(lambda u: operator(u, Grid((8,))), np.zeros(u_shape))  # nothing computed
