"""Derivatives at points, domains, samplers and the physics-informed objective: the original
examples with their numbers, `jax.hessian` and hand-written losses as oracles, and the stencil
core's Laplacian converging to the autodiff one. The manufactured Poisson problem trains at
reduced sizes in `test_pinn.py` (the notebook at small settings)."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import trainax_fd.autodiff as ad
from trainax_fd import data as D, trainers as T
from trainax_fd.stencil import Dirichlet as GhostDirichlet, Grid, laplacian as fd_laplacian

KEY = jax.random.key(0)


def mlp(dim, out="scalar", *, key=KEY, width=16, depth=2):
    return eqx.nn.MLP(dim, out, width, depth, activation=jnp.tanh, key=key)


# -- the original examples ------------------------------------------------------------------


def test_original_examples_same_numbers():
    # y = x² + 1 at x = 2: dy/dx = 4, d²y/dx² = 2
    x = jnp.array([2.0])

    def square_plus_one(p):
        return p**2 + 1

    assert float(ad.jacobian_entry(square_plus_one, x, 0, 0)) == 4.0
    assert float(ad.hessian_entry(square_plus_one, x, 0, 0)) == 2.0
    assert float(ad.derivative(square_plus_one, x, "u_x")) == 4.0
    assert float(ad.derivative(square_plus_one, x, "u_xx")) == 2.0
    # a linear layer's Jacobian is its weight matrix
    layer = eqx.nn.Linear(3, 2, key=KEY)
    point = jnp.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(ad.jacobian(layer, point), layer.weight, rtol=1e-6)
    assert float(ad.jacobian_entry(layer, point, 1, 2)) == pytest.approx(float(layer.weight[1, 2]))
    # sin on a 2x2 tensor (two points of two coordinates): the Jacobian's diagonal is cos
    tensor = jnp.array([[0.1, 0.2], [0.3, 0.4]])
    jac = jax.vmap(lambda p: ad.jacobian(jnp.sin, p))(tensor)
    np.testing.assert_allclose(jnp.diagonal(jac, axis1=1, axis2=2), jnp.cos(tensor), rtol=1e-6)
    np.testing.assert_allclose(jac[:, 0, 1], 0.0)
    # x² + label at 100 points of a parallelogram, the label a function of the points (data,
    # not differentiated): the Jacobian is (2x, 0), the Hessian ((2, 0), (0, 0))
    shape = ad.Parallelogram([0.0, 0.0], [[2.0, 0.0], [1.0, 1.0]])
    points, labels = ad.Labelled(ad.Points(shape, 100), lambda p: p[0] + 3 * p[1])(KEY)
    assert points.shape == (100, 2) and labels.shape == (100,)
    np.testing.assert_allclose(labels, points[:, 0] + 3 * points[:, 1], rtol=1e-6)

    def with_label(label):
        return lambda p: p[0] ** 2 + label

    jac = jax.vmap(lambda p, lab: ad.jacobian(with_label(lab), p))(points, labels)
    np.testing.assert_allclose(jac[:, 0, 0], 2 * points[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(jac[:, 0, 1], 0.0)
    hess = jax.vmap(lambda p, lab: ad.hessian(with_label(lab), p))(points, labels)
    np.testing.assert_allclose(hess, np.broadcast_to([[2.0, 0.0], [0.0, 0.0]], (100, 2, 2)))
    entries = jax.vmap(lambda p, lab: ad.hessian_entry(with_label(lab), p, 0, 0))(points, labels)
    np.testing.assert_allclose(entries, 2.0)


# -- derivatives ----------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_laplacian_equals_the_trace_of_the_hessian(dim):
    nets = mlp(dim, key=jax.random.key(dim)), mlp(dim, 2, key=jax.random.key(dim))
    points = jax.random.normal(jax.random.key(10 + dim), (7, dim))

    @eqx.filter_jit
    def both(nets, points):
        scalar, vector = nets
        got = [
            jax.vmap(lambda p, m=m: ad.laplacian(scalar, p, method=m))(points)
            for m in ("collapsed", "forward", "forward_reverse", "taylor")
        ]
        want = jax.vmap(lambda p: jnp.trace(jax.hessian(scalar)(p)))(points)
        got_vector = jax.vmap(lambda p: ad.laplacian(vector, p))(points)  # one per output
        want_vector = jax.vmap(lambda p: jnp.trace(jax.hessian(vector)(p), axis1=1, axis2=2))(
            points
        )
        return got, want, got_vector, want_vector

    got, want, got_vector, want_vector = both(nets, points)
    for g in got:
        assert g.shape == (7,)
        np.testing.assert_allclose(g, want, rtol=2e-4, atol=2e-5)
    assert got_vector.shape == (7, 2)
    np.testing.assert_allclose(got_vector, want_vector, rtol=2e-4, atol=2e-5)


def test_collapsed_laplacian_through_every_kind_of_operation():
    """The forward Laplacian walks nested `jit`s (`jnp.linalg.norm`, `jax.nn.softplus`),
    custom derivatives (`gelu`), selections, powers, products of two dependent factors,
    constants and vector outputs; its gradient in the parameters is the Hessian trace's."""

    def mixed(x):
        smooth = jnp.linalg.norm(x) * jax.nn.softplus(x[0]) + jnp.sin(x[0] * x[1]) / (1 + x[0] ** 2)
        return smooth + jnp.where(x[1] > 0, x[1] ** 2, 0.0) + x[0] ** x[1] + 2.0 ** x[1]

    def field(x):
        return jnp.stack([x[0] * x[1], jnp.tanh(x @ x), jnp.cos(x[1]), 3.0 + 0 * x[0]])

    def gelu(x):
        return jnp.sum(jax.nn.gelu(x) * jnp.exp(-(x**2)))

    net = mlp(2, key=jax.random.key(8))
    x = jnp.array([0.3, 0.7])

    @eqx.filter_jit
    def compare(net, x):
        out = []
        for f in (mixed, field, gelu, net):
            got = ad.laplacian(f, x)
            want = jnp.trace(jnp.reshape(jax.hessian(f)(x), (-1, 2, 2)), axis1=1, axis2=2)
            out.append((jnp.reshape(got, (-1,)), want))
        grads = (
            eqx.filter_grad(lambda n: ad.laplacian(n, x))(net),
            eqx.filter_grad(lambda n: jnp.trace(jax.hessian(n)(x)))(net),
        )
        return out, grads

    pairs, (grad, want) = compare(net, x)
    for got, expected in pairs:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_jacobian_gradient_hessian_divergence_against_jax():
    net = mlp(3, 3)
    x = jnp.array([0.2, -0.4, 0.7])
    wide = eqx.nn.Linear(5, 2, key=KEY)

    @eqx.filter_jit
    def everything(net, wide, x):
        entries = jnp.stack(
            [jnp.stack([ad.jacobian_entry(net, x, i, j) for j in range(3)]) for i in range(3)]
        )
        return (
            jax.jacfwd(net)(x), ad.jacobian(net, x), entries, ad.gradient(net, x, component=1),
            ad.divergence(net, x), jax.hessian(lambda p: net(p)[2])(x),
            ad.hessian(net, x, component=2), ad.hessian_entry(net, x, 0, 2, component=2),
            ad.jacobian(wide, jnp.ones(5)),
        )  # fmt: skip

    full, jac, entries, grad, div, hess, ours, entry, wide_jac = everything(net, wide, x)
    np.testing.assert_allclose(jac, full, rtol=1e-5)
    np.testing.assert_allclose(entries, full, rtol=1e-5)
    np.testing.assert_allclose(grad, full[1], rtol=1e-5)
    np.testing.assert_allclose(div, jnp.trace(full), rtol=1e-5)
    np.testing.assert_allclose(ours, hess, rtol=1e-5, atol=1e-7)
    assert float(entry) == pytest.approx(float(hess[0, 2]), rel=1e-4, abs=1e-7)
    # wide outputs take reverse mode, tall ones forward mode: the same numbers
    np.testing.assert_allclose(wide_jac, wide.weight, rtol=1e-6)


def test_partials_by_name():
    def u(p):  # x² y³
        return p[0] ** 2 * p[1] ** 3

    x = jnp.array([1.5, -0.5])
    cases = {"u": 2.25 * -0.125, "u_x": 3.0 * -0.125, "u_y": 2.25 * 3 * 0.25,
             "u_xy": 6 * 1.5 * 0.25, "u_yx": 6 * 1.5 * 0.25, "u_xxy": 6 * 0.25,
             "u_yyy": 6 * 2.25, "u_xxyyy": 12.0, "u_xxx": 0.0}  # fmt: skip
    for name, value in cases.items():
        assert float(ad.derivative(u, x, name)) == pytest.approx(value, rel=1e-5), name

    def field(p):  # (u, v) = (t x, t + x³) with inputs named t, x
        return jnp.stack([p[0] * p[1], p[0] + p[1] ** 3])

    y = jnp.array([2.0, 3.0])
    assert float(ad.derivative(field, y, "v_xx", inputs="tx")) == pytest.approx(18.0)
    assert float(ad.derivative(field, y, "u_tx", inputs="tx")) == pytest.approx(1.0)
    assert float(ad.derivative(field, y, "q_t", inputs="tx", outputs="pq")) == pytest.approx(1.0)
    z = jnp.arange(1.0, 5.0)
    assert float(ad.derivative(lambda p: p[3] ** 2, z, "u_ss", inputs="txys")) == 2.0


def test_derivative_errors():
    def u(p):
        return jnp.sum(p**2)

    with pytest.raises(
        ValueError,
        match=re.escape(
            "`x` must be one point of shape (dim,) with "
            "dim >= 1 (batch points with `jax.vmap`), "
            "got shape (4, 2)."
        ),
    ):
        ad.laplacian(u, jnp.ones((4, 2)))
    with pytest.raises(TypeError, match=re.escape("`x` must be floating point, got dtype int32")):
        ad.gradient(u, jnp.array([1, 2], jnp.int32))
    with pytest.raises(
        TypeError, match=re.escape("`fn` must be callable as `fn(x) -> u`, got int.")
    ):
        ad.laplacian(3, jnp.ones(2))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`fn` must return a scalar or a vector of "
            "shape (outputs,) at one point of shape "
            "(dim,), got (2, 2)."
        ),
    ):
        ad.laplacian(lambda p: jnp.outer(p, p), jnp.ones(2))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`component` must be given for a function with 2 outputs (an int in [0, 2)), got None."
        ),
    ):
        ad.gradient(lambda p: p, jnp.ones(2))
    with pytest.raises(
        ValueError, match=re.escape("`j` must be an int in [0, 2) (one of the 2 inputs), got 2.")
    ):
        ad.jacobian_entry(u, jnp.ones(2), 0, 2)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`method` must be one of ('collapsed', 'forward', 'forward_reverse', 'taylor'), got "
            "'hessian'."
        ),
    ):
        ad.laplacian(u, jnp.ones(2), method="hessian")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`fn` must map a point of shape (2,) to a "
            "vector field of the same shape for a "
            "divergence, got a scalar."
        ),
    ):
        ad.divergence(u, jnp.ones(2))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`name` must be an output name (u), "
            "optionally followed by `_` and input names "
            "(x, y), e.g. 'u_xx'; got 'u_xz'."
        ),
    ):
        ad.derivative(u, jnp.ones(2), "u_xz")
    with pytest.raises(ValueError, match=re.escape("got 'u_'.")):
        ad.derivative(u, jnp.ones(2), "u_")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`inputs` must name the 4 inputs (one letter "
            "each, e.g. 'txyz') when there are more than "
            "3, got None."
        ),
    ):
        ad.derivative(u, jnp.ones(4), "u_x")
    with pytest.raises(
        ValueError,
        match=re.escape("`inputs` must give 2 distinct letters, one per input, got 'xx'."),
    ):
        ad.derivative(u, jnp.ones(2), "u_x", inputs="xx")


# -- domains --------------------------------------------------------------------------------

SQUARE = ad.Box([0.0, 0.0], [1.0, 1.0])
RECT = ad.Box([0.0, -1.0], [2.0, 0.0])
DISK = ad.Ball([0.5, 0.0], 2.0)
SKEW = ad.Parallelogram([0.0, 0.0], [[2.0, 0.0], [1.0, 1.0]])
LINE = ad.Interval(-1.0, 3.0)
CUBE = ad.Box([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
BALL3 = ad.Ball([0.0, 0.0, 0.0], 1.0)
DOMAINS = [SQUARE, RECT, DISK, SKEW, LINE, CUBE, BALL3]


def test_membership_normals_and_distance():
    inside = [  # the first point of each list lies strictly inside
        (SQUARE, [[0.5, 0.5], [0.0, 0.3], [1.0, 1.0]]),
        (DISK, [[0.5, 0.0], [2.5, 0.0], [0.5, -2.0]]),
        (SKEW, [[1.5, 0.5], [1.0, 1.0], [3.0, 1.0], [0.5, 0.5]]),
        (LINE, [[0.0], [-1.0], [3.0]]),
    ]
    outside = [
        (SQUARE, [[1.01, 0.5], [0.5, -0.01]]),
        (DISK, [[2.6, 0.0], [2.0, 1.5]]),
        (SKEW, [[0.2, 0.5], [2.9, 0.5], [1.0, 1.1]]),
        (LINE, [[-1.1], [3.2]]),
    ]
    on_boundary = [
        (SQUARE, [0.0, 0.3], [-1.0, 0.0]), (SQUARE, [1.0, 0.3], [1.0, 0.0]),
        (SQUARE, [0.4, 0.0], [0.0, -1.0]), (SQUARE, [0.4, 1.0], [0.0, 1.0]),
        (DISK, [0.5, 2.0], [0.0, 1.0]), (DISK, [0.5 - 2.0 * 0.6, 2.0 * 0.8], [-0.6, 0.8]),
        (SKEW, [1.0, 0.0], [0.0, -1.0]), (SKEW, [2.0, 1.0], [0.0, 1.0]),
        (SKEW, [0.5, 0.5], [-(0.5**0.5), 0.5**0.5]), (SKEW, [2.5, 0.5], [0.5**0.5, -(0.5**0.5)]),
        (LINE, [-1.0], [-1.0]), (LINE, [3.0], [1.0]),
        (CUBE, [0.5, 2.0, 1.0], [0.0, 1.0, 0.0]), (BALL3, [0.0, 0.0, -1.0], [0.0, 0.0, -1.0]),
    ]  # fmt: skip
    near = [(SQUARE, [h, 0.5], h) for h in (1e-2, 1e-3)]
    near += [(DISK, [0.5, 2.0 - h], h) for h in (1e-2, 1e-3)]

    @jax.jit
    def evaluate():  # every query in one compiled program
        def one(domain, p):
            p = jnp.array(p)
            return (domain.contains(p), domain.boundary.contains(p), domain.boundary.normal(p),
                    domain.distance(p))  # fmt: skip

        return (
            [[one(d, p) for p in points] for d, points in inside],
            [[one(d, p) for p in points] for d, points in outside],
            [one(d, p) for d, p, _ in on_boundary],
            [one(d, p)[3] for d, p, _ in near],
            SQUARE.contains(jnp.array([1.01, 0.5]), atol=0.02),
        )

    inner, outer, edge, distances, loose = evaluate()
    for results in inner:
        assert all(bool(r[0]) for r in results)
        contains, on, _, distance = results[0]  # the first point of each lies inside
        assert not bool(on) and float(distance) > 0
    for results in outer:
        assert not any(bool(r[0]) for r in results)
    assert bool(loose)
    for (domain, point, normal), (contains, on, got, distance) in zip(on_boundary, edge):
        assert bool(contains) and bool(on), (domain, point)
        np.testing.assert_allclose(got, normal, atol=1e-6)
        assert abs(float(distance)) < 1e-6
    for (_, _, h), distance in zip(near, distances):  # grows like the distance to the face
        assert float(distance) == pytest.approx(h, rel=2 * h)


def test_domain_errors():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`lower` must be below `upper` on every axis, got lower=[0.0, 1.0], upper=[1.0, 1.0]."
        ),
    ):
        ad.Box([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(
        ValueError, match=re.escape("`upper` must have shape (2,), got shape (3,).")
    ):
        ad.Box([0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("`lower` must be finite, got [0.0, nan].")):
        ad.Box([0.0, np.nan], [1.0, 1.0])
    with pytest.raises(TypeError, match=re.escape("`lower` must be a vector of numbers, got 'a'.")):
        ad.Box("a", [1.0])
    with pytest.raises(ValueError, match=re.escape("`radius` must be a number > 0, got -1.0.")):
        ad.Ball([0.0, 0.0], -1.0)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`edges` must have shape (2, 2): 2 edge "
            "vectors of the 2D origin, one per row, got "
            "shape (2,)."
        ),
    ):
        ad.Parallelogram([0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("`edges` must be linearly independent")):
        ad.Parallelogram([0.0, 0.0], [[1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match=re.escape("`lower` must be a number, got shape (2,).")):
        ad.Interval([0.0, 1.0], 2.0)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`x` must be one point of shape (2,) in this "
            "2D domain (batch points with `jax.vmap`), "
            "got shape (3,)."
        ),
    ):
        SQUARE.contains(jnp.ones(3))
    with pytest.raises(ValueError, match=re.escape("`atol` must be a float >= 0 or None, got -1.")):
        SQUARE.contains(jnp.ones(2), atol=-1)


# -- samplers -------------------------------------------------------------------------------

METHODS = ("uniform", "grid", "lhs", "halton", "sobol")


def _count(domain, boundary, method):
    dim = domain._cube_dim(boundary)
    return 64 if method == "grid" and dim in (1, 2, 3, 6) else (81 if method == "grid" else 50)


@eqx.filter_jit
def _draw_all(key, method):
    """Points of every domain and boundary, with their membership: one compiled program."""
    out = []
    for domain in DOMAINS:
        for region, boundary in ((domain, False), (domain.boundary, True)):
            x = region.sample(_count(domain, boundary, method), key=key, method=method)
            out.append((x, jax.vmap(region.contains)(x)))
    return out


@pytest.mark.parametrize("method", METHODS)
def test_samples_lie_in_the_domain_and_follow_the_key(method):
    first = _draw_all(jax.random.key(1), method)
    again = _draw_all(jax.random.key(1), method)
    other = _draw_all(jax.random.key(2), method)
    regions = [(d, b) for d in DOMAINS for b in (False, True)]
    for (domain, boundary), (x, inside), (y, _), (z, _) in zip(regions, first, again, other):
        assert x.shape == (_count(domain, boundary, method), domain.dim)
        assert x.dtype == jnp.float32
        assert bool(jnp.all(inside)), (domain, boundary, method)
        np.testing.assert_array_equal(x, y)  # one key, one set of points
        if not (boundary and domain.dim == 1):  # an interval's boundary is its two ends
            assert not np.allclose(x, z), (domain, boundary, method)
    if method in ("grid", "halton", "sobol"):  # without a key: the same fixed points
        np.testing.assert_array_equal(
            SQUARE.sample(64, method=method), SQUARE.sample(64, method=method)
        )


def test_latin_hypercube_is_stratified_and_sequences_match_scipy():
    n = 37
    s = np.asarray(ad.unit_cube(n, 4, "lhs", key=KEY))
    for column in s.T:  # one point in each slice [i/n, (i+1)/n) of every coordinate
        np.testing.assert_array_equal(np.sort(np.floor(column * n)), np.arange(n))
    grid = np.asarray(ad.unit_cube(16, 2, "grid"))
    np.testing.assert_allclose(np.unique(grid[:, 0]), [0.125, 0.375, 0.625, 0.875])
    qmc = pytest.importorskip("scipy.stats.qmc")
    with jax.enable_x64(True):
        for dim in (1, 3, 32):
            sobol = ad.unit_cube(100, dim, "sobol", dtype=jnp.float64)
            np.testing.assert_array_equal(
                sobol, qmc.Sobol(dim, scramble=False).random_base2(7)[1:101]
            )
            halton = ad.unit_cube(100, dim, "halton", dtype=jnp.float64)
            expected = qmc.Halton(dim, scramble=False).random(101)[1:]
            np.testing.assert_allclose(halton, expected, rtol=0, atol=1e-15)


def test_boundary_points_spread_by_length_and_disk_points_by_area():
    # a 2 x 1 rectangle: a regular set on its boundary puts 2/6 of the points on each long side
    points = RECT.boundary.sample(600, method="grid")
    long_sides = np.isclose(points[:, 1], 0.0) | np.isclose(points[:, 1], -1.0)
    assert int(long_sides.sum()) == 400
    # uniform in the disk: the mean squared distance to the centre is r²/2
    x = DISK.sample(20000, key=KEY)
    r2 = np.sum((np.asarray(x) - [0.5, 0.0]) ** 2, axis=1)
    assert np.mean(r2) == pytest.approx(2.0, rel=0.02)
    # on a skewed parallelogram, every face gets its share by length
    b = SKEW.boundary.sample(1000, method="sobol")
    bottom = np.isclose(b[:, 1], 0.0, atol=1e-6)
    assert int(bottom.sum()) == pytest.approx(1000 * 2 / (4 + 2 * 2**0.5), abs=2)


def test_sampler_errors():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`key` must be given for method 'uniform' "
            "(only ('grid', 'halton', 'sobol') draw "
            "without one); pass "
            "`key=jax.random.key(...)`."
        ),
    ):
        SQUARE.sample(10)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`n` must be a perfect square for a regular "
            "grid in 2 dimensions, got 50; 49 or 64 would "
            "do."
        ),
    ):
        SQUARE.sample(50, method="grid")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`method` must be one of ('uniform', 'grid', 'lhs', 'halton', 'sobol'), got 'random'."
        ),
    ):
        ad.Points(SQUARE, 10, method="random")
    with pytest.raises(ValueError, match=re.escape("`n` must be an int >= 1, got 0.")):
        ad.Points(SQUARE, 0)
    with pytest.raises(
        TypeError,
        match=re.escape(
            "`region` must be a domain (`Box`, `Interval`, "
            "`Parallelogram`, `Ball`) or its `.boundary`, "
            "got list."
        ),
    ):
        ad.Points([0, 1], 10)
    with pytest.raises(TypeError, match=re.escape("`key` must be a `jax.random.key`")):
        SQUARE.sample(10, key=3)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "method 'sobol' has direction numbers for up to 32 dimensions, the points need 40"
        ),
    ):
        ad.unit_cube(8, 40, "sobol")
    with pytest.raises(
        ValueError, match=re.escape("`sets` must hold at least one sampler, got none.")
    ):
        ad.Collocation()
    with pytest.raises(TypeError, match=re.escape("`fn` must be callable as `fn(x) -> label`")):
        ad.Labelled(ad.Points(SQUARE, 4), 2.0)


def test_points_are_drawn_fresh_inside_the_compiled_loop():
    """A `Sampler` over a `Collocation` draws step `s`'s points from `fold_in(key, s)`."""
    draw = ad.Collocation(ad.Points(SQUARE, 64, method="lhs"), ad.Points(SQUARE.boundary, 16))
    objective = ad.PINN(lambda u, x: -ad.laplacian(u, x) - 1.0, [ad.Dirichlet(0.0)])
    trainer = T.Trainer(D.Sampler(draw), objective, optax.adam(1e-3), num_steps=3)
    net = mlp(2)
    key = jax.random.key(5)
    for step in (0, 1):
        batch = draw(jax.random.fold_in(key, step))
        assert batch[0].shape == (64, 2) and batch[1].shape == (16, 2)
    loss = eqx.filter_jit(objective)
    expected = loss(net, draw(jax.random.fold_in(key, 0)))
    np.testing.assert_allclose(trainer.full_loss(net, key=key), expected, rtol=1e-6)
    result = trainer(net, key=key, progress=False)
    np.testing.assert_allclose(result.loss_history[0], expected, rtol=1e-5)
    second = loss(net, draw(jax.random.fold_in(key, 1)))  # another batch, another loss
    assert abs(float(second) - float(expected)) > 1e-6
    fixed = draw.fixed(key=key)
    np.testing.assert_array_equal(fixed(jax.random.key(9))[0], draw(key)[0])


# -- the physics-informed objective ---------------------------------------------------------


def test_pinn_loss_and_gradient_equal_a_hand_written_loss():
    net = mlp(2, key=jax.random.key(3), width=8)

    def f(x):
        return jnp.sin(x[0]) * x[1]

    def g(x):
        return x[0] * x[1]

    upper = ad.Points(DISK.boundary, 24)
    draw = ad.Collocation(ad.Points(DISK, 40), ad.Labelled(ad.Points(DISK.boundary, 30), g), upper)
    batch = draw(KEY)
    objective = ad.PINN(
        lambda u, x: -ad.laplacian(u, x) - f(x),
        [ad.Dirichlet(None), ad.Neumann(DISK, lambda x: x[0], where=lambda x: x[1] > 0)],
        weights=[1.0, 10.0, 0.5],
    )

    def by_hand(model):
        x, (xd, gd), xn = batch
        lap = jax.vmap(lambda p: jnp.trace(jax.hessian(model)(p)))(x)
        interior = jnp.mean((-lap - jax.vmap(f)(x)) ** 2)
        dirichlet = jnp.mean((jax.vmap(model)(xd) - gd) ** 2)
        normals = (xn - jnp.array([0.5, 0.0])[None]) / 2.0
        flux = jnp.sum(jax.vmap(jax.grad(model))(xn) * normals, axis=1)
        mask = xn[:, 1] > 0
        neumann = jnp.sum(jnp.where(mask, (flux - xn[:, 0]) ** 2, 0.0)) / jnp.sum(
            mask.astype(flux.dtype)
        )
        return interior + 10.0 * dirichlet + 0.5 * neumann

    @eqx.filter_jit
    def compare(net):
        return (
            eqx.filter_value_and_grad(lambda m: objective(m, batch))(net),
            eqx.filter_value_and_grad(by_hand)(net),
            objective.losses(net, batch),
        )

    (loss, grad), (want_loss, want), losses = compare(net)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)
    assert objective.names == ("residual", "dirichlet", "neumann") and losses.shape == (3,)
    np.testing.assert_allclose(jnp.sum(objective.weights * losses), want_loss, rtol=1e-5)


def test_exact_dirichlet_holds_on_the_boundary_for_any_network():
    net = mlp(2, key=jax.random.key(4))

    @eqx.filter_jit
    def on_boundaries(net):
        out = []
        for domain in (SQUARE, DISK, SKEW):
            ansatz = ad.ExactDirichlet(domain, lambda x: x[0] - 2 * x[1])
            u = ad.PINN(lambda u, x: u(x), ansatz=ansatz).solution(net)
            points = domain.boundary.sample(64, key=KEY)
            out.append((points, jax.vmap(u)(points)))
        return out

    for points, u in on_boundaries(net):
        np.testing.assert_allclose(u, points[:, 0] - 2 * points[:, 1], rtol=1e-4, atol=1e-5)


def test_pinn_errors():
    objective = ad.PINN(lambda u, x: u(x), [ad.Dirichlet()])
    net = mlp(2)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`batch` must be a tuple of 2: the interior "
            "points, then one set per condition (a "
            "`Collocation` of 2 samplers), got length "
            "1."
        ),
    ):
        objective(net, (jnp.ones((4, 2)),))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`batch[1]` must be points of shape (n, dim) "
            "or a pair (points, labels), got shape "
            "(4,)."
        ),
    ):
        objective(net, (jnp.ones((4, 2)), jnp.ones(4)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`weights` must have shape (2,): the "
            "residual's weight, then one per condition, "
            "got shape (3,)."
        ),
    ):
        ad.PINN(lambda u, x: u(x), [ad.Dirichlet()], weights=[1.0, 2.0, 3.0])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`weights` must be >= 0, got an array of shape (2,) with -1.0 at index (1,)"
        ),
    ):
        ad.PINN(lambda u, x: u(x), [ad.Dirichlet()], weights=[1.0, -1.0])
    with pytest.raises(
        TypeError,
        match=re.escape(
            "`conditions[0]` must be a `Dirichlet`, `Neumann` or `Condition`, got function."
        ),
    ):
        ad.PINN(lambda u, x: u(x), [lambda u, x: u(x)])
    with pytest.raises(
        TypeError,
        match=re.escape(
            "`region` must be a domain or its `.boundary` (for the outward normals), got str."
        ),
    ):
        ad.Neumann("disk")
    labelled = (jnp.ones((4, 2)), (jnp.ones((3, 2)), jnp.ones(3)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "a condition with a `value` (or `flux`) must not also get labels in its batch"
        ),
    ):
        objective(net, labelled)


# -- the stencil core against autodiff ------------------------------------------------------


def test_finite_difference_laplacian_converges_to_the_autodiff_one_at_second_order(x64):
    net = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, mlp(2, width=12)
    )
    probes = jnp.array([[0.25, 0.25], [0.5, 0.75], [0.75, 0.5], [0.5, 0.5]])

    @eqx.filter_jit
    def error(net, level):  # h = 2^-level: the probes are vertices of every grid
        n = 2**level - 1
        grid = Grid((n, n), extent=1.0, placement="vertex")
        axis = jnp.arange(1, n + 1, dtype=jnp.float64) / 2**level
        mesh = jnp.stack(jnp.meshgrid(axis, axis, indexing="ij"), axis=-1)
        u = jax.vmap(jax.vmap(net))(mesh)[None]
        lap = fd_laplacian(u, grid, GhostDirichlet(0.0))[0]
        index = np.asarray(np.asarray(probes) * 2**level - 1, dtype=int)
        exact = jax.vmap(lambda p: ad.laplacian(net, p))(probes)
        return jnp.max(jnp.abs(lap[index[:, 0], index[:, 1]] - exact))

    errors = np.array([float(error(net, level)) for level in (4, 5, 6)])
    np.testing.assert_allclose(errors[:-1] / errors[1:], 4.0, atol=0.3)
