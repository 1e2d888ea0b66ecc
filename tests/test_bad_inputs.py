"""Every bad input refused at the door (issue 14): one test per refused input.

Concrete bad values raise `ValueError`/`TypeError` before anything is compiled; values that
may be traced (coefficients or weights swept under `jax.vmap`) stop the run with
`eqx.error_if`; where carrying on is right, a warning points at the user's line.
"""

import pathlib
import re
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd import Grid
from trainax_fd.configurations import Composite, DivertedChain, Supervised
from trainax_fd.data import Pairs, Windows
from trainax_fd.reference import (
    Advection,
    Burgers,
    Diffusion,
    FourierHeat,
    PoissonRelaxation,
    repeat,
    rollout,
    trajectories,
)

RING = Grid((16,), placement="periodic")
U = jnp.ones((1, 16))
ILL_POSED = "makes the problem ill-posed (every mode grows)"


def raises(error, message):
    return pytest.raises(error, match=re.escape(message))


# ---------------------------------------------------------------------------------------------
# physics: the grid


@pytest.mark.parametrize(
    "extent, got",
    [(np.inf, "(inf,)"), (np.nan, "(nan,)"), (-np.inf, "(-inf,)")],
)
def test_grid_with_a_non_finite_extent(extent, got):
    with raises(ValueError, f"`extent` must be finite and positive, got {got}."):
        Grid((8,), extent=extent)


def test_grid_with_one_infinite_extent_of_several():
    with raises(ValueError, "`extent` must be finite and positive, got (1.0, inf)."):
        Grid((8, 8), extent=(1.0, np.inf))


@pytest.mark.parametrize("extent", ["1.0", None, (1.0, True)])
def test_grid_with_a_non_numeric_extent(extent):
    with raises(TypeError, f"`extent` must be a number or one number per axis, got {extent!r}."):
        Grid((8, 8), extent=extent)


# ---------------------------------------------------------------------------------------------
# physics: concrete coefficients, refused at construction

NON_FINITE_DT = {
    "advection": lambda dt: Advection(RING, "periodic", 1.0, dt),
    "central": lambda dt: Advection(RING, "periodic", 0.0, dt, "central"),
    "diffusion": lambda dt: Diffusion(RING, "periodic", 1.0, dt),
    "burgers": lambda dt: Burgers(RING, "periodic", 0.01, dt),
    "fourier_heat": lambda dt: FourierHeat(RING, 1.0, dt),
}


@pytest.mark.parametrize("name", list(NON_FINITE_DT))
@pytest.mark.parametrize("dt, got", [(np.nan, "nan"), (np.inf, "inf")])
def test_non_finite_dt(name, dt, got):
    with raises(ValueError, f"`dt` must be finite, got {got}."):
        NON_FINITE_DT[name](dt)


@pytest.mark.parametrize("name", list(NON_FINITE_DT))
def test_negative_dt(name):
    with raises(ValueError, "`dt` must be positive, got -0.001."):
        NON_FINITE_DT[name](-1e-3)


@pytest.mark.parametrize("velocity", [np.nan, np.inf])
def test_non_finite_velocity(velocity):
    with raises(ValueError, f"`velocity` must be finite, got {velocity}."):
        Advection(RING, "periodic", velocity, 1e-3)


def test_non_finite_velocity_component():
    with raises(
        ValueError,
        "`velocity` must be finite, got an array of shape (2,) with nan at index (1,) "
        "(1 such entry).",
    ):
        Advection(Grid((8, 8), placement="periodic"), "periodic", (1.0, np.nan), 1e-3)


@pytest.mark.parametrize(
    "factory, name",
    [
        (lambda k: Diffusion(RING, "periodic", k, 1e-4), "diffusivity"),
        (lambda k: FourierHeat(RING, k, 1e-3), "diffusivity"),
        (lambda k: Burgers(RING, "periodic", k, 1e-4), "viscosity"),
        (lambda k: PoissonRelaxation(RING, "periodic", conductivity=k), "conductivity"),
        (lambda s: Diffusion(RING, "periodic", 1.0, 1e-4, source=s), "source"),
        (lambda s: PoissonRelaxation(RING, "periodic", source=s), "source"),
    ],
)
def test_non_finite_coefficient(factory, name):
    with raises(ValueError, f"`{name}` must be finite, got nan."):
        factory(np.nan)


def test_non_finite_diffusivity_field_names_the_first_bad_entry():
    k = np.ones((1, 16), np.float32)
    k[0, 5] = np.inf
    k[0, 9] = np.nan
    with raises(
        ValueError,
        "`diffusivity` must be finite, got an array of shape (1, 16) with inf at index (0, 5) "
        "(2 such entries).",
    ):
        Diffusion(RING, "periodic", k, 1e-4)


@pytest.mark.parametrize(
    "factory, name",
    [
        (lambda k: Diffusion(RING, "periodic", k, 1e-4), "diffusivity"),
        (lambda k: FourierHeat(RING, k, 1e-3), "diffusivity"),
        (lambda k: Burgers(RING, "periodic", k, 1e-4), "viscosity"),
    ],
)
def test_negative_diffusivity(factory, name):
    with raises(ValueError, f"`{name}` must be >= 0; a negative {name} {ILL_POSED}, got -0.5."):
        factory(-0.5)


def test_negative_diffusivity_field():
    k = np.ones((1, 16), np.float32)
    k[0, 7] = -2.0
    with raises(
        ValueError,
        f"`diffusivity` must be >= 0; a negative diffusivity {ILL_POSED}, got an array of shape "
        "(1, 16) with -2.0 at index (0, 7) (1 such entry).",
    ):
        Diffusion(RING, "periodic", k, 1e-4)


# ---------------------------------------------------------------------------------------------
# physics: traced coefficients (swept under vmap), stopped when run


@pytest.mark.parametrize(
    "factory, values, message",
    [
        (
            lambda k: Diffusion(RING, "periodic", k, 1e-4),
            [0.1, np.nan],
            "`diffusivity` must be finite and >= 0.",
        ),
        (
            lambda k: Diffusion(RING, "periodic", k, 1e-4),
            [0.1, -0.1],
            "`diffusivity` must be finite and >= 0.",
        ),
        (
            lambda k: FourierHeat(RING, k, 1e-3),
            [0.1, -1.0],
            "`diffusivity` must be finite and >= 0.",
        ),
        (lambda k: Burgers(RING, "periodic", k, 1e-4), [0.1, np.inf], "`viscosity` must be finite"),
        (
            lambda c: Advection(RING, "periodic", c, 1e-3),
            [0.5, np.nan],
            "`velocity` must be finite.",
        ),
        (lambda dt: FourierHeat(RING, 1.0, dt), [0.1, -0.1], "`dt` must be positive."),
        (lambda dt: FourierHeat(RING, 1.0, dt), [0.1, np.inf], "`dt` must be finite."),
        (lambda dt: Diffusion(RING, "periodic", 1.0, dt), [1e-4, np.nan], "`dt` must be finite."),
        (lambda dt: Advection(RING, "periodic", 1.0, dt), [1e-3, -1e-3], "`dt` must be positive."),
    ],
)
def test_traced_bad_coefficient_stops_the_run(factory, values, message):
    run = eqx.filter_jit(jax.vmap(lambda v: factory(v)(U)))
    assert run(jnp.asarray(values[:1])).shape == (1, *U.shape)  # the good value runs
    with pytest.raises(eqx.EquinoxRuntimeError, match=re.escape(message)):
        jax.block_until_ready(run(jnp.asarray(values)))


# ---------------------------------------------------------------------------------------------
# physics: Burgers' convective limit, known only from the state: a warning in `trajectories`


def test_burgers_over_its_convective_limit_warns_in_trajectories():
    stepper = Burgers(RING, "periodic", 0.01, 0.01)  # viscous limit ~0.195: accepted
    x = jnp.asarray(RING.coordinates(0), jnp.float32)
    initial = jnp.stack([0.1 * jnp.sin(2 * jnp.pi * x)[None], 10.0 * jnp.sin(2 * jnp.pi * x)[None]])
    limit = float(stepper.max_stable_dt(initial[1]))
    assert limit < 0.01 < float(stepper.max_stable_dt(initial[0]))
    with pytest.warns(UserWarning) as record:
        trajectories(stepper, initial, 3)
    message = str(record[0].message)
    assert message == (
        f"`stepper` (Burgers) is unstable on these data: its `dt`=0.01 exceeds "
        f"`max_stable_dt`={limit:.6g} of sample 1 at time level 0 (1 of 2 samples go over the "
        f"limit); the trajectories may blow up. A stable choice for that state is "
        f"dt={0.9 * limit:.6g}, or smaller initial states."
    )
    assert record[0].filename == __file__  # the user's line, not the package's


def test_burgers_within_its_limit_does_not_warn():
    stepper = Burgers(RING, "periodic", 0.01, 0.005)
    x = jnp.asarray(RING.coordinates(0), jnp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = trajectories(stepper, 0.5 * jnp.sin(2 * jnp.pi * x)[None, None], 20)
    assert bool(jnp.isfinite(data).all())


class Growing(eqx.Module):
    """Doubles the state; stable while `dt * max|u| <= 1` (a state-dependent limit)."""

    dt: jax.Array

    def max_stable_dt(self, u):
        return 1.0 / jnp.max(jnp.abs(u))

    def __call__(self, u):
        return 2.0 * u


def test_state_dependent_limit_names_the_first_time_level_over_it():
    initial = jnp.stack([jnp.full((1, 4), 0.05), jnp.full((1, 4), 0.3), jnp.full((1, 4), 0.1)])
    with pytest.warns(UserWarning, match=re.escape("of sample 1 at time level 2 (2 of 3")):
        trajectories(Growing(jnp.asarray(1.0)), initial, 5)  # 0.3, 0.6, 1.2; 0.1 at level 4


# ---------------------------------------------------------------------------------------------
# data: trajectories

SHAPE = "(samples, time, channels, *spatial)"


@pytest.mark.parametrize("data", ["data.npy", pathlib.Path("data.npy")])
def test_windows_of_a_file_name(data):
    with raises(
        TypeError,
        f"`trajectories` must hold arrays of shape {SHAPE}, got "
        f"{'str ' if isinstance(data, str) else ''}{data!r} at <root>. Load the file first, "
        "e.g. `np.load(path)`.",
    ):
        Windows(data, 2)


def test_windows_of_an_object():
    with raises(TypeError, f"`trajectories` must hold arrays of shape {SHAPE}, got object"):
        Windows({"u": object()}, 2)


def test_windows_with_too_few_axes():
    with raises(
        ValueError,
        f"`trajectories` leaves must have shape {SHAPE} (at least 3 axes), got shape (4, 10) "
        "at <root>.",
    ):
        Windows(np.zeros((4, 10), np.float32), 2)


@pytest.mark.parametrize("shape", [(0, 10, 1, 8), (4, 0, 1, 8), (4, 10, 1, 0)])
def test_empty_windows(shape):
    """0 samples (no windows: once a `ZeroDivisionError`), 0 time levels, 0 points."""
    with raises(
        ValueError,
        f"`trajectories` must not be empty: every axis of {SHAPE} needs size >= 1, got shape "
        f"{shape} at <root>.",
    ):
        Windows(np.zeros(shape, np.float32), 1)


@pytest.mark.parametrize("dtype", [np.int32, np.bool_])
def test_integer_trajectories(dtype):
    with raises(
        TypeError,
        f"`trajectories` must have a floating-point dtype, got dtype {np.dtype(dtype)} at "
        "['u']; convert it, e.g. `data.astype(jnp.float32)`.",
    ):
        Windows({"u": np.zeros((4, 10, 1, 8), dtype)}, 2)


@pytest.mark.parametrize("as_jax", [False, True])
def test_non_finite_trajectories_name_the_first_sample_and_time_level(as_jax):
    data = np.zeros((4, 10, 1, 8), np.float32)
    data[3, 1, 0, 0] = np.inf  # a later sample
    data[2, 6, 0, 3] = np.nan
    data[2, 7, 0, 1] = -np.inf
    with raises(
        ValueError,
        "`trajectories` must be finite, got nan at sample 2, time level 6 (leaf <root>; 3 "
        "non-finite values in that leaf).",
    ):
        Windows(jnp.asarray(data) if as_jax else data, 2)


def test_non_finite_trajectories_across_leaves():
    state = np.zeros((4, 10, 1, 8), np.float32)
    forcing = np.zeros((4, 10, 2), np.float32)
    state[2, 5, 0, 0] = np.nan
    forcing[1, 8, 1] = np.inf
    with raises(
        ValueError,
        "`trajectories` must be finite, got inf at sample 1, time level 8 (leaf ['forcing']; 1 "
        "non-finite value in that leaf).",
    ):
        Windows({"state": state, "forcing": forcing}, 2)


def test_traced_trajectories_are_not_checked_for_nan():
    """Under `jit` the values are unknown: building the windows still works."""
    data = jnp.zeros((4, 10, 1, 8)).at[0, 0, 0, 0].set(jnp.nan)
    first = jax.jit(lambda d: Windows(d, 3).gather(jnp.arange(2))[0, 0, 0, 0])(data)
    assert bool(jnp.isnan(first))


# ---------------------------------------------------------------------------------------------
# data: input -> target pairs


def test_pairs_of_a_file_name():
    with raises(
        TypeError,
        "`inputs` must hold arrays with a leading examples axis, got str 'x.npy' at <root>. "
        "Load the file first, e.g. `np.load(path)`.",
    ):
        Pairs("x.npy", np.zeros((4, 3), np.float32))


@pytest.mark.parametrize("name", ["inputs", "targets"])
def test_empty_pairs(name):
    arrays = {"inputs": np.zeros((4, 3), np.float32), "targets": np.zeros((4, 3), np.float32)}
    arrays[name] = np.zeros((0, 3), np.float32)
    with raises(
        ValueError,
        f"`{name}` must not be empty: every axis of (examples, ...) needs size >= 1, got shape "
        "(0, 3) at <root>.",
    ):
        Pairs(**arrays)


def test_integer_pairs():
    with raises(
        TypeError,
        "`targets` must have a floating-point dtype, got dtype int32 at <root>; convert it, "
        "e.g. `data.astype(jnp.float32)`.",
    ):
        Pairs(np.zeros((4, 3), np.float32), np.zeros((4, 3), np.int32))


@pytest.mark.parametrize("name", ["inputs", "targets"])
def test_non_finite_pairs_name_the_first_example(name):
    arrays = {"inputs": np.zeros((5, 3), np.float32), "targets": np.zeros((5, 3), np.float32)}
    arrays[name][4, 0] = np.nan
    arrays[name][2, 1] = np.inf
    with raises(
        ValueError,
        f"`{name}` must be finite, got inf at example 2 (leaf <root>; 2 non-finite values in "
        "that leaf).",
    ):
        Pairs(**arrays)


# ---------------------------------------------------------------------------------------------
# models: a stepper that changes the shape or dtype of the state

STATE_MISMATCH = "`stepper` must map one state to a state of the same structure, shape and dtype "
ONE_SAMPLE = "(one sample `(channels, *spatial)`; batch with `jax.vmap`), got "


@pytest.mark.parametrize(
    "stepper, got",
    [
        (lambda u: u[:, :8], "float32[1, 16] -> float32[1, 8]"),
        (lambda u: u.astype(jnp.int32), "float32[1, 16] -> int32[1, 16]"),
        (lambda u: jnp.stack([u, u]), "float32[1, 16] -> float32[2, 1, 16]"),
        (lambda u: (u, u), "float32[1, 16] -> (float32[1, 16], float32[1, 16])"),
    ],
)
@pytest.mark.parametrize(
    "run",
    [
        lambda stepper: rollout(stepper, 3)(U),
        lambda stepper: trajectories(stepper, U[None], 3),
        lambda stepper: repeat(stepper, 2)(U),
        lambda stepper: rollout(repeat(stepper, 2), 3)(U),
    ],
    ids=["rollout", "trajectories", "repeat", "rollout-of-repeat"],
)
def test_stepper_that_changes_the_state(stepper, got, run):
    with raises(ValueError, STATE_MISMATCH + ONE_SAMPLE + got + "."):
        run(stepper)


# ---------------------------------------------------------------------------------------------
# weights


@pytest.mark.parametrize("value, got", [(np.nan, "nan"), (np.inf, "inf")])
def test_non_finite_time_level_weights(value, got):
    with raises(
        ValueError,
        f"`time_level_weights` must be finite, got an array of shape (3,) with {got} at index "
        "(1,) (1 such entry).",
    ):
        Supervised(3, time_level_weights=[1.0, value, 1.0])


def test_non_finite_branch_level_weights():
    reference = Diffusion(RING, "periodic", 1.0, 1e-4)
    with raises(ValueError, "`branch_level_weights` must be finite, got an array of shape (2,)"):
        DivertedChain(reference, 3, 2, branch_level_weights=[np.nan, 1.0])


def test_non_finite_composite_weights():
    with raises(
        ValueError,
        "`weights` must be finite, got an array of shape (2,) with nan at index (0,) "
        "(1 such entry).",
    ):
        Composite([Supervised(1), Supervised(2)], [np.nan, 1.0])


def test_traced_non_finite_time_level_weights_stop_the_run():
    window = jnp.ones((3, 1, 16))

    def loss(w):
        return Supervised(2, time_level_weights=w)(lambda u: 0.5 * u, window)

    run = eqx.filter_jit(jax.vmap(loss))
    assert run(jnp.ones((2, 2))).shape == (2,)
    with pytest.raises(
        eqx.EquinoxRuntimeError, match=re.escape("`time_level_weights` must be finite.")
    ):
        jax.block_until_ready(run(jnp.asarray([[1.0, 1.0], [1.0, jnp.nan]])))


# ---------------------------------------------------------------------------------------------
# warnings point at the user's line


def test_central_advection_warning_points_at_the_callers_line():
    with pytest.warns(UserWarning, match=re.escape("Central (FTCS) advection")) as record:
        Advection(RING, "periodic", 1.0, 1e-3, "central")
    assert record[0].filename == __file__
