"""`solve`: `div(k grad u) - c u + s = 0` to a tolerance, by multigrid or multigrid-CG."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import is_concrete
from .._custom_types import Coefficient, State
from ..stencil import BoundarySpec, Dirichlet, Grid, Periodic, boundary_pairs
from ._cg import conjugate_gradients, cycles
from ._implicit import implicit_solve, linear_system
from ._multigrid import COARSE, CYCLES, Multigrid
from ._report import SolveReport
from ._transfer import axis_rules, coarse_grids

METHODS = ("mg", "mgcg")


def solve(
    grid: Grid,
    bc: BoundarySpec,
    conductivity: Coefficient = 1.0,
    source: Coefficient = 0.0,
    *,
    reaction: Coefficient | None = None,
    initial: State | None = None,
    tol: float | None = None,
    method: Literal["mg", "mgcg"] = "mg",
    cycle: Literal["V", "W", "F"] = "V",
    smoothing: tuple[int, int] = (2, 2),
    fmg: bool = False,
    max_iterations: int = 50,
    coarse: Literal["rediscretise", "galerkin"] = "rediscretise",
    max_levels: int | None = None,
) -> tuple[State, SolveReport]:
    """Solve `div(k grad u) - c u + s = 0` with the stencil core's `div_k_grad`.

    Geometric multigrid on the grid's own hierarchy (every axis halved until at most 256
    points remain or an axis no longer halves, then a dense solve of at most 1024 points):
    red-black Gauss-Seidel smoothing, full-weighting restriction, bilinear prolongation,
    coarse operators from the face-averaged `k` (`coarse="rediscretise"`: fine face
    conductances in series along the flux, side by side across it) or Galerkin products
    `R A P`. Dirichlet, Neumann and periodic sides; with no
    Dirichlet side and no reaction the solution is fixed to zero mean and the mean of the
    right-hand side (sources plus boundary fluxes) is removed, since only then does a solution
    exist.

    The solution is differentiable with respect to `conductivity`, `source`, `reaction` and
    the boundary values (Dirichlet values, Neumann fluxes) by implicit differentiation: a
    gradient costs one adjoint solve (`jax.lax.custom_linear_solve`), not a backward pass
    through the cycles. Coefficients are traced: new values do not recompile. One sample;
    batch with `jax.vmap` (each batch member stops on its own tolerance).

    **Arguments:**

    - `grid`: the grid; sizes must halve down to a small grid (e.g. 1024 cells or 1023
      vertices per axis).
    - `bc`: boundary specification (see `trainax_fd.stencil.boundary_pairs`).
    - `conductivity`: `k > 0`, a scalar or a field `(1 or channels, *spatial)`.
    - `source`: `s`, a scalar or a field `(1 or channels, *spatial)`.
    - `reaction`: `c >= 0`, a scalar or a field `(1 or channels, *spatial)`; `None` for none
        (a concrete all-zero reaction counts as none; a traced one must be positive
        somewhere when no side is Dirichlet, else the problem is singular).
    - `initial`: a first guess `(channels, *spatial)` (e.g. the previous time step); zero by
      default.
    - `tol`: the relative residual `||f - A u|| / ||f||` to reach. `None`: the rounding
      floor of the dtype at the solution, `eps || |A| |u| + |f| || / ||f||`, which grows
      with the grid like `1 / h^2`: in float64 about `1e-13` on 64² points and `1e-10` on
      1024²; in float32 about `2e-4` on 64² and `5e-2` on 1024² (the residual reaches
      about ten times lower, `1e-8 N^2` for `N^2` points, and no further).
    - `method`: `"mg"` repeats cycles; `"mgcg"` runs conjugate gradients preconditioned by
      one symmetric cycle (needs equal pre- and post-smoothing and a `"V"` or `"W"` cycle).
    - `cycle`: `"V"`, `"W"` or `"F"`.
    - `smoothing`: Gauss-Seidel sweeps `(before, after)` the coarse-grid correction.
    - `fmg`: start with one full-multigrid pass (from `initial`, on its residual): a cycle or
      two fewer, for a longer compilation (each level's cycle is compiled once more).
    - `max_iterations`: most cycles (or CG iterations); fixes the report's history length.
    - `coarse`: `"rediscretise"` or `"galerkin"` coarse operators.
    - `max_levels`: most grids in the hierarchy; `None` for as many as halve.

    **Returns:** `(u, report)`: the solution `(channels, *spatial)` and a `SolveReport`.

    !!! example
        ```python
        grid = Grid((1023, 1023), placement="vertex")
        x, y = grid.mesh()
        k = 1 + 0.9 * jnp.sin(6 * jnp.pi * x) * jnp.sin(4 * jnp.pi * y)
        u, report = solve(grid, "dirichlet", k[None], 1.0, tol=1e-8)
        report.iterations, report.convergence_factor
        ```
    """
    options = dict(reaction=reaction, initial=initial, tol=tol, method=method, cycle=cycle)
    options.update(smoothing=smoothing, fmg=fmg, max_iterations=max_iterations)
    options.update(coarse=coarse, max_levels=max_levels)
    return _solve(grid, *prepare(grid, bc, conductivity, source, **options))


def prepare(
    grid, bc, conductivity, source, *, reaction, initial, tol, method, cycle, smoothing, fmg,
    max_iterations, coarse, max_levels,
):  # fmt: skip
    """Check `solve`'s arguments before tracing; **returns** `(pairs, arrays, channels, tol,
    config)` for `_solve`."""
    if not isinstance(grid, Grid):
        raise TypeError(f"`grid` must be a `Grid`, got {type(grid).__name__}: {grid!r}.")
    pairs = boundary_pairs(bc, grid)
    _check_choice("method", method, METHODS)
    _check_choice("cycle", cycle, CYCLES)
    _check_choice("coarse", coarse, COARSE)
    smoothing = _check_smoothing(smoothing)
    _check_int("max_iterations", max_iterations, 1)
    if max_levels is not None:
        _check_int("max_levels", max_levels, 1)
    if not isinstance(fmg, bool):
        raise TypeError(f"`fmg` must be a bool, got {type(fmg).__name__}: {fmg!r}.")
    if method == "mgcg" and (smoothing[0] != smoothing[1] or cycle == "F"):
        raise ValueError(
            "`method='mgcg'` needs a symmetric preconditioner: equal pre- and post-smoothing "
            f"and cycle 'V' or 'W', got smoothing={smoothing} and cycle={cycle!r}."
        )
    if coarse == "galerkin" and any(isinstance(low, Periodic) for low, _ in pairs):
        raise ValueError(
            "`coarse='galerkin'` does not support periodic axes; use `coarse='rediscretise'`."
        )
    coarse_grids(grid, max_levels)  # refuses grids that do not coarsen, before tracing
    fields = {"conductivity": conductivity, "source": source, "reaction": reaction}
    fields["initial"] = initial
    dtype = _dtype(fields)
    arrays = {name: _field(name, value, grid, dtype) for name, value in fields.items()}
    channels = _channels(arrays, grid)
    _check_sign(arrays["conductivity"], "conductivity", "positive", lambda k: k > 0)
    if arrays["reaction"] is not None:
        _check_sign(arrays["reaction"], "reaction", "non-negative", lambda c: c >= 0)
    tol = _check_tol(tol, dtype)
    c = arrays["reaction"]
    if c is not None and is_concrete(c) and not np.any(np.asarray(c)):
        arrays["reaction"] = c = None  # a zero reaction is no reaction: maybe singular
    singular = c is None and not any(isinstance(side, Dirichlet) for pair in pairs for side in pair)
    config = (method, cycle, smoothing, fmg, max_iterations, coarse, max_levels, singular)
    return pairs, arrays, channels, tol, config


@eqx.filter_jit
def _solve(grid, pairs, arrays, channels, tol, config):
    method, cycle, smoothing, fmg, max_iterations, coarse, max_levels, singular = config
    k, s, c, u0 = (arrays[n] for n in ("conductivity", "source", "reaction", "initial"))
    # traced coefficients (under vmap, grad or jit) are checked when the solve runs
    k = eqx.error_if(k, ~jnp.all(k > 0), "`conductivity` must be positive everywhere.")
    if c is not None:
        c = eqx.error_if(c, ~jnp.all(c >= 0), "`reaction` must be non-negative everywhere.")
    shape = (channels, *grid.shape)
    matvec, f = linear_system(grid, pairs, k, s, c, shape)
    mg = Multigrid(
        grid,
        axis_rules(grid, pairs),
        lax.stop_gradient(k),
        lax.stop_gradient(jnp.zeros((), k.dtype) if c is None else c),
        singular=singular,
        cycle=cycle,
        smoothing=smoothing,
        symmetric=method == "mgcg",
        coarse=coarse,
        max_levels=max_levels,
    )
    loop = cycles if method == "mg" else conjugate_gradients
    options = dict(tol=tol, max_iterations=max_iterations, fmg=fmg)
    zero = jnp.zeros(shape, f.dtype)
    start = zero if u0 is None else lax.stop_gradient(jnp.broadcast_to(u0, shape))
    return implicit_solve(
        matvec,
        f,
        lambda b: loop(mg, b, start, **options),
        lambda b: loop(mg, b, zero, **options),
    )


def _check_choice(name, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.")


def _check_int(name, value, minimum) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")


def _check_smoothing(smoothing) -> tuple[int, int]:
    ok = isinstance(smoothing, (tuple, list)) and len(smoothing) == 2
    ok = ok and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in smoothing)
    if not ok or min(smoothing) < 0 or sum(smoothing) < 1:
        raise ValueError(
            "`smoothing` must be two non-negative ints (sweeps before, after the coarse "
            f"correction), not both zero, got {smoothing!r}."
        )
    return int(smoothing[0]), int(smoothing[1])


def _dtype(fields: dict):
    """The first floating dtype an array argument carries (Python floats are weak), else the
    default float."""
    for value in fields.values():
        dtype = getattr(value, "dtype", None)
        floating = dtype is not None and jnp.issubdtype(dtype, jnp.floating)
        if floating and not getattr(value, "weak_type", False):
            return jax.dtypes.canonicalize_dtype(dtype)  # float64 only with x64 enabled
    return jnp.dtype(jnp.result_type(float))


def _field(name: str, value, grid: Grid, dtype):
    if value is None:
        if name in ("reaction", "initial"):
            return None
        raise TypeError(f"`{name}` must be a float or an array, got None.")
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be a float or an array, got {type(value).__name__}: {value!r}."
        ) from None
    if not (jnp.issubdtype(array.dtype, jnp.floating) or jnp.issubdtype(array.dtype, jnp.integer)):
        raise TypeError(f"`{name}` must be real and numeric, got dtype {array.dtype}.")
    spatial = ", ".join(map(str, grid.shape))
    if name == "initial":
        grid.check_state(array, "initial")
    elif array.ndim != 0 and (array.ndim != grid.ndim + 1 or array.shape[1:] != grid.shape):
        raise ValueError(
            f"`{name}` must be a scalar or have shape (1 or channels, {spatial}), got "
            f"{array.shape}. The solver acts on one sample; batch with `jax.vmap`."
        )
    return array.astype(dtype)


def _channels(arrays: dict, grid: Grid) -> int:
    counts = {n: a.shape[0] for n, a in arrays.items() if a is not None and a.ndim > 0}
    channels = max(counts.values(), default=1)
    for name, count in counts.items():
        if count not in (1, channels):
            raise ValueError(
                f"`{name}` has {count} channels where the other arguments have {channels}; "
                "fields need 1 channel or the same number."
            )
    return channels


def _check_sign(array, name: str, what: str, test) -> None:
    if isinstance(array, jax.core.Tracer):
        return
    values = np.asarray(array)
    if not (np.all(np.isfinite(values)) and np.all(test(values))):
        raise ValueError(
            f"`{name}` must be finite and {what} everywhere, got values in "
            f"[{values.min():.6g}, {values.max():.6g}]."
        )


def _check_tol(tol, dtype):
    if tol is None:
        return None
    number = isinstance(tol, (int, float, np.floating, np.integer)) and not isinstance(tol, bool)
    if not (number or getattr(tol, "shape", None) == ()):
        raise TypeError(f"`tol` must be a float or None, got {type(tol).__name__}: {tol!r}.")
    if not isinstance(tol, jax.core.Tracer) and not float(tol) > 0:
        raise ValueError(f"`tol` must be positive, got {tol!r}.")
    return jnp.asarray(tol, dtype)
