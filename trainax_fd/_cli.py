"""`python -m trainax_fd`: generate reference trajectories of a few PDEs, learn the upwind
stencil from the advection data, and draw both."""

import argparse
import time
from pathlib import Path

import jax
import numpy as np

from . import reference as ref
from .stencil import Dirichlet, Grid, Neumann

# Setup in NumPy where it can be: eagerly, each small jax.numpy operation compiles a program of
# its own.


def _mesh(grid: Grid) -> list[np.ndarray]:
    return np.meshgrid(*(grid.coordinates(a) for a in range(grid.ndim)), indexing="ij")


def _problems(samples: int, key):
    """`(name, grid, stepper, steps, initial states (samples, channels, *spatial))` per PDE."""
    keys = jax.random.split(key, 2)
    line = Grid((40,), 1.0, "vertex")
    ring = Grid((128,), 1.0, "periodic")
    plane = Grid((64, 64), 1.0, "periodic")
    shifts = np.linspace(0.0, 0.5, samples)[:, None, None]
    waves = np.sin(2 * np.pi * (_mesh(ring)[0][None, None] + shifts)).astype(np.float32) + 0.2
    return [
        ("advection (upwind)", line, ref.Advection(line, Dirichlet(), -0.1, 0.1), 100,
         np.repeat(np.asarray(ref.sine(line, 0.5))[None], samples, 0)),
        ("diffusion (explicit)", ring, ref.Diffusion(ring, "periodic", 0.02, 0.0012), 500,
         ref.random_fourier(ring, key=jax.random.split(keys[0], samples), max_wavenumber=4)),
        ("burgers (upwind)", ring, ref.Burgers(ring, "periodic", 0.003, 0.003), 200, waves),
        ("heat 2D (Fourier)", plane, ref.FourierHeat(plane, 0.001, 0.5), 20,
         ref.random_soft_rectangles(plane, key=jax.random.split(keys[1], samples), count=4)),
    ]  # fmt: skip


def _poisson(size: int):
    """Steady `div(k grad u) + 1 = 0` on the unit square, insulated top and bottom."""
    grid = Grid((size, size), 1.0, "cell")
    x, y = _mesh(grid)
    k = (1.0 + 0.9 * np.sin(2 * np.pi * x) * np.sin(2 * np.pi * y))[None].astype(np.float32)
    bc = (Dirichlet(0.0), Neumann())
    return grid, ref.PoissonRelaxation(grid, bc, k, 1.0, omega=1.9, method="red_black")


def _learn_upwind(grid: Grid, stepper, steps: int, key):
    """Fit a 3-point `arch.StencilConv` to upwind-advection trajectories from 16 white-noise
    initial states (every wavenumber present, so the stencil is well determined), 40 steps:
    full-batch rollout-2 training, Adam(1e-2).

    **Returns:** `(TrainResult, data (16, 41, 1, N), learned weights (3,), upwind weights
    (3,))`, weights on the offsets `(-1, 0, 1)`.
    """
    import optax

    from . import arch, configurations, trainers

    data_key, net_key, train_key = jax.random.split(key, 3)
    noise = jax.random.normal(data_key, (16, 1, *grid.shape))
    data = ref.trajectories(stepper, noise, 40)
    # The stencil the reference stepper applies: its response to a unit impulse, read backwards
    # (`u'_j = sum_k w_k u_(j+k)`, so an impulse at `i` gives `u'_(i-k) = w_k`).
    mid = grid.shape[0] // 2
    impulse = np.zeros((1, *grid.shape), np.float32)
    impulse[0, mid] = 1.0
    response = np.asarray(stepper(jax.device_put(impulse)), np.float64)[0]
    upwind = response[mid + 1 : mid - 2 : -1]
    net = arch.StencilConv(1, 1, 1, 3, boundary=Dirichlet(), grid=grid, key=net_key)
    windows = data.shape[0] * (data.shape[1] - 2)
    trainer = trainers.Trainer(
        data, configurations.Supervised(2), optax.adam(1e-2), num_steps=steps,
        batch_size=windows,
    )  # fmt: skip
    result = trainer(net, key=train_key, progress=False)
    learned = np.asarray(result.stepper.stencil().weights, np.float64)
    return result, data, learned, upwind


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="trainax-fd",
        description="Generate reference trajectories with trainax_fd's stencil steppers, print "
        "a summary and write a figure.",
    )
    parser.add_argument("--samples", type=int, default=8, help="trajectories per PDE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1200, help="Adam steps of the training")
    parser.add_argument("--out", type=Path, default=Path("trainax_fd_output"))
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples must be >= 1, got {args.samples}")
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")

    print(f"trainax_fd on {jax.devices()[0].platform}: {args.samples} trajectories per PDE")
    header = f"{'problem':<22}{'grid':<10}{'dt':>8}{'steps':>7}  {'data (S, T, C, *N)':<22}"
    print(header + f"{'min':>8}{'max':>8}{'seconds':>9}")
    results = []
    problems_key, learn_key = jax.random.split(jax.random.key(args.seed), 2)
    for name, grid, stepper, steps, u0 in _problems(args.samples, problems_key):
        start = time.perf_counter()
        data = ref.trajectories(stepper, u0, steps)
        data.block_until_ready()
        seconds = time.perf_counter() - start
        data = np.asarray(data)  # summaries and figures in NumPy: no small programs to compile
        size, dt = "x".join(map(str, grid.shape)), float(stepper.dt)
        print(
            f"{name:<22}{size:<10}{dt:>8.3g}{steps:>7}  {tuple(data.shape)!s:<22}"
            f"{float(data.min()):>8.3f}{float(data.max()):>8.3f}{seconds:>9.2f}"
        )
        results.append((name, grid, stepper, data))

    grid, poisson = _poisson(32)
    u = jax.device_put(np.zeros((1, *grid.shape), np.float32))
    before = np.abs(np.asarray(poisson.residual(u))).max()
    start = time.perf_counter()
    u = np.asarray(ref.rollout(poisson, 300)(u))[-1]
    after = np.abs(np.asarray(poisson.residual(u))).max()
    print(
        f"poisson 2D (SOR red-black, omega 1.9) {grid.shape}: max residual {before:.2e} -> "
        f"{after:.2e} in 300 sweeps ({time.perf_counter() - start:.2f} s)"
    )
    path = _figure(results, grid, u, args.out)
    print(f"figure written to {path}")

    _, line, advection, _ = results[0]
    start = time.perf_counter()
    trained, data, learned, upwind = _learn_upwind(line, advection, args.steps, learn_key)
    seconds = time.perf_counter() - start
    history = trained.loss_history
    print(
        f"learned the upwind stencil: a 3-point StencilConv fitted to advection data "
        f"{tuple(data.shape)} (white-noise initial states), rollout-2 training, {args.steps} Adam "
        f"steps in {seconds:.2f} s (compilation included), loss {float(history[0]):.2e} -> "
        f"{float(history[-1]):.2e}"
    )
    print("  offsets          -1          0          1")
    print("  learned " + "".join(f"{w:11.6f}" for w in learned))
    print("  upwind  " + "".join(f"{w:11.6f}" for w in upwind))
    print(f"  max |learned - upwind| = {abs(learned - upwind).max():.2e}")
    path = _training_figure(trained, learned, upwind, line, float(advection.dt), data, args.out)
    print(f"figure written to {path}")
    return 0


def _training_figure(trained, learned, upwind, grid, dt, data, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import loss_history, spacetime

    data = np.asarray(data)
    rollout = ref.rollout(trained.stepper, data.shape[1] - 1, include_init=True)(data[0, 0])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    loss_history(trained, ax=axes[0], labels=["StencilConv, rollout 2"])
    axes[0].set_title(
        "learned " + ", ".join(f"{w:.4f}" for w in learned)
        + "\nupwind " + ", ".join(f"{w:.4f}" for w in upwind), fontsize=9,
    )  # fmt: skip
    reference = spacetime(data[0], grid, dt, ax=axes[1], title="reference: upwind advection")
    fig.colorbar(reference, ax=axes[1])
    error = np.asarray(rollout) - data[0]
    fig.colorbar(
        spacetime(error, grid, dt, ax=axes[2], title="learned rollout - reference"), ax=axes[2]
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "learned_upwind.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _figure(results, poisson_grid, poisson_u, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import snapshot, spacetime

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    for ax, (name, grid, stepper, data) in zip(axes[0], results[:3]):
        fig.colorbar(spacetime(data[0], grid, float(stepper.dt), ax=ax, title=name), ax=ax)
    name, grid, stepper, data = results[3]
    dt = float(stepper.dt)
    steps = data.shape[1] - 1
    fig.colorbar(snapshot(data[0, 0], grid, ax=axes[1, 0], title=f"{name}, t=0"), ax=axes[1, 0])
    end = snapshot(data[0, -1], grid, ax=axes[1, 1], title=f"{name}, t={steps * dt:g}")
    fig.colorbar(end, ax=axes[1, 1])
    image = snapshot(poisson_u, poisson_grid, ax=axes[1, 2], title="poisson: div(k grad u) = -1")
    fig.colorbar(image, ax=axes[1, 2])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "reference_trajectories.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
