"""Initial-condition generators: shapes, keys, analytic structure, bounds and errors."""

import functools
import itertools
import re

import jax
import numpy as np
import pytest

from trainax_fd import Grid
from trainax_fd.reference import gaussian_blobs, random_fourier, random_soft_rectangles, sine

RANDOM = {
    "fourier": random_fourier,
    "rectangles": random_soft_rectangles,
    "blobs": gaussian_blobs,
}
GRIDS = {
    "1d": Grid((16,), placement="periodic"),
    "2d": Grid((8, 6), extent=(1.0, 2.0), placement="cell"),
    "3d": Grid((4, 5, 6), placement="vertex"),
}

# Compiling is what costs on CPU, so every random draw below uses one of these configurations
# (generator, grid, options); each is compiled once and reused across tests and seeds.
CONFIGS = {
    "fourier-1d": (
        random_fourier,
        Grid((32,), extent=3.0, placement="periodic"),
        {"channels": 2, "max_wavenumber": 3},
    ),
    "fourier-2d": (
        random_fourier,
        Grid((12, 10), extent=(1.0, 2.0), placement="cell"),
        {"channels": 2, "max_wavenumber": 3},
    ),
    "fourier-1d-mean": (
        random_fourier,
        Grid((32,), placement="periodic"),
        {"channels": 2, "max_wavenumber": 3, "zero_mean": False},
    ),
    "sine-1d": (
        random_fourier,
        Grid((33,), extent=2.0, placement="vertex"),
        {"channels": 2, "max_wavenumber": 3, "basis": "sine"},
    ),
    "sine-3d": (
        random_fourier,
        Grid((6, 5, 7), placement="vertex"),
        {"channels": 2, "max_wavenumber": 2, "basis": "sine"},
    ),
    "rectangles-1d": (
        random_soft_rectangles,
        Grid((400,), placement="cell"),
        {"channels": 3, "count": 1, "softness": 1e-4},
    ),
    "rectangles-2d": (
        random_soft_rectangles,
        Grid((24, 20), placement="cell"),
        {"channels": 2, "count": 4},
    ),
    "rectangles-3d": (random_soft_rectangles, GRIDS["3d"], {"channels": 2}),
    "blobs-1d": (
        gaussian_blobs,
        Grid((64,), placement="cell"),
        {"channels": 3, "count": 1, "width": (0.08, 0.1)},
    ),
    "blobs-2d": (gaussian_blobs, Grid((24, 20), placement="cell"), {"channels": 2, "count": 4}),
    "blobs-3d": (gaussian_blobs, GRIDS["3d"], {"channels": 2}),
}


def key(seed: int = 0):
    return jax.random.key(seed)


@functools.cache
def _compiled(generator, grid, options):
    return jax.jit(lambda k: generator(grid, key=k, **dict(options)))


def draw(config: str, seed: int = 0) -> np.ndarray:
    """`generator(grid, key=key(seed), **options)` of one configuration, compiled once.

    (Eager dispatch would compile every primitive separately, which is slower still.)
    """
    generator, grid, options = CONFIGS[config]
    return np.asarray(_compiled(generator, grid, tuple(sorted(options.items())))(key(seed)))


def relative_coordinates(grid: Grid) -> list[np.ndarray]:
    return [grid.coordinates(a) / grid.extent[a] for a in range(grid.ndim)]


def residual_outside_span(u: np.ndarray, basis_1d: list[np.ndarray]) -> float:
    """How far one channel is from the span of products of per-axis basis functions.

    `basis_1d[a]` has shape `(modes_a, N_a)`; the product basis is fitted by least squares.
    """
    columns = []
    for combo in itertools.product(*[range(len(b)) for b in basis_1d]):
        column = np.ones(())
        for a, m in enumerate(combo):
            column = np.multiply.outer(column, basis_1d[a][m])
        columns.append(column.ravel())
    matrix = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(matrix, u.ravel(), rcond=None)
    return float(np.max(np.abs(matrix @ coef - u.ravel())))


def fourier_basis(x: np.ndarray, max_wavenumber: int, constant: bool) -> np.ndarray:
    rows = [np.ones_like(x)] if constant else []
    for m in range(1, max_wavenumber + 1):
        rows += [np.cos(2 * np.pi * m * x), np.sin(2 * np.pi * m * x)]
    return np.stack(rows)


def sine_basis(x: np.ndarray, max_wavenumber: int) -> np.ndarray:
    return np.stack([np.sin(np.pi * m * x) for m in range(1, max_wavenumber + 1)])


# ---------------------------------------------------------------------------------------------
# shapes and keys


@pytest.mark.parametrize("config", list(CONFIGS))
def test_random_shapes_and_channels(config):
    _, grid, options = CONFIGS[config]
    u = draw(config)
    assert u.shape == (options["channels"], *grid.shape)
    assert u.dtype == np.float32
    assert np.all(np.isfinite(u))
    assert not np.allclose(u[0], u[1])  # channels are drawn independently


@pytest.mark.parametrize("config", ["fourier-2d", "rectangles-2d", "blobs-2d"])
def test_same_key_same_sample_other_key_other_sample(config):
    first, again, other = draw(config, 1), draw(config, 1), draw(config, 2)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("generator", [random_fourier, random_soft_rectangles, gaussian_blobs])
def test_a_batch_of_keys_draws_the_samples_of_each_key(generator):
    grid = GRIDS["2d"]
    keys = jax.random.split(key(), 3)
    batch = np.asarray(generator(grid, key=keys))
    assert batch.shape == (3, 1, *grid.shape)
    for i in range(3):  # one program for the batch, each sample as if drawn alone (batched
        # contractions may round differently: 1 ulp)
        np.testing.assert_allclose(batch[i], generator(grid, key=keys[i]), rtol=0, atol=1e-6)
    raw = generator(grid, key=jax.random.key_data(keys).reshape(3, 1, 2))  # raw keys, 2 axes
    np.testing.assert_array_equal(np.asarray(raw)[:, 0], batch)


@pytest.mark.parametrize("generator", [random_fourier, random_soft_rectangles, gaussian_blobs])
def test_default_is_one_channel(generator):
    assert jax.eval_shape(lambda k: generator(GRIDS["2d"], key=k), key()).shape == (1, 8, 6)


# ---------------------------------------------------------------------------------------------
# sine


def test_sine_half_frequency_on_a_vertex_grid_is_the_dirichlet_mode():
    grid = Grid((31,), extent=2.0, placement="vertex")
    x = grid.coordinates(0)
    u = sine(grid, 0.5)
    assert u.shape == (1, 31)
    np.testing.assert_allclose(u[0], np.sin(np.pi * x / 2.0), atol=1e-6)
    # the half sine vanishes at both boundary vertices x = 0 and x = L
    h = grid.spacing[0]
    np.testing.assert_allclose(u[0, np.array([0, -1])], np.sin(np.pi * h / 2.0), rtol=1e-5)


def test_sine_integer_frequencies_and_amplitude_2d():
    grid = Grid((16, 12), extent=(1.0, 3.0), placement="periodic")
    x, y = (np.asarray(a) for a in grid.mesh())
    u = sine(grid, (2, 1), amplitude=-1.5)
    assert u.shape == (1, 16, 12)
    expected = -1.5 * np.sin(2 * np.pi * 2 * x) * np.sin(2 * np.pi * y / 3.0)
    np.testing.assert_allclose(u[0], expected, atol=1e-5)


def test_sine_takes_numpy_frequencies_and_new_amplitudes_without_recompiling(caplog):
    grid = Grid((31,), extent=2.0, placement="vertex")
    half = np.asarray(sine(grid, 0.5))
    np.testing.assert_array_equal(sine(grid, np.float64(0.5)), half)
    np.testing.assert_array_equal(sine(grid, [np.float32(0.5)]), half)
    sine(grid, 0.5, 2.0)
    with jax.log_compiles(), caplog.at_level("WARNING"):
        np.testing.assert_allclose(sine(grid, 0.5, 3.0), 3.0 * half, rtol=1e-6)
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
    with jax.log_compiles(), caplog.at_level("WARNING"):
        sine(grid, 0.25)  # other frequencies: a new program, which the check above would see
    assert [r for r in caplog.records if "Compiling" in r.getMessage()]


def test_sine_3d_is_a_product():
    grid = GRIDS["3d"]
    x, y, z = relative_coordinates(grid)
    expected = np.einsum(
        "i,j,k->ijk", np.sin(np.pi * x), np.sin(2 * np.pi * y), np.sin(np.pi * 3 * z)
    )
    u = sine(grid, (0.5, 1.0, 1.5))
    assert u.shape == (1, 4, 5, 6)
    np.testing.assert_allclose(u[0], expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# random Fourier series


@pytest.mark.parametrize("config", ["fourier-1d", "fourier-2d", "sine-1d", "sine-3d"])
def test_random_fourier_is_normalised_per_channel(config):
    for seed in range(2):
        u = draw(config, seed)
        peaks = np.max(np.abs(u), axis=tuple(range(1, u.ndim)))
        np.testing.assert_allclose(peaks, 1.0, rtol=1e-6)


@pytest.mark.parametrize("config", ["fourier-1d", "fourier-2d"])
def test_random_fourier_is_a_zero_mean_fourier_series(config):
    _, grid, options = CONFIGS[config]
    u = draw(config).astype(np.float64)
    axes = tuple(range(1, u.ndim))
    np.testing.assert_allclose(u.mean(axis=axes), 0.0, atol=1e-6)
    coords = relative_coordinates(grid)
    basis = [fourier_basis(x, options["max_wavenumber"], True) for x in coords]
    for channel in u:
        assert residual_outside_span(channel, basis) < 1e-5
    # the truncation is real: a coarser series does not reproduce it
    coarse = [fourier_basis(x, options["max_wavenumber"] - 1, True) for x in coords]
    assert residual_outside_span(u[0], coarse) > 1e-2


def test_random_fourier_without_zero_mean_keeps_the_constant():
    means = [np.mean(draw("fourier-1d-mean", seed), axis=1) for seed in range(3)]
    assert np.max(np.abs(means)) > 1e-2


@pytest.mark.parametrize("config", ["sine-1d", "sine-3d"])
def test_random_fourier_sine_basis_vanishes_on_the_boundary(config):
    _, grid, options = CONFIGS[config]
    u = draw(config).astype(np.float64)
    # exactly a sum of sin(pi m x / L): zero at x = 0 and x = L when evaluated analytically
    basis = [sine_basis(x, options["max_wavenumber"]) for x in relative_coordinates(grid)]
    for channel in u:
        assert residual_outside_span(channel, basis) < 1e-5


def test_random_fourier_sine_basis_is_small_next_to_the_boundary():
    """A sine polynomial of degree 3 has `|u'| <= 3 pi max|u|` on the unit interval (Bernstein),
    so next to the boundary vertices (h = 1/34 relative) it is far below its maximum 1."""
    for seed in range(3):
        u = draw("sine-1d", seed)
        assert np.max(np.abs(u[:, [0, -1]])) <= 3 * np.pi / 34 * (1 + 1e-5)


# ---------------------------------------------------------------------------------------------
# soft rectangles and Gaussian blobs


@pytest.mark.parametrize("config", ["rectangles-2d", "blobs-2d", "rectangles-3d", "blobs-3d"])
def test_sums_of_bumps_are_bounded_by_their_count(config):
    count = CONFIGS[config][2].get("count", 3)
    for seed in range(2):
        u = draw(config, seed)
        assert np.max(np.abs(u)) <= count * (1 + 1e-6)
        assert np.max(np.abs(u)) > 1e-3


@pytest.mark.parametrize("config", ["rectangles-1d", "blobs-1d"])
def test_a_single_bump_has_one_sign(config):
    for channel in draw(config, 6):
        peak = channel[np.argmax(np.abs(channel))]
        assert 0 < abs(peak) <= 1 + 1e-6
        assert np.all(channel * np.sign(peak) >= -1e-7)


def test_sharp_rectangle_is_a_box():
    """With a tiny softness one rectangle is `a` on `[c - s, c + s]` and 0 elsewhere."""
    grid = CONFIGS["rectangles-1d"][1]
    x = relative_coordinates(grid)[0]
    for seed in range(2):
        for u in draw("rectangles-1d", seed):
            peak = u[np.argmax(np.abs(u))]
            inside = np.abs(u) > 0.5 * abs(peak)
            (where,) = np.nonzero(inside)
            assert np.all(np.diff(where) == 1)  # one interval
            # every point is on the plateau or at zero, except at most one per edge
            on_plateau = np.isclose(u, peak, rtol=1e-5)
            at_zero = np.abs(u) < 1e-5 * abs(peak)
            assert np.count_nonzero(~(on_plateau | at_zero)) <= 2
            assert np.count_nonzero(on_plateau) >= np.count_nonzero(inside) - 2
            length = x[where[-1]] - x[where[0]]
            assert 2 * 0.05 - 2 / 400 <= length <= 2 * 0.2 + 2 / 400  # half-sizes in [0.05, 0.2]
            centre = 0.5 * (x[where[0]] + x[where[-1]])
            assert 0.2 - 1 / 400 <= centre <= 0.8 + 1 / 400


def test_gaussian_blob_is_a_gaussian():
    """One blob: `log|u|` is a quadratic in `x` with curvature `-1 / (2 s^2)`, `s` in width."""
    grid = CONFIGS["blobs-1d"][1]
    x = relative_coordinates(grid)[0]
    for u in draw("blobs-1d", 7).astype(np.float64):
        mask = np.abs(u) > 1e-3 * np.max(np.abs(u))
        coef = np.polyfit(x[mask], np.log(np.abs(u[mask])), 2)
        np.testing.assert_allclose(np.polyval(coef, x[mask]), np.log(np.abs(u[mask])), atol=1e-3)
        sigma = np.sqrt(-1 / (2 * coef[0]))
        assert 0.08 * (1 - 1e-3) <= sigma <= 0.1 * (1 + 1e-3)
        centre = -coef[1] / (2 * coef[0])
        assert 0.2 - 1e-3 <= centre <= 0.8 + 1e-3


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("name", list(RANDOM))
def test_key_is_required(name):
    grid = GRIDS["1d"]
    with pytest.raises(TypeError, match="key"):
        RANDOM[name](grid)
    with pytest.raises(TypeError, match=re.escape("`key` must be a `jax.random.key`")):
        RANDOM[name](grid, key=None)
    with pytest.raises(TypeError, match=re.escape("`key` must be a `jax.random.key`")):
        RANDOM[name](grid, key=0)


@pytest.mark.parametrize("name", ["rectangles", "blobs"])
@pytest.mark.parametrize("argument", ["count", "channels"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_counts(name, argument, value):
    with pytest.raises(ValueError, match=re.escape(f"`{argument}` must be an int >= 1, got")):
        RANDOM[name](GRIDS["1d"], key=key(), **{argument: value})


@pytest.mark.parametrize("argument", ["max_wavenumber", "channels"])
@pytest.mark.parametrize("value", [0, 2.0, False])
def test_random_fourier_bad_counts(argument, value):
    with pytest.raises(ValueError, match=re.escape(f"`{argument}` must be an int >= 1, got")):
        random_fourier(GRIDS["1d"], key=key(), **{argument: value})


def test_random_fourier_bad_basis():
    with pytest.raises(ValueError, match=re.escape("`basis` must be 'fourier' or 'sine'")):
        random_fourier(GRIDS["1d"], key=key(), basis="cosine")


@pytest.mark.parametrize("width", [(0.2, 0.1), (0.0, 0.1), (-0.1, 0.1)])
def test_gaussian_blobs_bad_width_range(width):
    with pytest.raises(ValueError, match=re.escape("`width` must be (low, high)")):
        gaussian_blobs(GRIDS["1d"], key=key(), width=width)


@pytest.mark.parametrize("width", [(0.1,), (0.05, 0.1, 0.2), 0.1])
def test_gaussian_blobs_width_of_the_wrong_length_names_the_argument(width):
    """DESIGN: bad input fails with a ValueError/TypeError naming the argument."""
    with pytest.raises((ValueError, TypeError), match=re.escape("`width`")):
        gaussian_blobs(GRIDS["1d"], key=key(), width=width)


@pytest.mark.parametrize("softness", [0.0, -0.01])
def test_soft_rectangles_bad_softness(softness):
    with pytest.raises(ValueError, match=re.escape("`softness` must be positive")):
        random_soft_rectangles(GRIDS["1d"], key=key(), softness=softness)


@pytest.mark.parametrize(
    "grid_name, frequencies", [("1d", (1.0, 2.0)), ("2d", (1.0,)), ("3d", (1.0, 2.0))]
)
def test_sine_wrong_number_of_frequencies(grid_name, frequencies):
    with pytest.raises(ValueError, match=re.escape("`frequencies` must be a scalar or one per")):
        sine(GRIDS[grid_name], frequencies)
