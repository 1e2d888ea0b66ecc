"""Steady diffusion `div(k grad T) + s = 0`, `T = 0` on the boundary, solved as an optimisation:
the residual loss and the energy of `T`, optax minimisers as one compiled loop, bilinear
refinement and average pooling between grids, and the coarse-to-fine driver."""

import functools
import time
from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jaxtyping import Array, Float, Int

from .._checks import check_int
from .._custom_types import AnyArray, Coefficient, Scalar, State
from ..reference._diffusion import coefficient_field
from ..stencil import BoundarySpec, Dirichlet, Grid, div_k_grad, pad

OBJECTIVES = ("residual", "energy")


class SteadyDiffusion(eqx.Module):
    """The discrete problem `div(k grad T) + s = 0` with `T = 0` on the boundary.

    `div(k grad .)` is the stencil core's `div_k_grad` (`k` averaged arithmetically to the
    faces, zero Dirichlet ghosts), a symmetric negative definite operator `A`, so the
    solution is both the zero of the residual `A T + s` and the minimiser of the energy
    `-T.A T / 2 - s.T`.

    **Arguments:**

    - `grid`: a `"cell"` or `"vertex"` grid (1, 2 or 3 axes).
    - `conductivity`: `k`, a scalar or a field `(1, *spatial)`; an array leaf.
    - `source`: `s`, a scalar or a field `(1, *spatial)`; an array leaf.
    """

    grid: Grid = eqx.field(static=True)
    conductivity: AnyArray
    source: AnyArray

    def __init__(self, grid: Grid, conductivity: Coefficient = 1.0, source: Coefficient = 1.0):
        if not isinstance(grid, Grid):
            raise TypeError(f"`grid` must be a `Grid`, got {type(grid).__name__}.")
        if "periodic" in grid.placement:
            raise ValueError(
                "`grid` must have placement 'cell' or 'vertex' on every axis (T = 0 on the "
                f"boundary), got {grid.placement}."
            )
        self.grid = grid
        self.conductivity = coefficient_field(conductivity, grid, "conductivity")
        self.source = coefficient_field(source, grid, "source")

    @property
    def bc(self) -> BoundarySpec:
        return Dirichlet(0.0)

    def residual(self, temperature: State) -> State:
        """`div(k grad T) + s`, shape `(1, *spatial)` like `temperature`."""
        self.grid.check_state(temperature, "temperature")
        k = self.conductivity.astype(temperature.dtype)
        s = self.source.astype(temperature.dtype)
        return div_k_grad(temperature, k, self.grid, self.bc) + s

    def loss(self, temperature: State) -> Scalar:
        """The least-squares loss `mean((div(k grad T) + s)^2)`, a scalar."""
        return jnp.mean(self.residual(temperature) ** 2)

    def energy(self, temperature: State) -> Scalar:
        """The energy `mean(-T div(k grad T) / 2 - s T)`, minimal at the solution; its
        gradient is `-residual / size`, so its Hessian is `-A / size`, not `A^T A`."""
        self.grid.check_state(temperature, "temperature")
        k = self.conductivity.astype(temperature.dtype)
        s = self.source.astype(temperature.dtype)
        flux_term = temperature * div_k_grad(temperature, k, self.grid, self.bc)
        return jnp.mean(-0.5 * flux_term - s * temperature)

    def coarsened(self, factor: int) -> "SteadyDiffusion":
        """The same problem on a grid `factor` times coarser per axis, `k` and `s` average-pooled
        (`average_pool`); needs a `"cell"` grid whose points per axis `factor` divides."""
        _check_cell(self.grid, "grid")
        check_int("factor", factor)
        for n in self.grid.shape:
            if n % factor:
                raise ValueError(
                    f"`factor` must divide the points of every axis, got factor={factor} for "
                    f"grid shape {self.grid.shape}."
                )
        coarse = Grid(
            tuple(n // factor for n in self.grid.shape), self.grid.extent, self.grid.placement
        )

        def pooled(field):
            return field if field.ndim == 0 else average_pool(field, factor)

        return SteadyDiffusion(coarse, pooled(self.conductivity), pooled(self.source))


def condition_number(grid: Grid) -> float:
    """The condition number of `div(grad .)` (`k = 1`) with `T = 0` on the boundary of `grid`:
    its largest over its smallest eigenvalue magnitude. The operator is the Kronecker sum of
    its 1D factors, whose eigenvalues come from dense matrices built column by column with
    `div_k_grad`; the least-squares loss's Hessian `A^T A` has the square of this number.

    **Returns:** a float.
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"`grid` must be a `Grid`, got {type(grid).__name__}.")
    SteadyDiffusion(grid)  # checks the placement
    largest = smallest = 0.0
    for axis, n in enumerate(grid.shape):
        line = Grid((n,), grid.extent[axis], grid.placement[axis])
        columns = _columns(line)
        eigenvalues = np.abs(np.linalg.eigvalsh(np.asarray(columns, np.float64)))
        largest, smallest = largest + eigenvalues.max(), smallest + eigenvalues.min()
    return float(largest / smallest)


@eqx.filter_jit
def _columns(line: Grid) -> Array:
    eye = jnp.eye(line.shape[0])[:, None]  # unit vectors, (n, 1, n)
    return jax.vmap(lambda e: div_k_grad(e, 1.0, line, Dirichlet(0.0))[0])(eye)


def _check_cell(grid: Grid, name: str) -> None:
    if not isinstance(grid, Grid):
        raise TypeError(f"`{name}` must be a `Grid`, got {type(grid).__name__}.")
    if any(p != "cell" for p in grid.placement):
        raise ValueError(
            f"`{name}` must be a 'cell' grid on every axis (cells split in 2 per axis nest in "
            f"the coarse cells), got placement {grid.placement}."
        )


def refine(u: State, grid: Grid, bc: BoundarySpec = "dirichlet") -> State:
    """Bilinear (trilinear in 3D) interpolation to the cell grid with twice the points per axis.

    A fine cell centre lies a quarter of a coarse cell from the nearest coarse centre, so along
    each axis it takes `3/4` of that value and `1/4` of the next one; beyond the edge the next
    one is the ghost of `bc` (for `T = 0`: the odd reflection). Bilinear functions come out
    exactly at every fine point but the outermost layer, which is exact where the ghosts
    continue the function linearly (a linear function with its `Neumann` fluxes, say).

    **Arguments:**

    - `u`: one sample on `grid`, shape `(channels, *spatial)`.
    - `grid`: a `"cell"` grid.
    - `bc`: the boundary conditions that give the ghosts (default zero Dirichlet).

    **Returns:** shape `(channels, *(2 * spatial))`.
    """
    _check_cell(grid, "grid")
    grid.check_state(u)
    return _refine(u, grid, bc)


@eqx.filter_jit  # one program, not one per slice
def _refine(u: State, grid: Grid, bc) -> State:
    out = pad(u, grid, bc, 1)
    for axis in range(1, u.ndim):
        n = out.shape[axis] - 2
        low, mid, high = (lax.slice_in_dim(out, i, i + n, axis=axis) for i in range(3))
        pair = jnp.stack([0.25 * low + 0.75 * mid, 0.75 * mid + 0.25 * high], axis=axis + 1)
        shape = list(out.shape)
        shape[axis] = 2 * n
        out = pair.reshape(shape)  # even fine points, then odd, interleaved along `axis`
    return out


def average_pool(field: State, factor: int) -> Array:
    """The mean of each block of `factor` points per axis: a field on a `factor` times coarser
    cell grid. The mean over the grid is kept (sums of blocks are sums of the field).

    **Arguments:**

    - `field`: one sample, shape `(channels, *spatial)`, every spatial size divisible by
        `factor`.
    - `factor`: an int `>= 1`.

    **Returns:** shape `(channels, *(spatial // factor))`.
    """
    check_int("factor", factor)
    shape = tuple(getattr(field, "shape", ()))
    if len(shape) < 2 or any(n % factor for n in shape[1:]):
        raise ValueError(
            "`field` must have shape (channels, *spatial) with every spatial size divisible by "
            f"`factor`={factor}, got shape {shape}."
        )
    return _average_pool(jnp.asarray(field), factor)


@eqx.filter_jit
def _average_pool(field: Array, factor: int) -> Array:
    blocks = [field.shape[0]]
    for n in field.shape[1:]:
        blocks += [n // factor, factor]
    return jnp.mean(field.reshape(blocks), axis=tuple(range(2, len(blocks), 2)))


class Minimisation(eqx.Module):
    """What `minimise` did: the minimiser, the loss after every step, and the times.

    **Fields:**

    - `grid`: the problem's grid.
    - `solution`: `T` after the last step, shape `(1, *spatial)`.
    - `initial_loss`: the least-squares loss of the initial `T`, a float.
    - `loss`: the least-squares loss `mean(residual^2)` after each step, shape `(steps,)`
        (whatever the objective minimised).
    - `objective`: the minimised objective after each step, shape `(steps,)`.
    - `evaluations`: objective evaluations of each step (line-search trials), `(steps,)`.
    - `compile_seconds`: compiling the loop (0 when an earlier call compiled it).
    - `run_seconds`: running it, `block_until_ready` included.
    """

    grid: Grid = eqx.field(static=True)
    solution: State
    initial_loss: float
    loss: Float[Array, "steps"]  # noqa: F821
    objective: Float[Array, "steps"]  # noqa: F821
    evaluations: Int[Array, "steps"]  # noqa: F821
    compile_seconds: float
    run_seconds: float

    @property
    def final_loss(self) -> float:
        return float(self.loss[-1])


_COMPILED: dict = {}


def minimise(
    problem: SteadyDiffusion,
    initial: State,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    *,
    objective: Literal["residual", "energy"] = "residual",
) -> Minimisation:
    """Minimise an objective of `T` with an optax optimizer: `num_steps` steps in one compiled
    `lax.scan` (one dispatch, not one per step).

    `"residual"` is the least-squares loss `mean(residual^2)`, whose Hessian `A^T A` has the
    squared condition number of `A`; `"energy"` is `problem.energy`, whose Hessian `-A / size`
    has the condition number of `A` itself. Optimizers that keep the value and gradient in
    their state (`optax.lbfgs`) reuse them; others evaluate once per step. The program is
    compiled once per shapes, optimizer object, `num_steps` and objective, and timed apart
    from the run.

    **Arguments:**

    - `problem`: a `SteadyDiffusion`.
    - `initial`: the initial `T`, shape `(1, *spatial)`.
    - `optimizer`: an `optax.GradientTransformation` (build it once to reuse the program).
    - `num_steps`: an int `>= 1`.
    - `objective`: `"residual"` or `"energy"`.

    **Returns:** a `Minimisation`.
    """
    if not isinstance(problem, SteadyDiffusion):
        raise TypeError(f"`problem` must be a `SteadyDiffusion`, got {type(problem).__name__}.")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            "`optimizer` must be an `optax.GradientTransformation`, got "
            f"{type(optimizer).__name__}."
        )
    check_int("num_steps", num_steps)
    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {OBJECTIVES}, got {objective!r}.")
    initial = jnp.asarray(initial)
    problem.grid.check_state(initial, "initial")
    if initial.shape[0] != 1:
        raise ValueError(f"`initial` must have 1 channel (T), got shape {initial.shape}.")
    args = (problem, initial)
    leaves, treedef = jax.tree_util.tree_flatten(args)
    shapes = tuple((x.shape, x.dtype) for x in leaves)
    signature = (treedef, shapes, optimizer, num_steps, objective)
    compiled, compile_seconds = _COMPILED.get(signature), 0.0
    if compiled is None:
        start = time.perf_counter()
        compiled = _run.lower(*args, optimizer, num_steps, objective).compile()
        compile_seconds = time.perf_counter() - start
        _COMPILED[signature] = compiled
    start = time.perf_counter()
    solution, initial_loss, values, losses, evaluations = jax.block_until_ready(compiled(*args))
    run_seconds = time.perf_counter() - start
    return Minimisation(
        grid=problem.grid,
        solution=solution,
        initial_loss=float(initial_loss),
        loss=losses,
        objective=values,
        evaluations=evaluations,
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
    )


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _run(problem, initial, optimizer, num_steps, objective):
    fn = problem.loss if objective == "residual" else problem.energy
    optimizer = optax.with_extra_args_support(optimizer)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and counts
        state = optimizer.init(initial)
    stored = bool(optax.tree.get_all_with_path(state, "value"))
    value_and_grad = optax.value_and_grad_from_state(fn) if stored else None
    counted = bool(optax.tree.get_all_with_path(state, "num_linesearch_steps"))

    def step(carry, _):
        t, state = carry
        if stored:
            value, grad = value_and_grad(t, state=state)
        else:
            value, grad = jax.value_and_grad(fn)(t)
        with jax.numpy_dtype_promotion("standard"):
            updates, state = optimizer.update(grad, state, t, value=value, grad=grad, value_fn=fn)
        t = optax.apply_updates(t, updates)
        evaluations = (
            jnp.asarray(optax.tree.get(state, "num_linesearch_steps"), jnp.int32)
            if counted
            else jnp.asarray(1, jnp.int32)
        )
        return (t, state), (fn(t), problem.loss(t), evaluations)

    (solution, _), (values, losses, evaluations) = lax.scan(
        step, (initial, state), None, length=num_steps
    )
    return solution, problem.loss(initial), values, losses, evaluations


def coarse_to_fine(
    problem: SteadyDiffusion,
    optimizer: optax.GradientTransformation,
    num_steps: int | Sequence[int],
    *,
    coarsest: int,
    objective: Literal["residual", "energy"] = "residual",
) -> tuple[Minimisation, ...]:
    """Solve on the coarsest grid, interpolate bilinearly to the next (twice the points per
    axis), solve again, up to the grid of `problem`; every level's `k` and `s` are
    average-pooled from `problem`'s (the finest) fields.

    **Arguments:**

    - `problem`: the problem on the finest grid (a `"cell"` grid with equal points per axis).
    - `optimizer`: an optax optimizer, used on every level (a fresh state per level).
    - `num_steps`: steps per level, one int for all or one per level (coarsest first).
    - `coarsest`: points per axis of the first level; the finest grid's must be `coarsest`
        times a power of 2.
    - `objective`: `"residual"` or `"energy"` (see `minimise`).

    **Returns:** one `Minimisation` per level, coarsest first; the last one's `solution` is
    the result on the finest grid.
    """
    if not isinstance(problem, SteadyDiffusion):
        raise TypeError(f"`problem` must be a `SteadyDiffusion`, got {type(problem).__name__}.")
    _check_cell(problem.grid, "problem.grid")
    finest = problem.grid.shape[0]
    check_int("coarsest", coarsest)
    ratio = finest // coarsest
    if (
        len(set(problem.grid.shape)) != 1
        or finest % coarsest
        or ratio & (ratio - 1)  # not a power of 2
    ):
        raise ValueError(
            "`coarsest` must divide the finest grid's points per axis by a power of 2 (and the "
            f"axes must be equal), got coarsest={coarsest} for grid shape {problem.grid.shape}."
        )
    levels = ratio.bit_length()
    steps = [num_steps] * levels if isinstance(num_steps, int) else list(num_steps)
    if len(steps) != levels:
        raise ValueError(
            f"`num_steps` must be one int or one per level ({levels} levels from {coarsest} to "
            f"{finest}), got {len(steps)}: {num_steps!r}."
        )
    dtype = jnp.result_type(float)
    results: list[Minimisation] = []
    t = coarse_grid = None
    for level, n in enumerate(steps):
        factor = ratio >> level
        coarse = problem.coarsened(factor) if factor > 1 else problem
        t = jnp.zeros((1, *coarse.grid.shape), dtype) if t is None else refine(t, coarse_grid)
        result = minimise(coarse, t, optimizer, n, objective=objective)
        results.append(result)
        t, coarse_grid = result.solution, result.grid
    return tuple(results)


def level_table(levels: Sequence[Minimisation]) -> str:
    """The per-level table of `coarse_to_fine`: grid, steps, objective evaluations, loss
    before (after interpolation) and after, compile and run seconds, and the totals."""
    lines = [
        f"{'grid':>11} {'steps':>6} {'evals':>6} {'loss before':>12} {'loss after':>11} "
        f"{'compile s':>10} {'run s':>8}"
    ]
    for r in levels:
        size = "x".join(map(str, r.grid.shape))
        lines.append(
            f"{size:>11} {r.loss.shape[0]:>6} {int(np.sum(r.evaluations)):>6} "
            f"{r.initial_loss:>12.3e} {r.final_loss:>11.3e} {r.compile_seconds:>10.2f} "
            f"{r.run_seconds:>8.2f}"
        )
    compile_total = sum(r.compile_seconds for r in levels)
    run_total = sum(r.run_seconds for r in levels)
    lines.append(f"{'total':>11} {'':>6} {'':>6} {'':>12} {'':>11} {compile_total:>10.2f} "
                 f"{run_total:>8.2f}")  # fmt: skip
    return "\n".join(lines)
