"""`python -m trainax_fd.reproductions.apebench_baseline`: APEBench's 1D advection baseline
(`1d_diff_adv`, gamma_1 = -4, 160 points, truncated-Fourier initial conditions drawn as APEBench
draws them), a ConvNet trained one step ahead, with rollout 5 and as a diverted chain, seeds as
one vmapped sweep each; prints the geometric-mean nRMSE of every seed and writes the error
curves.

The defaults are small (the one-step training of a narrow net, a few hundred steps); `--full`
takes APEBench's (width 34, depth 10, 3 seeds, 10,000 steps, all three trainings).
"""

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

from . import _apebench as A
from ._apebench import (
    APEBENCH_NRMSE as APEBENCH_NRMSE,
    Data as Data,
    DifficultyLinear as DifficultyLinear,
    apebench_initial as apebench_initial,
    apebench_initial_set as apebench_initial_set,
    configurations as configurations,
    convnet as convnet,
    evaluate_seeds as evaluate_seeds,
    make_data as make_data,
    spread_table as spread_table,
    train_seeds as train_seeds,
    within as within,
)
from ._cli import fill_sizes

#: `(small, full)` value of every size option.
PROFILES = {
    "seeds": (2, 3),
    "steps": (200, 10_000),
    "width": (8, 34),
    "depth": (3, 10),
    "test_steps": (100, 200),
    "trainings": ("one", "one,sup,div"),
}


def study(data: A.Data, trainings, *, key, progress=False, **options) -> dict:
    """Train every configuration of `trainings` (labels of `A.configurations`) as one sweep
    of seeds and evaluate it. **Returns:** `{label: (SweepResult, Evaluation, seconds)}`."""
    configs = A.configurations(data.stepper, options.pop("rollout", 5))
    out = {}
    for label, k in zip(trainings, jax.random.split(key, len(trainings))):
        start = time.perf_counter()
        swept = A.train_seeds(data.train, configs[label], key=k, progress=progress, **options)
        jax.block_until_ready(swept.results.model)
        seconds = time.perf_counter() - start
        out[label] = (swept, A.evaluate_seeds(swept, data.test), seconds)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="trainax-fd-apebench-baseline",
        description="APEBench's 1D advection baseline (difficulty gamma_1 = -4, 160 points): a "
        "ConvNet trained one step ahead, with rollout K and as a diverted chain of K steps, "
        "every training a vmapped sweep of seeds; geometric-mean nRMSE over the first 100 test "
        "steps. Small sizes by default; --full for APEBench's.",
    )
    parser.add_argument("--full", action="store_true", help="APEBench's sizes")
    parser.add_argument("--seeds", type=int, help="seeds per training (one sweep)")
    parser.add_argument("--steps", type=int, help="Adam steps per training")
    parser.add_argument("--width", type=int, help="hidden channels of the ConvNet")
    parser.add_argument("--depth", type=int, help="hidden layers of the ConvNet")
    parser.add_argument("--test-steps", type=int, help="rollout steps evaluated (<= 200)")
    parser.add_argument("--rollout", type=int, default=5, help="K of rollout/diverted training")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument(
        "--init", choices=("lecun", "uniform"), default="lecun",
        help="initial weights: flax's (APEBench's notebooks) or Equinox's",
    )  # fmt: skip
    parser.add_argument("--trainings", help="comma-separated subset of one, sup, div")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("trainax_fd_output"))
    args = parser.parse_args(argv)
    fill_sizes(parser, args, PROFILES)
    if args.test_steps > 200:
        parser.error(f"--test-steps must be at most 200, got {args.test_steps}")
    if args.rollout < 1 or args.learning_rate <= 0:
        parser.error("--rollout must be >= 1 and --learning-rate > 0")
    names = {"one": "one", "sup": f"sup-{args.rollout:02d}", "div": f"div-{args.rollout:02d}"}
    chosen = [t.strip() for t in args.trainings.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in names]
    if unknown or not chosen:
        parser.error(f"--trainings must name some of one, sup, div, got {args.trainings!r}")

    start = time.perf_counter()
    data = A.make_data(test_steps=args.test_steps)
    net = A.convnet(jax.random.key(0), width=args.width, depth=args.depth, init=args.init)
    print(
        f"APEBench 1d_diff_adv on {jax.devices()[0].platform}: train {data.train.shape}, test "
        f"{data.test.shape}; ConvNet width {args.width}, depth {args.depth} "
        f"({net.num_parameters} parameters, {args.init} init); Adam({args.learning_rate:g}), "
        f"{args.steps} steps, batch 20, {args.seeds} seeds; data in "
        f"{time.perf_counter() - start:.1f} s"
    )
    results = study(
        data, [names[t] for t in chosen], key=jax.random.key(args.seed), rollout=args.rollout,
        num_seeds=args.seeds, num_steps=args.steps, learning_rate=args.learning_rate,
        width=args.width, depth=args.depth, init=args.init,
    )  # fmt: skip
    evaluations = {label: e for label, (_, e, _) in results.items()}
    print(A.spread_table(evaluations))
    for label, (_, _, seconds) in results.items():
        print(f"{label}: trained in {seconds:.1f} s (compilation included)")
    if "one" in evaluations:
        e = evaluations["one"]
        median = float(np.median(np.asarray(e.gmean[:, e.index("nRMSE")])))
        low, high = A.APEBENCH_NRMSE
        verdict = "within" if A.within(median) else "outside"
        print(
            f"one-step median {median:.4f} against APEBench's {low}-{high}: {verdict} 20 %"
            + ("" if args.full else " (small settings; --full for the comparison)")
        )
    import matplotlib

    matplotlib.use("Agg")
    from ..plot import error_curves

    args.out.mkdir(parents=True, exist_ok=True)
    figure = error_curves(evaluations)
    path = args.out / "apebench_baseline.png"
    figure.savefig(path, dpi=120)
    print(f"wrote {path} ({time.perf_counter() - start:.1f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
