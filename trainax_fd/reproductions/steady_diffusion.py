"""`python -m trainax_fd.reproductions.steady_diffusion`: steady diffusion solved as an
optimisation (L-BFGS and Adam on the residual, L-BFGS on the energy), coarse to fine, by
multigrid, and a relaxation learned from Jacobi sweeps; prints the tables and writes two figures.

The defaults are small; `--full` takes the original study's sizes (128² for one grid,
16² to 1024² coarse to fine, 450 steps each)."""

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..stencil import Grid
from ._cli import fill_sizes
from ._relaxation import (
    LearnedRelaxation,
    reduction_table,
    reference_relaxations,
    relaxation_sampler,
    residual_history,
)
from ._steady_diffusion import (
    SteadyDiffusion,
    coarse_to_fine,
    condition_number,
    level_table,
    minimise,
)

#: `(small, full)` value of every size option.
PROFILES = {
    "size": (64, 128),
    "steps": (450, 450),
    "coarsest": (16, 16),
    "finest": (64, 1024),
    "level_steps": (450, 450),
    "relax_size": (32, 64),
    "train_steps": (400, 2000),
    "eval_steps": (60, 200),
}


def single_grid(size: int, steps: int, adam_lr: float, lbfgs) -> dict:
    """L-BFGS and Adam on the least-squares loss, L-BFGS on the energy, from `T = 0` on
    `size`² with `k = s = 1`. **Returns:** `{label: Minimisation}`."""
    grid = Grid((size, size))
    problem = SteadyDiffusion(grid, 1.0, 1.0)
    zeros = jnp.zeros((1, *grid.shape))
    return {
        "L-BFGS, least squares": minimise(problem, zeros, lbfgs, steps),
        f"Adam({adam_lr:g}), least squares": minimise(problem, zeros, optax.adam(adam_lr), steps),
        "L-BFGS, energy": minimise(problem, zeros, lbfgs, steps, objective="energy"),
    }


def run_table(runs: dict) -> str:
    """One row per `Minimisation`: steps, evaluations, final loss, compile and run seconds."""
    lines = [f"{'method':<30} {'steps':>6} {'evals':>6} {'final loss':>11} {'compile s':>10} "
             f"{'run s':>7}"]  # fmt: skip
    for name, r in runs.items():
        lines.append(
            f"{name:<30} {r.loss.shape[0]:>6} {int(np.sum(r.evaluations)):>6} "
            f"{r.final_loss:>11.3e} {r.compile_seconds:>10.2f} {r.run_seconds:>7.2f}"
        )
    return "\n".join(lines)


def by_multigrid(problem: SteadyDiffusion) -> str:
    """Solve `problem` by V(2,2)-cycles from `T = 0`: in float32 until the cycles stall at the
    rounding floor (compiled call timed apart), and in float64 to its floor.

    **Returns:** two lines of text.
    """
    from ..solvers import solve

    args = (problem.grid, problem.bc, problem.conductivity, problem.source)
    seconds = []
    for _ in range(2):  # the first call compiles
        start = time.perf_counter()
        solution, report = solve(*args, tol=1e-6)  # below float32's floor: runs until it stalls
        solution.block_until_ready()
        seconds.append(time.perf_counter() - start)
    n = problem.grid.shape[0]
    lines = [
        f"multigrid {n}x{n}, float32: loss {float(problem.loss(solution)):.3e} after "
        f"{int(report.iterations)} V(2,2)-cycles (relative residual {float(report.residual):.1e}, "
        f"{float(report.convergence_factor):.3f} per cycle) in {seconds[1]:.3f} s "
        f"({seconds[0]:.2f} s with compilation)"
    ]
    with jax.enable_x64(True):
        k, s = (jnp.asarray(np.asarray(a), jnp.float64) for a in args[2:])
        exact, report64 = solve(*args[:2], k, s)  # to float64's floor
        loss64 = float(SteadyDiffusion(problem.grid, k, s).loss(exact))
        factor64 = float(report64.convergence_factor)
    lines.append(
        f"multigrid {n}x{n}, float64: loss {loss64:.1e} after {int(report64.iterations)} "
        f"V(2,2)-cycles ({factor64:.3f} per cycle)"
    )
    return "\n".join(lines)


def learned_relaxation(
    size: int, train_steps: int, eval_steps: int, *, key, sweeps_per_step: int = 4,
    omega: float = 0.8, samples: int = 8,
):  # fmt: skip
    """Train `LearnedRelaxation` on Jacobi windows (`sweeps_per_step` sweeps a step, rollout
    2, Adam(1e-2), batches of 16) on a `size`² grid of unit spacing, then iterate it and the
    reference relaxations from `T = 0` for `samples` fresh uniform sources.

    **Returns:** `(TrainResult, train seconds, {name: residuals (eval_steps + 1, samples)})`.
    """
    from .. import configurations, trainers

    grid = Grid((size, size), extent=float(size))  # unit spacing: T and s on one scale
    train_key, source_key = jax.random.split(key)
    sampler = relaxation_sampler(
        grid, sweeps_per_step=sweeps_per_step, rollout=2, max_start=4 * size, batch_size=16,
        omega=omega,
    )  # fmt: skip
    model = LearnedRelaxation(grid, 2 * sweeps_per_step - 1)
    trainer = trainers.Trainer(
        sampler, configurations.Supervised(2), optax.adam(1e-2), num_steps=train_steps
    )
    start = time.perf_counter()
    result = trainer(model, key=train_key, progress=False)
    seconds = time.perf_counter() - start
    steps = reference_relaxations(grid, omega=omega, sweeps_per_step=sweeps_per_step)
    learned = result.model
    steps["learned"] = lambda t, s: learned(jnp.concatenate([t, s]))[:1]
    sources = jax.random.uniform(source_key, (samples, 1, *grid.shape), minval=-1.0)
    histories = {name: residual_history(f, sources, grid, eval_steps) for name, f in steps.items()}
    return result, seconds, histories


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="trainax-fd-steady-diffusion",
        description="Steady diffusion div(k grad T) + s = 0 on the unit square, T = 0 on the "
        "boundary, solved as an optimisation (one grid; coarse to fine), by multigrid and by "
        "a relaxation learned from Jacobi sweeps. Small sizes by default; --full for the "
        "original study's.",
    )
    parser.add_argument("--full", action="store_true", help="the original study's sizes")
    parser.add_argument("--size", type=int, help="points per axis of the single grid")
    parser.add_argument("--steps", type=int, help="optimizer steps on the single grid")
    parser.add_argument("--adam-lr", type=float, default=1e-5, help="Adam's learning rate")
    parser.add_argument("--coarsest", type=int, help="points per axis of the coarsest level")
    parser.add_argument("--finest", type=int, help="points per axis of the finest level")
    parser.add_argument("--level-steps", type=int, help="L-BFGS steps per level")
    parser.add_argument("--relax-size", type=int, help="points per axis, learned relaxation")
    parser.add_argument("--train-steps", type=int, help="Adam steps of the learned relaxation")
    parser.add_argument("--eval-steps", type=int, help="relaxation steps compared")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("trainax_fd_output"))
    args = parser.parse_args(argv)
    fill_sizes(parser, args, PROFILES)
    ratio = args.finest // args.coarsest
    if args.finest % args.coarsest or ratio & (ratio - 1):
        parser.error(
            f"--finest must be --coarsest times a power of 2, got {args.finest} and {args.coarsest}"
        )
    if args.adam_lr <= 0:
        parser.error(f"--adam-lr must be > 0, got {args.adam_lr}")

    platform = jax.devices()[0].platform
    n = args.size
    kappa = condition_number(Grid((n, n)))
    print(
        f"steady diffusion div(k grad T) + s = 0 on the unit square, T = 0 on the boundary, "
        f"k = s = 1, cell grids ({platform})"
    )
    print(
        f"one grid, {n}x{n}, from T = 0: condition number of A {kappa:.3g}, of the least "
        f"squares' A^T A {kappa**2:.3g}"
    )
    lbfgs = optax.lbfgs()  # one object: a level of the size and steps above reuses its program
    runs = single_grid(n, args.steps, args.adam_lr, lbfgs)
    print(run_table(runs))

    print(
        f"coarse to fine, L-BFGS on the least-squares loss, {args.level_steps} steps a level, "
        f"{args.coarsest}x{args.coarsest} to {args.finest}x{args.finest}:"
    )
    finest = SteadyDiffusion(Grid((args.finest, args.finest)), 1.0, 1.0)
    levels = coarse_to_fine(finest, lbfgs, args.level_steps, coarsest=args.coarsest)
    print(level_table(levels))
    print(by_multigrid(finest))

    m = args.relax_size
    result, seconds, histories = learned_relaxation(
        m, args.train_steps, args.eval_steps, key=jax.random.key(args.seed)
    )
    history = np.asarray(result.loss_history)
    print(
        f"learned relaxation on {m}x{m} (unit spacing): T <- T + P(residual), P a 7x7 "
        f"StencilConv trained on 4 Jacobi sweeps (omega 0.8) a step, {args.train_steps} Adam "
        f"steps in {seconds:.2f} s (compilation included), loss {history[0]:.2e} -> "
        f"{history[-1]:.2e}"
    )
    print(f"residual reduction over {args.eval_steps} steps from T = 0, 8 uniform sources:")
    print(reduction_table(histories))
    for path in _figures(runs, levels, histories, args.out):
        print(f"figure written to {path}")
    return 0


def _figures(runs, levels, histories, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import loss_history
    from ._figures import plot_levels, plot_residuals

    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    loss_history({k: r.loss for k, r in runs.items()}, ax=axes[0], ylabel="mean(residual²)")
    axes[0].set_yscale("log")
    axes[0].set_title("one grid, from T = 0")
    plot_levels(levels, ax=axes[1])
    axes[1].set_title("coarse to fine, L-BFGS, least squares")
    first = out / "steady_diffusion_optimisation.png"
    fig.savefig(first, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
    plot_residuals(histories, ax=ax)
    ax.set_title("relaxations from T = 0")
    second = out / "learned_relaxation.png"
    fig.savefig(second, dpi=110)
    plt.close(fig)
    return [first, second]


if __name__ == "__main__":
    sys.exit(main())
