"""A relaxation for `div(grad T) + s = 0`, `T = 0` on the boundary, learned from Jacobi sweeps:
the trajectory sampler, the learned stepper, and residual histories to compare relaxations."""

from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_int
from .._custom_types import State
from ..arch import StencilConv
from ..data import Sampler
from ..reference import PoissonRelaxation
from ..stencil import Dirichlet, Grid, div_k_grad

#: One sample of the relaxation's state: `T` and the source `s` as two channels.
RelaxationState = Float[Array, "2 *spatial"]


def _check_grid(grid: Grid) -> None:
    if not isinstance(grid, Grid):
        raise TypeError(f"`grid` must be a `Grid`, got {type(grid).__name__}.")
    if "periodic" in grid.placement:
        raise ValueError(
            "`grid` must have placement 'cell' or 'vertex' on every axis (T = 0 on the "
            f"boundary), got {grid.placement}."
        )


def _check_state(u, grid: Grid) -> None:
    shape = getattr(u, "shape", None)
    if shape is None or tuple(shape) != (2, *grid.shape):
        raise ValueError(
            f"`u` must have shape (2, {', '.join(map(str, grid.shape))}) (channels T and s), "
            f"got {shape}. The stepper acts on one sample; batch with `jax.vmap`."
        )


def _jacobi(grid: Grid, source, omega) -> PoissonRelaxation:
    return PoissonRelaxation(grid, Dirichlet(0.0), 1.0, source, omega, "jacobi")


def relaxation_sampler(
    grid: Grid,
    *,
    sweeps_per_step: int,
    rollout: int,
    max_start: int,
    batch_size: int,
    omega: float = 0.8,
) -> Sampler:
    """Windows of Jacobi relaxation trajectories from random sources, drawn inside the loop.

    An example draws a source `s` of independent values uniform in `[-1, 1]` (every
    wavenumber present), relaxes `T = 0` with a random number of weighted-Jacobi sweeps in
    `[0, max_start]` (so windows come from every stage of the relaxation), then records
    `rollout + 1` states `sweeps_per_step` sweeps apart. The sweeps are
    `PoissonRelaxation(grid, Dirichlet(0), 1, s, omega, "jacobi")`.

    **Arguments:**

    - `grid`: a `"cell"` or `"vertex"` grid.
    - `sweeps_per_step`: Jacobi sweeps between recorded states (what one learned step should
        do), an int `>= 1`.
    - `rollout`: recorded steps after the first state, an int `>= 1`.
    - `max_start`: the most sweeps before the first recorded state, an int `>= 0`.
    - `batch_size`: examples per batch.
    - `omega`: the Jacobi weight, in `(0, 1]`.

    **Returns:** a `trainax_fd.data.Sampler` whose batches are windows
    `(batch, rollout + 1, 2, *spatial)` of states `(T, s)`: trajectories for
    `configurations.Supervised(rollout)`.
    """
    _check_grid(grid)
    check_int("sweeps_per_step", sweeps_per_step)
    check_int("rollout", rollout)
    check_int("max_start", max_start, 0)
    check_int("batch_size", batch_size)
    _jacobi(grid, 0.0, omega)  # checks `omega`

    def relax(s, start):
        jacobi = _jacobi(grid, s, omega)
        t = lax.fori_loop(0, start, lambda _, t: jacobi.step(t), jnp.zeros_like(s))

        def record(t, _):
            t = lax.fori_loop(0, sweeps_per_step, lambda _, t: jacobi.step(t), t)
            return t, t

        _, later = lax.scan(record, t, None, length=rollout)
        states = jnp.concatenate([t[None], later])  # (rollout + 1, 1, *spatial)
        return jnp.concatenate([states, jnp.broadcast_to(s, states.shape)], axis=1)

    def draw(key: PRNGKeyArray) -> Float[Array, "batch time 2 *spatial"]:
        # the batch's random numbers in two draws: vmapped per-example draws compile slower
        source_key, start_key = jax.random.split(key)
        sources = jax.random.uniform(source_key, (batch_size, 1, *grid.shape), minval=-1.0)
        starts = jax.random.randint(start_key, (batch_size,), 0, max_start + 1)
        return jax.vmap(relax)(sources, starts)

    return Sampler(draw)


class LearnedRelaxation(eqx.Module):
    """A relaxation step with a learned correction of the residual:
    `T <- T + P(div(grad T) + s)`, `s` unchanged, with `P` a linear `StencilConv`.

    Every relaxation of this form (Jacobi: `P = omega / diagonal`; `m` Jacobi sweeps: a
    polynomial of the stencil, `2m - 1` points wide) has the discrete solution as a fixed
    point whatever `P` is, since the correction vanishes with the residual: the learned
    stepper can converge more or less quickly, but never to a wrong `T`.

    `P` starts at zero (the identity step), which is stable, where random weights can make
    early rollouts grow.

    **Arguments:**

    - `grid`: a `"cell"` or `"vertex"` grid; `T = 0` on its boundary, `k = 1`.
    - `kernel_size`: points per axis of `P` (`2 m - 1` holds `m` Jacobi sweeps).
    """

    correction: StencilConv
    grid: Grid = eqx.field(static=True)

    def __init__(self, grid: Grid, kernel_size: int):
        _check_grid(grid)
        check_int("kernel_size", kernel_size)
        self.grid = grid
        # the constructor's shapes and checks, without drawing (and compiling) random weights
        conv = eqx.filter_eval_shape(
            StencilConv, grid.ndim, 1, 1, kernel_size, boundary=Dirichlet(0.0), grid=grid,
            key=jax.random.key(0),
        )  # fmt: skip
        # every array of it is zero: the weights, and the boundary value of `Dirichlet(0)`
        self.correction = jax.tree_util.tree_map(
            lambda x: jnp.zeros(x.shape, x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x,
            conv,
        )

    def __call__(self, u: RelaxationState) -> RelaxationState:
        """One step on one sample `(2, *spatial)` (channels `T`, `s`); same shape back."""
        _check_state(u, self.grid)
        t, s = u[:1], u[1:]
        residual = div_k_grad(t, 1.0, self.grid, Dirichlet(0.0)) + s
        return jnp.concatenate([t + self.correction(residual), s])


def reference_relaxations(
    grid: Grid, *, omega: float = 0.8, sweeps_per_step: int = 1
) -> dict[str, Callable[[State, State], State]]:
    """The relaxations a learned one is compared with, as `step(T, s) -> T` on one sample:
    weighted Jacobi (`omega`), red-black Gauss-Seidel, and, for `sweeps_per_step > 1`,
    `sweeps_per_step` Jacobi sweeps per step (what the learned stepper was taught)."""
    _check_grid(grid)
    check_int("sweeps_per_step", sweeps_per_step)
    _jacobi(grid, 0.0, omega)

    def jacobi(t, s, sweeps=1):
        relax = _jacobi(grid, s, omega)
        return lax.fori_loop(0, sweeps, lambda _, t: relax.step(t), t)

    def gauss_seidel(t, s):
        return PoissonRelaxation(grid, Dirichlet(0.0), 1.0, s, 1.0, "red_black").step(t)

    steps = {f"Jacobi (omega {omega:g})": jacobi, "red-black Gauss-Seidel": gauss_seidel}
    if sweeps_per_step > 1:
        steps[f"{sweeps_per_step} Jacobi sweeps"] = lambda t, s: jacobi(t, s, sweeps_per_step)
    return steps


def residual_history(
    step: Callable[[State, State], State], sources: Float[Array, "samples 1 *spatial"],
    grid: Grid, num_steps: int,
) -> np.ndarray:  # fmt: skip
    """The root-mean-square residual `|div(grad T) + s|` of `step` iterated from `T = 0`.

    **Arguments:**

    - `step`: `step(T, s) -> T` on one sample (`(1, *spatial)` each).
    - `sources`: a batch of sources, `(samples, 1, *spatial)`.
    - `grid`: their grid.
    - `num_steps`: steps to take, an int `>= 1`.

    **Returns:** a NumPy array `(num_steps + 1, samples)`, row 0 the residual of `T = 0`.
    """
    _check_grid(grid)
    check_int("num_steps", num_steps)
    shape = getattr(sources, "shape", None)
    if shape is None or len(shape) != grid.ndim + 2 or tuple(shape[1:]) != (1, *grid.shape):
        raise ValueError(
            f"`sources` must have shape (samples, 1, {', '.join(map(str, grid.shape))}), got "
            f"{shape}."
        )
    return np.asarray(_history(step, jnp.asarray(sources), grid, num_steps))


@eqx.filter_jit
def _history(step, sources, grid: Grid, num_steps: int):
    def one(s):
        def rms(t):
            r = div_k_grad(t, 1.0, grid, Dirichlet(0.0)) + s
            return jnp.sqrt(jnp.mean(r**2))

        def body(t, _):
            t = step(t, s)
            return t, rms(t)

        t0 = jnp.zeros_like(s)
        _, later = lax.scan(body, t0, None, length=num_steps)
        return jnp.concatenate([rms(t0)[None], later])

    return jax.vmap(one, out_axes=1)(sources)


def reduction_table(histories: Mapping[str, np.ndarray], *, last: int = 10) -> str:
    """Residual reduction per step of each relaxation: the geometric mean over samples of
    `(r_n / r_0)^(1/n)` over all `n` steps, of the same over the `last` steps, and `r_n / r_0`.

    **Arguments:**

    - `histories`: `{name: residuals (steps + 1, samples)}` from `residual_history`.
    - `last`: steps of the asymptotic factor, an int `>= 1` and at most the steps taken.
    """
    check_int("last", last)
    lines = [f"{'relaxation':<26} {'per step':>9} {f'last {last}':>9} {'r_n / r_0':>10}"]
    for name, r in histories.items():
        r = np.asarray(r, np.float64)
        n = r.shape[0] - 1
        if last > n:
            raise ValueError(f"`last` must be at most the {n} steps of {name!r}, got {last}.")
        overall = np.exp(np.mean(np.log(r[-1] / r[0]) / n))
        tail = np.exp(np.mean(np.log(r[-1] / r[-1 - last]) / last))
        total = np.exp(np.mean(np.log(r[-1] / r[0])))
        lines.append(f"{name:<26} {overall:>9.4f} {tail:>9.4f} {total:>10.2e}")
    return "\n".join(lines)
