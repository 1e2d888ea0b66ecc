"""`Grid` and the boundary conditions: placements, ghost points, specifications, errors."""

import functools
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd.stencil import Dirichlet, Grid, Neumann, Periodic, boundary_pairs, pad

# ---------------------------------------------------------------------------------------------
# Grid


@pytest.mark.parametrize(
    "placement, offset, points",  # x_i = (i + offset) h with h = L / points
    [("cell", 0.5, lambda n: n), ("vertex", 1.0, lambda n: n + 1), ("periodic", 0.0, lambda n: n)],
)
@pytest.mark.parametrize("n, length", [(1, 1.0), (5, 1.0), (8, 2.5)])
def test_grid_spacing_and_coordinates(placement, offset, points, n, length):
    grid = Grid((n,), extent=length, placement=placement)
    h = length / points(n)
    assert grid.spacing == pytest.approx((h,))
    np.testing.assert_allclose(grid.coordinates(0), (np.arange(n) + offset) * h, rtol=1e-14)
    assert (grid.ndim, grid.size, grid.shape, grid.extent) == (1, n, (n,), (length,))


def test_grid_per_axis_placement_and_extent():
    grid = Grid((4, 5, 6), extent=(1.0, 2.0, 3.0), placement=("cell", "vertex", "periodic"))
    assert grid.placement == ("cell", "vertex", "periodic")
    assert grid.spacing == pytest.approx((1 / 4, 2 / 6, 3 / 6))
    np.testing.assert_allclose(grid.coordinates(0), [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(grid.coordinates(1), np.arange(1, 6) / 3)
    np.testing.assert_allclose(grid.coordinates(2), np.arange(6) / 2)
    assert (grid.ndim, grid.size) == (3, 120)
    mesh = grid.mesh()
    assert len(mesh) == 3
    for axis, m in enumerate(mesh):
        assert m.shape == (4, 5, 6)
        expected = np.expand_dims(grid.coordinates(axis), [a for a in range(3) if a != axis])
        np.testing.assert_allclose(m, np.broadcast_to(expected, (4, 5, 6)), rtol=1e-6)


@pytest.mark.parametrize("extent", [2, 2.0, np.float64(2.0), np.float32(2.0), np.int64(2)])
def test_grid_accepts_scalar_extents(extent):
    grid = Grid((4,), extent=extent)
    assert grid.extent == (2.0,)
    assert grid.spacing == (0.5,)


def test_grid_is_hashable_and_normalised():
    a = Grid((4, 6), extent=1.0, placement="cell")
    b = Grid([4, 6], extent=(1, 1), placement=["cell", "cell"])
    assert a == b and hash(a) == hash(b)
    assert Grid(8) == Grid((8,))
    table = {a: "first", Grid((4, 6), placement="periodic"): "second"}
    assert table[b] == "first"
    assert len(table) == 2
    assert a != Grid((4, 6), extent=2.0)
    assert a != Grid((6, 4))
    traces = []

    @functools.partial(jax.jit, static_argnums=1)
    def scale(x, grid):
        traces.append(grid)
        return x * grid.spacing[0]

    scale(1.0, a)
    scale(1.0, b)
    assert len(traces) == 1  # an equal grid is the same static argument
    assert scale(1.0, Grid((4, 6), extent=2.0)) == 0.5 and len(traces) == 2


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(shape=None), TypeError, "`shape` must be a tuple of ints, got NoneType."),
        (dict(shape=(0,)), ValueError, "`shape` must hold positive ints, got (0,)."),
        (dict(shape=(4, 2.5)), ValueError, "`shape` must hold positive ints, got (4, 2.5)."),
        (dict(shape=()), ValueError, "`shape` must have 1, 2 or 3 axes, got 0: ()."),
        (
            dict(shape=(2, 2, 2, 2)),
            ValueError,
            "`shape` must have 1, 2 or 3 axes, got 4: (2, 2, 2, 2).",
        ),
        (
            dict(shape=(4,), extent=0.0),
            ValueError,
            "`extent` must be finite and positive, got (0.0,).",
        ),
        (
            dict(shape=(4, 4), extent=(1.0, -2.0)),
            ValueError,
            "`extent` must be finite and positive, got (1.0, -2.0).",
        ),
        (
            dict(shape=(4,), placement="node"),
            ValueError,
            "`placement` must be one of ('cell', 'vertex', 'periodic'), got 'node'.",
        ),
        (
            dict(shape=(4, 4), extent=(1.0, 2.0, 3.0)),
            ValueError,
            "`extent` must be a single value or one per axis (2 values for a 2D grid), got 3: "
            "(1.0, 2.0, 3.0).",
        ),
        (
            dict(shape=(4, 4, 4), placement=("cell", "vertex")),
            ValueError,
            "`placement` must be a single value or one per axis (3 values for a 3D grid), got 2: "
            "('cell', 'vertex').",
        ),
    ],
)
def test_grid_errors(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Grid(**kwargs)


def test_check_state():
    grid = Grid((4, 3))
    grid.check_state(np.zeros((2, 4, 3)))  # one sample with two channels is fine
    message = (
        "`u` must have shape (channels, 4, 3) for this 2D grid, got (5, 2, 4, 3). Steppers and "
        "operators act on one sample; batch with `jax.vmap`."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        grid.check_state(np.zeros((5, 2, 4, 3)))
    with pytest.raises(ValueError, match=re.escape("`v` must have shape (channels, 4, 3)")):
        grid.check_state(np.zeros((4, 3)), name="v")
    with pytest.raises(ValueError, match=re.escape("got None.")):
        grid.check_state([[1.0]])


# ---------------------------------------------------------------------------------------------
# Ghost points: an independent NumPy transcription of the docstring definitions.
# A condition is ("P",), ("D", value) or ("N", flux); `value` may vary along the face.


def run(fn, *args):
    """Call `fn` compiled, get NumPy arrays back: op-by-op compiling would dominate test time."""
    return jax.tree.map(np.asarray, eqx.filter_jit(fn)(*args))


def pad_many(u, grid, bc, widths):
    """`pad` for several widths in one compiled call."""
    return run(lambda u, bc: [pad(u, grid, bc, w) for w in widths], u, bc)


def to_bc(spec):
    if spec[0] == "P":
        return Periodic()
    return (Dirichlet if spec[0] == "D" else Neumann)(spec[1])


def ghost_1d(line, spec, low, width, h, placement, v=None):
    """Ghost values of one grid line, nearest first (j = 1, ..., width)."""
    n = len(line)
    inner = line if low else line[::-1]  # inner[j - 1] is the j-th point from this side
    out = []
    for j in range(1, width + 1):
        if spec[0] == "P":
            out.append(line[n - j] if low else line[j - 1])
        elif spec[0] == "D" and placement == "cell":
            out.append(2 * v - inner[j - 1])
        elif spec[0] == "D":  # vertex: the boundary vertex, then odd reflections about it
            out.append(v if j == 1 else 2 * v - inner[j - 2])
        else:
            out.append(inner[j - 1] + (2 * j - 1) * h * v)
    return out


def naive_pad(u, grid, specs, widths):
    """Pad axis after axis with Python loops; face values repeat their edge into corners."""
    u = np.asarray(u, dtype=np.float64)
    for axis, ((s_low, s_high), (wl, wh)) in enumerate(zip(specs, widths)):
        a = axis + 1
        out_shape = list(u.shape)
        out_shape[a] += wl + wh
        out = np.zeros(out_shape)
        face = (u.shape[0], *grid.shape[:axis], *grid.shape[axis + 1 :])
        lead = [(0, 0), *widths[:axis], *[(0, 0)] * (grid.ndim - 1 - axis)]
        rest = u.shape[:a] + u.shape[a + 1 :]
        values = [
            np.zeros(rest) if s[0] == "P" else np.pad(np.broadcast_to(s[1], face), lead, "edge")
            for s in (s_low, s_high)
        ]
        for idx in np.ndindex(*rest):
            sl = (*idx[:a], slice(None), *idx[a:])
            line = u[sl]
            args = (grid.spacing[axis], grid.placement[axis])
            g_low = ghost_1d(line, s_low, True, wl, *args, v=values[0][idx])
            g_high = ghost_1d(line, s_high, False, wh, *args, v=values[1][idx])
            out[sl] = np.concatenate([g_low[::-1], line, g_high])
        u = out
    return u


SPECS_1D = [
    ("periodic", (("P",), ("P",))),
    ("cell", (("P",), ("P",))),
    ("cell", (("D", 1.5), ("D", -0.5))),
    ("cell", (("N", 0.7), ("N", -2.0))),
    ("cell", (("D", 0.3), ("N", 1.1))),
    ("cell", (("N", 0.0), ("D", 0.0))),
    ("vertex", (("D", 1.5), ("D", -0.5))),
]


WIDTHS_1D = [[1], [2], [3], [(0, 2)], [(3, 1)]]


@pytest.mark.parametrize("placement, spec", SPECS_1D)
def test_pad_1d_matches_definition(placement, spec):
    grid = Grid((5,), extent=2.0, placement=placement)
    u = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5)), dtype=jnp.float32)
    bc = ((to_bc(spec[0]), to_bc(spec[1])),)
    for out, width in zip(pad_many(u, grid, bc, WIDTHS_1D), WIDTHS_1D):
        (wl, wh) = (width[0],) * 2 if isinstance(width[0], int) else width[0]
        assert out.shape == (2, 5 + wl + wh)
        expected = naive_pad(u, grid, [spec], [(wl, wh)])
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


SPECS_2D = [
    ("cell", [(("D", "face0"), ("D", -1.0)), (("D", "face1"), ("N", "face1"))]),
    ("cell", [(("N", "face0"), ("N", 0.5)), (("D", 2.0), ("D", "face1"))]),
    ("vertex", [(("D", "face0"), ("D", 0.5)), (("D", -1.0), ("D", "face1"))]),
    (("periodic", "cell"), [(("P",), ("P",)), (("D", "face1"), ("N", -0.5))]),
    (("cell", "periodic"), [(("N", "face0"), ("D", "face0")), (("P",), ("P",))]),
    (("vertex", "cell"), [(("D", "face0"), ("D", 1.0)), (("P",), ("P",))]),
]
WIDTHS_2D = [[(1, 1)] * 2, [(2, 2)] * 2, [(3, 3)] * 2, [(1, 2), (3, 0)]]


@pytest.mark.parametrize("placement, template", SPECS_2D)
def test_pad_2d_varying_face_values(placement, template):
    """Values varying along the boundary broadcast over the face; corners stay consistent."""
    grid = Grid((4, 3), extent=(1.0, 2.0), placement=placement)
    rng = np.random.default_rng(1)
    u = jnp.asarray(rng.normal(size=(2, 4, 3)), dtype=jnp.float32)
    faces = {"face0": rng.normal(size=(3,)), "face1": rng.normal(size=(2, 4))}  # (N1,), (C, N0)
    specs = [
        tuple(s if len(s) == 1 or not isinstance(s[1], str) else (s[0], faces[s[1]]) for s in pair)
        for pair in template
    ]
    bc = tuple((to_bc(lo), to_bc(hi)) for lo, hi in specs)
    only_axis0 = [[w[0], (0, 0)] for w in WIDTHS_2D]
    outs = pad_many(u, grid, bc, WIDTHS_2D + only_axis0)
    for out, rows, widths in zip(outs, outs[len(WIDTHS_2D) :], WIDTHS_2D):
        assert out.shape == (2, 4 + sum(widths[0]), 3 + sum(widths[1]))
        expected = naive_pad(u, grid, specs, widths)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
        # away from the corners, the rows are those of padding axis 0 alone
        np.testing.assert_array_equal(out[:, :, widths[1][0] : widths[1][0] + 3], rows)


def test_pad_3d_matches_definition():
    grid = Grid((3, 4, 2), placement=("cell", "vertex", "periodic"))
    rng = np.random.default_rng(2)
    u = jnp.asarray(rng.normal(size=(1, 3, 4, 2)), dtype=jnp.float32)
    specs = [
        (("N", rng.normal(size=(4, 2))), ("D", 1.0)),
        (("D", 0.5), ("D", rng.normal(size=(3, 2)))),
        (("P",), ("P",)),
    ]
    bc = tuple((to_bc(lo), to_bc(hi)) for lo, hi in specs)
    (out,) = pad_many(u, grid, bc, [2])
    np.testing.assert_allclose(out, naive_pad(u, grid, specs, [(2, 2)] * 3), rtol=1e-5, atol=1e-5)


def test_ghosts_have_their_physical_meaning():
    n, length, widths = 6, 1.5, [1, 2, 3]
    h = length / n
    u = np.random.default_rng(3).normal(size=(1, n)).astype(np.float32)
    # Dirichlet, cell grid: the face between ghost and first point holds the value
    bc = ((Dirichlet(2.0), Dirichlet(-3.0)),)
    for w, out in zip(widths, pad_many(u, Grid((n,), length, "cell"), bc, widths)):
        assert np.isclose(0.5 * (out[0, w - 1] + u[0, 0]), 2.0)
        assert np.isclose(0.5 * (out[0, w + n] + u[0, -1]), -3.0)
    # Dirichlet, vertex grid: the first ghost is the boundary vertex itself
    for w, out in zip(widths, pad_many(u, Grid((n,), length, "vertex"), bc, widths)):
        assert out[0, w - 1] == 2.0 and out[0, w + n] == -3.0
    # Neumann: the outward one-sided difference (ghost - u_edge) / h equals the flux
    bc = ((Neumann(0.4), Neumann(-1.2)),)
    for w, out in zip(widths, pad_many(u, Grid((n,), length, "cell"), bc, widths)):
        assert np.isclose((out[0, w - 1] - u[0, 0]) / h, 0.4, atol=1e-5)
        assert np.isclose((out[0, w + n] - u[0, -1]) / h, -1.2, atol=1e-5)
    # Periodic: the ghosts are the points from the other end
    for w, out in zip(widths, pad_many(u, Grid((n,), length, "periodic"), "periodic", widths)):
        np.testing.assert_array_equal(out[0, :w], u[0, n - w :])
        np.testing.assert_array_equal(out[0, w + n :], u[0, :w])


def test_ghosts_are_exact_for_linear_and_quadratic_profiles():
    """Odd reflection is exact for linear u, flux reflection for quadratic u about the face."""
    grid = Grid((5,), extent=1.0, placement="cell")
    x = (np.arange(-3, 8) + 0.5) / 5  # 3 ghosts, 5 points, 3 ghosts
    lin, quad = 0.3 - 2.0 * x, (x - 0.3) ** 2
    (out,) = pad_many(jnp.asarray(lin[None, 3:8]), grid, ((Dirichlet(0.3), Dirichlet(-1.7)),), [3])
    np.testing.assert_allclose(out[0], lin, rtol=1e-5, atol=1e-6)
    (out,) = pad_many(jnp.asarray(quad[None, 3:8]), grid, ((Neumann(0.6), Neumann(1.4)),), [3])
    np.testing.assert_allclose(out[0], quad, rtol=1e-5, atol=1e-6)


def test_boundary_values_are_differentiable_leaves():
    u = jnp.ones((1, 4))
    cell, vertex = Grid((4,)), Grid((4,), placement="vertex")

    def grads():
        return (
            jax.grad(lambda v: pad(u, cell, Dirichlet(v)).sum())(1.0),  # d(2v - u)/dv, 2 sides
            jax.grad(lambda v: pad(u, vertex, Dirichlet(v), 2).sum())(1.0),  # v, 2v - u
            jax.grad(lambda q: pad(u, cell, Neumann(q)).sum())(1.0),  # u + h q
            jax.vmap(lambda v: pad(u, cell, Dirichlet(v))[0, 0])(jnp.arange(3.0)),
        )

    dirichlet_cell, dirichlet_vertex, neumann, ghosts = run(grads)
    assert (dirichlet_cell, dirichlet_vertex, neumann) == (4.0, 6.0, 2 * cell.spacing[0])
    np.testing.assert_allclose(ghosts, 2 * np.arange(3.0) - 1.0)


# ---------------------------------------------------------------------------------------------
# Specifications


def test_boundary_pairs_mixed_and_shorthands():
    grid = Grid((4, 4), placement="cell")
    pairs = boundary_pairs((Periodic(), (Dirichlet(1.0), Neumann())), grid)
    assert [tuple(type(b) for b in p) for p in pairs] == [
        (Periodic, Periodic),
        (Dirichlet, Neumann),
    ]
    assert pairs[1][0].value == 1.0 and pairs[1][1].flux == 0.0
    for name, cls in [("periodic", Periodic), ("dirichlet", Dirichlet), ("Neumann", Neumann)]:
        pairs = boundary_pairs(name, grid)
        assert len(pairs) == 2 and all(isinstance(b, cls) for p in pairs for b in p)
    pairs = boundary_pairs(("periodic", ("dirichlet", Neumann(2.0))), grid)
    assert pairs[1][0].value == 0.0 and pairs[1][1].flux == 2.0
    u = jnp.asarray(np.random.default_rng(4).normal(size=(1, 4, 4)), dtype=jnp.float32)
    named, explicit = run(
        lambda u: [
            pad(u, grid, ("periodic", ("dirichlet", "neumann")), 2),
            pad(u, grid, (Periodic(), (Dirichlet(0.0), Neumann(0.0))), 2),
        ],
        u,
    )
    np.testing.assert_array_equal(named, explicit)
    specs = [(("P",), ("P",)), (("D", 0.0), ("N", 0.0))]
    np.testing.assert_allclose(named, naive_pad(u, grid, specs, [(2, 2)] * 2), atol=1e-6)


GRID_1D = Grid((3,))


@pytest.mark.parametrize(
    "bc, grid, error, message",
    [
        (
            "robin",
            GRID_1D,
            ValueError,
            "Unknown boundary condition 'robin'; expected one of ['dirichlet', 'neumann', "
            "'periodic'] or a `Periodic()`, `Dirichlet(value)` or `Neumann(flux)` instance.",
        ),
        (
            3,
            GRID_1D,
            TypeError,
            "A boundary condition must be `Periodic()`, `Dirichlet(value)`, `Neumann(flux)` or one"
            " of the names ['dirichlet', 'neumann', 'periodic'], got int: 3.",
        ),
        ((3,), GRID_1D, TypeError, "got int: 3."),
        (
            ((Periodic(), Dirichlet()),),
            GRID_1D,
            ValueError,
            "Axis 0: `Periodic` must be used on both sides, got (Periodic, Dirichlet).",
        ),
        (
            ("periodic", (Neumann(), "periodic")),
            Grid((3, 3)),
            ValueError,
            "Axis 1: `Periodic` must be used on both sides, got (Neumann, Periodic).",
        ),
        (
            Neumann(),
            Grid((3,), placement="vertex"),
            ValueError,
            "Axis 0: `Neumann` does not fit a grid with placement 'vertex'; it needs placement "
            "in ('cell',).",
        ),
        (
            ("periodic", "dirichlet"),
            Grid((3, 3), placement="periodic"),
            ValueError,
            "Axis 1: `Dirichlet` does not fit a grid with placement 'periodic'; it needs "
            "placement in ('cell', 'vertex').",
        ),
        (
            "periodic",
            Grid((3,), placement="vertex"),
            ValueError,
            "Axis 0: `Periodic` does not fit a grid with placement 'vertex'; it needs placement "
            "in ('cell', 'periodic').",
        ),
        (
            ("dirichlet", "dirichlet", "dirichlet"),
            Grid((3, 3)),
            ValueError,
            "`bc` must give one entry per axis (2 for this grid), got 3.",
        ),
        (
            (Dirichlet(), Neumann(), Dirichlet()),
            GRID_1D,
            ValueError,
            "`bc` must give one entry per axis (1 for this grid), got 3.",
        ),
    ],
)
def test_boundary_spec_errors(bc, grid, error, message):
    with pytest.raises(error, match=re.escape(message)):
        boundary_pairs(bc, grid)
    with pytest.raises(error, match=re.escape(message)):
        pad(np.zeros((1, *grid.shape)), grid, bc)


@pytest.mark.parametrize(
    "u, bc, width, message",
    [
        (np.zeros((1, 3, 4)), "dirichlet", 4, "`width` 4 exceeds the 3 points of axis 0."),
        (np.zeros((1, 3, 4)), "neumann", [0, (2, 5)], "`width` 5 exceeds the 4 points of axis 1."),
        (
            np.zeros((1, 3, 4)),
            "neumann",
            [1],
            "`width` must be an int or one entry per axis (2), got (1,).",
        ),
        (np.zeros((1, 3, 4)), "neumann", [1, (1, -1)], "`width` must be non-negative"),
        (np.zeros((1, 3, 4)), "neumann", -1, "`width` must be non-negative"),
        (
            np.zeros((3, 4)),
            "neumann",
            1,
            "`u` must have shape (channels, 3, 4) for this 2D grid, got (3, 4). Steppers and "
            "operators act on one sample; batch with `jax.vmap`.",
        ),
        (
            np.zeros((2, 3, 4)),
            (Dirichlet(np.ones(3)), "dirichlet"),
            1,
            "A boundary value of shape (3,) does not broadcast to the face shape (2, 4) "
            "(channels, then the spatial axes other than axis 0).",
        ),
    ],
)
def test_pad_errors(u, bc, width, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        jax.eval_shape(lambda u: pad(u, Grid((3, 4)), bc, width), u)  # raises before computing


def test_two_entries_on_a_1d_grid_are_low_and_high():
    low, high = Dirichlet(1.0), Neumann(2.0)
    assert boundary_pairs((low, high), GRID_1D) == boundary_pairs(((low, high),), GRID_1D)
    assert boundary_pairs([low, high], GRID_1D)[0] == (low, high)
