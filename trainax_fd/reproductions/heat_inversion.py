"""`python -m trainax_fd.reproductions.heat_inversion`: a U-Net learns to recover heat sources
from their diffused observations, trained with scale-invariant physics (SIP) updates and with
plain gradient descent through the physics (Adam), seeds as vmapped sweeps (Holl, Koltun &
Thuerey, "Scale-invariant learning by physics inversion", NeurIPS 2022). Prints the errors
and writes two figures.

The defaults are small (a 32² grid, batches of 16, 30 steps, 2 seeds); `--full` takes the
original's sizes (64², batches of 128, 500 steps, 3 seeds)."""

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

from ._cli import fill_sizes

#: `(small, full)` value of every size option.
PROFILES = {"size": (32, 64), "batch": (16, 128), "steps": (30, 500), "seeds": (2, 3)}

#: The original's numbers (one seed, 500 steps, PhiFlow with PyTorch) and the issue's targets.
ORIGINAL = {"first": 192.0, "sip": 9.1, "adam": 19.6, "reach": 46}
TARGETS = {"sip": 11.0, "ratio": 1.8, "reach": 60}


def setup(size: int, batch: int):
    """The problem: `(physics, sampler)` on a `size`² periodic grid of unit cells, diffusion
    `exp(-4 pi^2 |k|^2 8)`, float64 (needs JAX's 64-bit mode)."""
    from ..inverse import heat_inversion_sampler
    from ..reference import FourierHeat
    from ..stencil import Grid

    grid = Grid((size, size), extent=float(size), placement="periodic")
    physics = FourierHeat(grid, 8.0, 1.0)
    return physics, heat_inversion_sampler(physics, batch_size=batch)


def train(
    method: str, physics, sampler, *, steps: int, seeds: int, key, padding: str = "zeros",
    optimizer=None, progress: bool = False,
):  # fmt: skip
    """`seeds` trainings of `SIPUNet(2, 1, 1)` (float32) as one vmapped sweep: `"sip"` on the
    `SIPLoss`, `"adam"` on the `PhysicsLoss`, Adam(1e-3), the errors recorded every step.
    Member `i` of two calls with the same `key` starts from the same network and sees the same
    batches.

    **Returns:** `(SweepResult, seconds)`.
    """
    import jax.numpy as jnp
    import optax

    from ..arch import SIPUNet
    from ..inverse import InversionErrors, PhysicsLoss, SIPLoss
    from ..sweeps import sweep
    from ..trainers import Trainer

    objectives = {"sip": SIPLoss, "adam": PhysicsLoss}
    if method not in objectives:
        raise ValueError(f"`method` must be 'sip' or 'adam', got {method!r}.")
    optimizer = optax.adam(1e-3) if optimizer is None else optimizer
    trainer = Trainer(
        sampler, objectives[method](physics), optimizer, num_steps=steps,
        callbacks=[InversionErrors(physics)],
    )  # fmt: skip

    def init(k):
        return SIPUNet(2, 1, 1, padding=padding, dtype=jnp.float32, key=k)

    start = time.perf_counter()
    result = sweep(trainer, init=init, num_members=seeds, shuffle="per_member", key=key,
                   progress=progress)  # fmt: skip
    jax.block_until_ready(result.results.loss_history)
    return result, time.perf_counter() - start


def errors(result, name: str = "x_l2") -> np.ndarray:
    """The recorded error `name` of every member and step, `(seeds, steps)` (step `n` of the
    paper is column `n - 1`: the prediction before the `n`-th update)."""
    return np.asarray(result.results.metrics["errors"][name])


def summarise(sip: np.ndarray, adam: np.ndarray) -> dict:
    """Per seed and as medians over seeds, from `x_l2` curves `(seeds, steps)`: the error at
    step 1, SIP's and Adam's final errors, their ratio, and the first step at which SIP is at
    or below Adam's final error (`None` if never).

    **Returns:** a dict of `(seeds,)` arrays and their medians (`"median_*"`).
    """
    sip_final, adam_final = sip[:, -1], adam[:, -1]
    reach = []
    for s, a in zip(sip, adam_final):
        hit = np.flatnonzero(s <= a)
        reach.append(int(hit[0]) + 1 if hit.size else np.nan)
    out = {
        "first": sip[:, 0], "sip": sip_final, "adam": adam_final, "ratio": adam_final / sip_final,
        "reach": np.asarray(reach, float),
    }  # fmt: skip
    out.update({f"median_{k}": float(np.median(v)) for k, v in list(out.items())})
    return out


def report(summary: dict, steps: int) -> str:
    """A table of the summary beside the original's numbers and the targets."""
    n = len(summary["sip"])
    rows = [
        ("x_l2 at step 1", "first", ORIGINAL["first"], "", "{:.1f}"),
        (f"SIP x_l2 at step {steps}", "sip", ORIGINAL["sip"], f"<= {TARGETS['sip']:g}", "{:.2f}"),
        (f"Adam x_l2 at step {steps}", "adam", ORIGINAL["adam"], "", "{:.2f}"),
        ("Adam / SIP", "ratio", ORIGINAL["adam"] / ORIGINAL["sip"],
         f">= {TARGETS['ratio']:g}", "{:.2f}"),
        ("SIP at Adam's final by step", "reach", ORIGINAL["reach"],
         f"<= {TARGETS['reach']}", "{:.0f}"),
    ]  # fmt: skip
    head = f"{'':<30}" + "".join(f"{'seed ' + str(i):>9}" for i in range(n))
    lines = [head + f"{'median':>9}{'original':>10}{'target':>9}"]
    for label, k, original, target, fmt in rows:
        cells = "".join(f"{fmt.format(v) if np.isfinite(v) else 'never':>9}" for v in summary[k])
        median = summary[f"median_{k}"]
        median = fmt.format(median) if np.isfinite(median) else "never"
        lines.append(f"{label:<30}{cells}{median:>9}{fmt.format(original):>10}{target:>9}")
    return "\n".join(lines)


def plot_curves(curves: dict, *, ax=None, name: str = "x_l2"):
    """Median over seeds and the band from the lowest to the highest seed, per method, on a
    log scale. `curves`: `{label: (seeds, steps)}`. **Returns:** the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.figure(figsize=(6, 4)).gca()
    for label, c in curves.items():
        step = np.arange(1, c.shape[1] + 1)
        (line,) = ax.plot(step, np.median(c, axis=0), lw=2, label=f"{label} ({c.shape[0]} seeds)")
        ax.fill_between(step, c.min(axis=0), c.max(axis=0), color=line.get_color(), alpha=0.25)
    ax.set(xlabel="training step", ylabel=name, yscale="log")
    ax.legend()
    return ax


def plot_reconstructions(batch, predictions: dict, *, examples: int = 2, fig=None):
    """Ground truth, observation and every method's prediction for the first `examples`
    examples of `batch = (y, x)`; `predictions`: `{label: (batch, 1, N, N)}`.
    **Returns:** the figure."""
    import matplotlib.pyplot as plt

    y, x = (np.asarray(a) for a in batch)
    columns = [("ground truth", x), ("observation", y)]
    columns += [(label, np.asarray(p)) for label, p in predictions.items()]
    if fig is None:
        fig = plt.figure(figsize=(3 * len(columns), 2.8 * examples), layout="constrained")
    axes = fig.subplots(examples, len(columns), squeeze=False)
    for row in range(examples):
        vmin, vmax = float(x[row, 0].min()), float(x[row, 0].max())
        for col, (label, data) in enumerate(columns):
            ax = axes[row, col]
            image = ax.imshow(data[row, 0].T, origin="lower", cmap="inferno", vmin=vmin,
                              vmax=vmax)  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label)
        fig.colorbar(image, ax=axes[row, -1])
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="trainax-fd-heat-inversion",
        description="A U-Net learns to invert 2D heat diffusion, trained with SIP updates and "
        "with Adam through the physics; seeds as vmapped sweeps. Small sizes by default; "
        "--full for the original's (64², batches of 128, 500 steps, 3 seeds).",
    )
    parser.add_argument("--full", action="store_true", help="the original's sizes")
    parser.add_argument("--size", type=int, help="cells per axis (divisible by 8)")
    parser.add_argument("--batch", type=int, help="examples per step")
    parser.add_argument("--steps", type=int, help="optimizer steps")
    parser.add_argument("--seeds", type=int, help="seeds (sweep members) per method")
    parser.add_argument("--padding", choices=("zeros", "periodic"), default="zeros",
                        help="the U-Net's padding (zeros: the original's)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="root seed")
    parser.add_argument("--out", type=Path, default=Path("heat_inversion_output"))
    args = parser.parse_args(argv)
    fill_sizes(parser, args, PROFILES)
    if args.size % 8:
        parser.error(f"--size must be divisible by 8 (the U-Net's 4 levels), got {args.size}")

    with jax.enable_x64(True):  # float64 physics, as the original
        physics, sampler = setup(args.size, args.batch)
        key = jax.random.key(args.seed)
        print(
            f"heat inversion on {jax.devices()[0].platform}: {args.size}x{args.size} cells, "
            f"batches of {args.batch}, {args.steps} steps, {args.seeds} seeds per method, U-Net "
            f"padding {args.padding!r}"
        )
        results = {}
        for method in ("sip", "adam"):
            results[method], seconds = train(
                method, physics, sampler, steps=args.steps, seeds=args.seeds, key=key,
                padding=args.padding,
            )  # fmt: skip
            print(f"  {method}: {args.seeds} seeds x {args.steps} steps in {seconds:.1f} s "
                  "(compilation included)")  # fmt: skip
        sip, adam = errors(results["sip"]), errors(results["adam"])
        summary = summarise(sip, adam)
        print(report(summary, args.steps))
        mae = {m: float(np.median(errors(r, "x_mae")[:, -1])) for m, r in results.items()}
        print(
            f"per-cell MAE at step {args.steps}, median: SIP {mae['sip']:.4f}, "
            f"Adam {mae['adam']:.4f}"
        )

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..inverse import reconstruct

        args.out.mkdir(parents=True, exist_ok=True)
        ax = plot_curves({"SIP": sip, "Adam": adam})
        ax.set_title(f"heat inversion, {args.size}², batch {args.batch}")
        path = args.out / "heat_inversion_curves.png"
        ax.figure.savefig(path, dpi=110)
        plt.close(ax.figure)
        print(f"figure written to {path}")
        batch = sampler.draw(jax.random.fold_in(key, 10**6))  # unseen data
        predictions = {
            label: reconstruct(results[m].member(0).model, batch)
            for label, m in (("SIP", "sip"), ("Adam", "adam"))
        }
        fig = plot_reconstructions(batch, predictions)
        path = args.out / "heat_inversion_reconstructions.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        print(f"figure written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
