"""Loss landscapes and learning-rate sweeps: trainax_fd against trainax 0.0.2, side by side.

Both parts use the seed-sized upwind problem of `trainax_training.py`: `Advection(Grid(40,
placement="vertex"), "dirichlet", -0.1, 0.1)` rolled out 100 steps from `sine`, data
`(1, 101, 1, 40)`, the 2-weight stepper `Lin` (`w0 * u_i + w1 * u_(i+1)`), full batch
(`batch_size = 101 - n` windows for rollout `n`). The script prints the ratios
trainax / trainax_fd (above 1: trainax_fd is faster).

- `landscape`: the full loss on a 50 x 50 grid over (w0, w1) in [0.3, 0.9] x [0.1, 0.7] for
  rollouts 1 to 4. trainax's way: one `trainax.trainer.SupervisedTrainer` per rollout and a
  nested `eqx.filter_vmap(eqx.filter_vmap(trainer.full_loss))` over the 50 x 50 grid of
  stacked `Lin` steppers (eager, as in trainax's examples; a row `trainax jit` wraps the same
  in `eqx.filter_jit`, for information). trainax_fd's way: one
  `trainax_fd.landscape.loss_landscape([trainer_1, ..., trainer_4], stepper, (Parameter(w0),
  Parameter(w1)))`; and trainax's code unchanged on `trainax_fd.compat.trainax` (row
  `trainax_fd layer`). All must give the same losses within a relative 1e-4.
- `sweep`: 16 learning rates `np.geomspace(1e-3, 1e-1, 16)`, Adam, 3000 full-batch steps,
  rollout 1 (`--sweep-rollouts 1,4` adds rollout 4). trainax: 16 sequential
  `SupervisedTrainer(..., optimizer=optax.adam(lr))(stepper, key)` trainings. trainax_fd: one
  `trainax_fd.sweep(trainer, stepper, key=..., hyperparams={"learning_rate": lrs})` with
  `optax.inject_hyperparams(optax.adam)`; and one single trainax_fd training
  (`Trainer(...)(stepper, key=...)`) for the ratio "sweep of 16 = X x one training". Every
  member's final weights must equal trainax's with the same learning rate within 1e-5.

Timing: `total` is the wall time of a user's first call, compilation included: the trainers
are built and called right after `jax.clear_caches()`, the clock stops after
`block_until_ready` on the result. `compile` is the part of it JAX spent tracing, lowering and
compiling (summed from `jax.monitoring` events). `run` is the same call again with every
compiled program cached. Medians of `--repeats` runs, packages interleaved; trainax's 16
sequential trainings take minutes, so they run `--trainax-sweep-repeats` (1) times, cold only
(every one of them compiles anew anyway: a new `optax.adam(lr)` is a new static function). The
script prints how much CPU other processes used meanwhile.

Install and run from the repository root (trainax is a comparison only, never a dependency):

    pip install -e .            # trainax_fd
    pip install trainax==0.0.2  # optional; without it trainax_fd is timed alone
    python benchmarks/landscape_sweep.py                  # both parts, ~15 min on 2 cores
    python benchmarks/landscape_sweep.py --quick          # 20 x 20 grid, 4 members, 300 steps
    python benchmarks/landscape_sweep.py --parts landscape --repeats 5
    python benchmarks/landscape_sweep.py --parts sweep --sweep-rollouts 1,4
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import trainax_fd as tfd
import trainax_fd.compat.trainax as compat
from trainax_fd.landscape import Parameter, loss_landscape
from trainax_fd.stencil import Grid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trainax_training import (  # the same helpers, and trainax or None
    _COMPILE_SECONDS,
    Lin,
    cpu_mark,
    load_note,
    trainax,
)

LANDSCAPE_TARGET = 10.0  # trainax_fd >= 10x faster, compilation included
LAYER_TARGET = 5.0  # trainax's own way on trainax_fd.compat.trainax >= 5x faster, one cold run
SWEEP_TARGET = 8.0  # one sweep >= 8x faster than trainax's sequential trainings
LANDSCAPE_RTOL = 1e-4
SWEEP_ATOL = 1e-5
# Loss histories are compared step by step (relative 1e-3) while both are above LOSS_FLOOR.
# Below it float32 rounding alone exceeds that: with |u| ~ 1, a residual d ~ sqrt(loss) carries
# a rounding error ~ 6e-8, i.e. a relative 2 * 6e-8 / sqrt(loss) in the loss: 2e-3 at 3e-9
# (measured: 1.2e-3 between LLVM -O1 and -O3 builds at loss 2.7e-9), 4e-4 at 1e-7.
LOSS_FLOOR = 1e-7
CHAOS_FLOOR = 1e-13  # members whose loss fell below: final weights rounding-sensitive
W0_RANGE, W1_RANGE = (0.3, 0.9), (0.1, 0.7)  # covers the upwind optimum (0.59, 0.41)


# The axes' selections: static in the landscape's compiled program, so defined once here
# (a new lambda per call would compile the landscape anew).
def w_centre(stepper):
    return stepper.w[0]


def w_right(stepper):
    return stepper.w[1]


def upwind_data() -> jax.Array:
    grid = Grid(40, placement="vertex")
    ref = tfd.Advection(grid, "dirichlet", -0.1, 0.1)
    return tfd.rollout(ref, 100, include_init=True)(tfd.reference.sine(grid))[None]


# -- timing helpers ----------------------------------------------------------------------------
def timed(fn: Callable, *, cold: bool) -> tuple[float, float, object]:
    """One call; **returns** `(wall s, compile s, output)`, the output ready."""
    if cold:
        jax.clear_caches()
    _COMPILE_SECONDS[0] = 0.0
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(eqx.filter(out, eqx.is_array))
    return time.perf_counter() - start, _COMPILE_SECONDS[0], out


def measure(runs: dict[str, Callable], repeats: dict[str, int], warm: list[str]) -> dict:
    """Cold (`total`, `compile`) and, for the names in `warm`, cached (`run`) medians; the
    packages interleaved, each cold `repeats[name]` times."""
    rows = {
        name: dict(package=name, total=[], compile=[], run=[], warm_compile=[]) for name in runs
    }
    for i in range(max(repeats.values())):
        for name, run in runs.items():
            if i < repeats[name]:
                wall, comp, out = timed(run, cold=True)
                rows[name]["total"].append(wall)
                rows[name]["compile"].append(comp)
                rows[name]["out"] = out
    for name in warm:  # warm-up: every package's programs compiled and kept
        timed(runs[name], cold=False)
    for _ in range(max(repeats[name] for name in warm) if warm else 0):
        for name in warm:
            wall, comp, _ = timed(runs[name], cold=False)
            rows[name]["run"].append(wall)
            rows[name]["warm_compile"].append(comp)
    for row in rows.values():
        for k in ("total", "compile", "run", "warm_compile"):
            row[k] = statistics.median(row[k]) if row[k] else None
        row["repeats"] = repeats[row["package"]]
    return rows


def others_share(mark) -> float | None:
    """How much CPU other processes used since `mark`, as a share of all cores."""
    now = cpu_mark()
    if mark is None or now is None:
        return None
    wall, busy, own = (b - a for a, b in zip(mark, now))
    return max(0.0, busy - own) / (wall * (os.cpu_count() or 1))


def others_note(share: float | None) -> str:
    if share is None:
        return ""
    return f"other processes used {share:.0%} of the {os.cpu_count()} CPUs meanwhile"


# -- (1) loss landscapes -----------------------------------------------------------------------
@eqx.filter_jit
def _trainax_grid_loss_jit(trainer, steppers):
    return eqx.filter_vmap(eqx.filter_vmap(trainer.full_loss))(steppers)


def landscape_runners(data, rollouts, v0, v1, stepper) -> dict[str, Callable]:
    """`{package: () -> losses (rollouts, a, b)}`; each builds its trainers inside."""
    optimizer = optax.adam(1e-2)  # one object: its functions are static in every jit cache

    def ours():
        trainers = [
            tfd.trainers.Trainer(
                data, tfd.configurations.Supervised(n), optimizer, num_steps=1,
                batch_size=data.shape[1] - n,
            )
            for n in rollouts
        ]  # fmt: skip
        axes = (Parameter(w_centre, v0), Parameter(w_right, v1))
        return loss_landscape(trainers, stepper, axes).loss

    def trainers_and_grid(tx):
        trainers = [
            tx.trainer.SupervisedTrainer(
                data, optimizer=optimizer, num_training_steps=1,
                batch_size=data.shape[1] - n, num_rollout_steps=n,
            )
            for n in rollouts
        ]  # fmt: skip
        w = jnp.stack(jnp.meshgrid(jnp.asarray(v0), jnp.asarray(v1), indexing="ij"), axis=-1)
        return trainers, Lin(w.astype(stepper.w.dtype))  # a (a, b) grid of stacked steppers

    def trainax_way(tx):
        trainers, steppers = trainers_and_grid(tx)
        grid_loss = [eqx.filter_vmap(eqx.filter_vmap(t.full_loss))(steppers) for t in trainers]
        return jnp.stack(grid_loss)

    out = {"trainax_fd": ours, "trainax_fd layer": lambda: trainax_way(compat)}
    if trainax is None:
        return out

    def theirs_jit():
        trainers, steppers = trainers_and_grid(trainax)
        return jnp.stack([_trainax_grid_loss_jit(t, steppers) for t in trainers])

    out["trainax"] = lambda: trainax_way(trainax)
    out["trainax jit"] = theirs_jit
    return out


def landscapes(points: int, rollouts: list[int], repeats: int) -> tuple[list[dict], float]:
    data = upwind_data()
    stepper = Lin(jnp.array([0.4, 0.5]))
    v0, v1 = np.linspace(*W0_RANGE, points), np.linspace(*W1_RANGE, points)
    print(
        f"\n== landscape: data {data.shape}, {points} x {points} grid over (w0, w1) in "
        f"{list(W0_RANGE)} x {list(W1_RANGE)}, rollouts {rollouts}, full loss; {load_note()}"
    )
    mark = cpu_mark()
    runs = landscape_runners(data, rollouts, v0, v1, stepper)
    rows = measure(runs, {name: repeats for name in runs}, warm=list(runs))
    share = others_share(mark)
    print(others_note(share))
    ours = np.asarray(rows["trainax_fd"]["out"])
    if ours.shape != (len(rollouts), points, points) or not np.all(np.isfinite(ours)):
        raise AssertionError(f"landscape: trainax_fd gave shape {ours.shape} or non-finite losses")
    for row in rows.values():
        row["case"] = f"{len(rollouts)}x{points}^2"
        row["note"] = ""
    i, j = np.unravel_index(np.argmin(ours[0]), ours[0].shape)
    rows["trainax_fd"]["note"] = f"rollout {rollouts[0]} minimum at ({v0[i]:.3f}, {v1[j]:.3f})"
    for name in [k for k in rows if k.startswith("trainax") and k != "trainax_fd"]:
        theirs = np.asarray(rows[name]["out"])
        rel = np.max(np.abs(ours - theirs) / np.abs(theirs))
        if not rel < LANDSCAPE_RTOL:
            raise AssertionError(f"landscape: trainax_fd and {name} differ by a relative {rel:.1e}")
        rows[name]["note"] = f"max rel.diff to trainax_fd {rel:.0e}"
    if "trainax" in rows:
        for name, row in rows.items():
            if name != "trainax":
                row["ratio_total"] = rows["trainax"]["total"] / row["total"]
                row["ratio_run"] = rows["trainax"]["run"] / row["run"]
    return list(rows.values()), share


# -- (2) learning-rate sweeps ------------------------------------------------------------------
def sweep_runners(data, n: int, steps: int, lrs: np.ndarray, stepper) -> dict[str, Callable]:
    """`{name: () -> (final weights (members, 2), final losses (members,), histories)}`."""
    injected = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2)
    batch = data.shape[1] - n

    def trainer():
        config = tfd.configurations.Supervised(n)
        return tfd.trainers.Trainer(data, config, injected, num_steps=steps, batch_size=batch)

    def ours_sweep():
        hyperparams = {"learning_rate": lrs}
        result = tfd.sweep(
            trainer(), stepper, key=jax.random.key(0), hyperparams=hyperparams, progress=False
        )
        history = result.results.loss_history
        return result.results.stepper.w, history[:, -1], history

    def ours_one():
        result = trainer()(stepper, key=jax.random.key(0), progress=False)
        return result.stepper.w[None], result.loss_history[None, -1], result.loss_history

    out = {"trainax_fd sweep": ours_sweep, "trainax_fd one": ours_one}
    if trainax is None:
        return out

    def theirs():
        weights, histories = [], []
        for lr in lrs:
            t = trainax.trainer.SupervisedTrainer(
                data, optimizer=optax.adam(float(lr)), num_training_steps=steps,
                batch_size=batch, num_rollout_steps=n,
            )  # fmt: skip
            trained, history = t(stepper, jax.random.PRNGKey(0), spawn_tqdm=False)
            weights.append(trained.w)
            histories.append(history)
        histories = jnp.stack(histories)
        return jnp.stack(weights), histories[:, -1], histories

    out[f"trainax {len(lrs)}x"] = theirs
    return out


def sweeps(
    steps: int, members: int, rollouts: list[int], repeats: int, trainax_repeats: int
) -> tuple[list[dict], float]:
    data = upwind_data()
    stepper = Lin(jnp.array([0.4, 0.5]))
    lrs = np.geomspace(1e-3, 1e-1, members)
    print(
        f"\n== sweep: data {data.shape}, {members} learning rates geomspace(1e-3, 1e-1), Adam, "
        f"{steps} full-batch steps, rollouts {rollouts}; {load_note()}"
    )
    mark, out = cpu_mark(), []
    for n in rollouts:
        runs = sweep_runners(data, n, steps, lrs, stepper)
        theirs_name = next((k for k in runs if not k.startswith("trainax_fd")), None)
        counts = {name: repeats for name in runs}
        if theirs_name:
            counts[theirs_name] = trainax_repeats
        warm = [name for name in runs if name.startswith("trainax_fd")]
        rows = measure(runs, counts, warm)
        w_sweep, loss_sweep = (np.asarray(x) for x in rows["trainax_fd sweep"]["out"][:2])
        if w_sweep.shape != (members, 2) or not np.all(np.isfinite(loss_sweep)):
            raise AssertionError(f"sweep n={n}: shape {w_sweep.shape} or non-finite losses")
        best = int(np.argmin(loss_sweep))
        rows["trainax_fd sweep"]["note"] = (
            f"best lr {lrs[best]:.2e}: w = ({w_sweep[best, 0]:.7f}, {w_sweep[best, 1]:.7f}), "
            f"loss {loss_sweep[best]:.1e}"
        )
        w_one = np.asarray(rows["trainax_fd one"]["out"][0])[0]
        rows["trainax_fd one"]["note"] = f"lr 1e-2: w = ({w_one[0]:.7f}, {w_one[1]:.7f})"
        if steps >= 3000 and not np.max(np.abs(w_one - np.array([0.59, 0.41]))) < 1e-5:
            raise AssertionError(f"sweep n={n}: one training reached {w_one}, not (0.59, 0.41)")
        if theirs_name:
            out_theirs = rows[theirs_name]["out"]  # (weights, final losses, histories)
            w_theirs, h_theirs = np.asarray(out_theirs[0]), np.asarray(out_theirs[2])
            h_sweep = np.asarray(rows["trainax_fd sweep"]["out"][2])
            # Until either reaches the float32 noise floor, both follow the same path step by
            # step; after it, rounding noise decides (see below).
            above = np.logical_and.accumulate(np.minimum(h_sweep, h_theirs) > LOSS_FLOOR, axis=1)
            rel = np.abs(h_sweep - h_theirs) / np.abs(h_theirs)
            if not np.all(rel[above] < 1e-3):
                m = int(np.argmax(np.max(np.where(above, rel, 0), axis=1)))
                k = int(np.argmax(np.where(above[m], rel[m], 0)))
                raise AssertionError(
                    f"sweep n={n}: member {m} (lr {lrs[m]:.2e}) loss history differs from "
                    f"trainax's by a relative {rel[m, k]:.1e} at step {k} (losses "
                    f"{h_sweep[m, k]:.3e} and {h_theirs[m, k]:.3e}), above {LOSS_FLOOR:g}"
                )
            # Members whose loss reached float32's floor then wander chaotically: Adam's
            # steps of about `lr` on gradients of rounding noise (also trainax against itself).
            floor = np.min(np.minimum(h_sweep, h_theirs), axis=1) < CHAOS_FLOOR
            diff = np.max(np.abs(w_sweep - w_theirs), axis=1)
            if not np.all(diff[~floor] < SWEEP_ATOL):
                bad = int(np.argmax(np.where(floor, 0, diff)))
                raise AssertionError(
                    f"sweep n={n}: member {bad} (lr {lrs[bad]:.2e}) differs from trainax's "
                    f"training by {diff[bad]:.1e}: {w_sweep[bad]} against {w_theirs[bad]}"
                )
            note = f"; |w - trainax's| <= {np.max(diff[~floor], initial=0):.0e}"
            if np.any(floor):
                note += (
                    f" ({int(np.sum(~floor))} members), {np.max(diff[floor]):.0e} ("
                    f"{int(np.sum(floor))} members at loss < {CHAOS_FLOOR:g}, lr >= "
                    f"{np.min(lrs[floor]):.1e})"
                )
            rows["trainax_fd sweep"]["note"] += note
            rows[theirs_name]["note"] = f"{members} trainings, each compiling anew"
            sweep_row = rows["trainax_fd sweep"]
            sweep_row["ratio_total"] = rows[theirs_name]["total"] / sweep_row["total"]
        one = rows["trainax_fd one"]
        rows["trainax_fd sweep"]["x_one_total"] = rows["trainax_fd sweep"]["total"] / one["total"]
        rows["trainax_fd sweep"]["x_one_run"] = rows["trainax_fd sweep"]["run"] / one["run"]
        for row in rows.values():
            row["case"] = f"rollout {n}"
            out.append(row)
    share = others_share(mark)
    print(others_note(share))
    return out, share


# -- output ------------------------------------------------------------------------------------
def _f(row: dict, key: str, fmt: str = ".2f") -> str:
    return format(row[key], fmt) if row.get(key) is not None else "-"


def print_timings(title: str, rows: list[dict]) -> None:
    header = f"{'package':<17} {'case':<10} {'total s':>8} {'compile s':>9} {'run s':>7} "
    header += f"{'ratio tot':>9} {'ratio run':>9}  check"
    print(f"\n{title}\n{header}\n{'-' * len(header)}")
    for r in rows:
        line = f"{r['package']:<17} {r['case']:<10} {_f(r, 'total'):>8} {_f(r, 'compile'):>9} "
        line += f"{_f(r, 'run'):>7} {_f(r, 'ratio_total'):>9} {_f(r, 'ratio_run'):>9}  "
        print(line + r.get("note", ""))
        if (r["warm_compile"] or 0) > 0.05:
            print(f"    ({r['warm_compile']:.2f} s of the cached `run` was spent compiling)")
        if "x_one_total" in r:
            print(
                f"    sweep = {r['x_one_total']:.2f}x one training's time cold, "
                f"{r['x_one_run']:.2f}x cached"
            )
        if r["repeats"] == 1 and r["run"] is None:
            print(f"    (1 cold run; run s - : not repeated cached; total - compile = "
                  f"{r['total'] - r['compile']:.2f} s)")  # fmt: skip


def summary(landscape_rows, landscape_share, sweep_rows, sweep_share) -> None:
    lines = []

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    for r in landscape_rows:
        if "ratio_total" in r and r["package"] == "trainax_fd":
            lines.append(
                f"landscape {r['case']:<10} >= {LANDSCAPE_TARGET:g}x faster than trainax, "
                f"compile incl.: {verdict(r['ratio_total'] >= LANDSCAPE_TARGET)} "
                f"({r['ratio_total']:.2f}x; cached {r['ratio_run']:.2f}x; others used "
                f"{landscape_share:.0%} of the CPUs)"
            )
    for r in landscape_rows:
        if "ratio_total" in r and r["package"] == "trainax_fd layer":
            lines.append(
                f"landscape {r['case']:<10} trainax's code on trainax_fd.compat.trainax >= "
                f"{LAYER_TARGET:g}x faster than on trainax, compile incl.: "
                f"{verdict(r['ratio_total'] >= LAYER_TARGET)} ({r['ratio_total']:.2f}x; cached "
                f"{r['ratio_run']:.2f}x)"
            )
    for r in landscape_rows:
        if "ratio_total" in r and r["package"] == "trainax jit":
            lines.append(
                f"landscape {r['case']:<10} trainax with filter_jit: {r['ratio_total']:.2f}x "
                "faster than eager trainax (for information)"
            )
    for r in sweep_rows:
        if r["package"] == "trainax_fd sweep":
            if "ratio_total" in r:
                lines.append(
                    f"sweep     {r['case']:<10} >= {SWEEP_TARGET:g}x faster than sequential "
                    f"trainax, compile incl.: {verdict(r['ratio_total'] >= SWEEP_TARGET)} "
                    f"({r['ratio_total']:.2f}x; others used {sweep_share:.0%} of the CPUs)"
                )
            lines.append(
                f"sweep     {r['case']:<10} sweep = {r['x_one_total']:.2f}x one trainax_fd "
                f"training cold, {r['x_one_run']:.2f}x cached (for information)"
            )
    if trainax is None:
        lines.insert(0, "speed targets not checked: trainax is not installed")
    print("\nsummary (ratio = trainax / trainax_fd)\n" + "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="landscape,sweep", help="comma-separated subset")
    parser.add_argument(
        "--quick", action="store_true", help="20 x 20 grid, 4 members, 300 steps, 1 repeat"
    )
    parser.add_argument("--repeats", type=int, help="timed runs per case (default 3, quick 1)")
    parser.add_argument(
        "--trainax-sweep-repeats", type=int, default=1,
        help="cold runs of trainax's sequential trainings (default 1: minutes each)",
    )  # fmt: skip
    parser.add_argument("--grid", type=int, help="landscape points per axis (default 50)")
    parser.add_argument("--rollouts", help="landscape rollouts (default 1,2,3,4)")
    parser.add_argument("--steps", type=int, help="sweep Adam steps (default 3000)")
    parser.add_argument("--members", type=int, help="learning rates in the sweep (default 16)")
    parser.add_argument("--sweep-rollouts", help="sweep rollouts (default 1; e.g. 1,4)")
    args = parser.parse_args()
    quick = args.quick
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"landscape", "sweep"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from landscape, sweep")
    repeats = args.repeats or (1 if quick else 3)
    points = args.grid or (20 if quick else 50)
    rollouts = [int(n) for n in (args.rollouts or "1,2,3,4").split(",")]
    steps = args.steps or (300 if quick else 3000)
    members = args.members or (4 if quick else 16)
    sweep_rollouts = [int(n) for n in (args.sweep_rollouts or "1").split(",")]

    print(
        f"jax {jax.__version__}, equinox {eqx.__version__}, optax {optax.__version__}, "
        f"{jax.devices()[0].platform}, {os.cpu_count()} CPU(s); {load_note()}"
    )
    if trainax is None:
        print("trainax is not installed (pip install trainax==0.0.2): timing trainax_fd alone.")
    else:
        print("trainax 0.0.2 installed: compared side by side.")

    landscape_rows, landscape_share = [], None
    if "landscape" in parts:
        landscape_rows, landscape_share = landscapes(points, rollouts, repeats)
        print_timings("landscape (ratio = trainax / package)", landscape_rows)
    sweep_rows, sweep_share = [], None
    if "sweep" in parts:
        sweep_rows, sweep_share = sweeps(
            steps, members, sweep_rollouts, repeats, args.trainax_sweep_repeats
        )
        print_timings("sweep (ratio = trainax / package)", sweep_rows)
    print(f"\nfinished; {load_note()}")
    summary(landscape_rows, landscape_share or 0.0, sweep_rows, sweep_share or 0.0)


if __name__ == "__main__":
    main()
