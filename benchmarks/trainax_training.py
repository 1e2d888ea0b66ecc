"""Training wall time and peak memory: trainax_fd against trainax 0.0.2, side by side.

The same trainings run with trainax_fd and, when it is installed, with trainax in one process;
the script prints the ratios trainax / trainax_fd (above 1: trainax_fd is faster or leaner).

- `upwind`: the seed-sized problem. A 2-weight linear stepper learns first-order upwind
  advection (40 Dirichlet points, 101 time levels, one trajectory) in 3000 full-batch Adam
  steps, rollouts 1 to 4. Both packages must reach the weights (0.59, 0.41) within 1e-5 and
  agree with each other to 1e-6.
- `conv`: a convolutional emulator, the same `eqx.nn.Conv1d` network in both (residual
  `u + f(u)`, width 32, depth 4, kernel 5, circular padding, GELU), trained on 64
  trajectories of 1D periodic advection with 256 points, rollout 5, batch 32.
- `memory`: peak resident memory (`VmHWM`) of a rollout-20 training (batch 16, a small conv
  net, 3 steps) on about 100 MB of float32 trajectories, each package in a fresh subprocess.
  Printed: `(peak - base + data) / data`, `base` a child that imports the same and builds the
  same data without training; and the memory per byte of data, the peak difference between
  the full and a half-size data set over the data difference (1: the data and nothing more).
  Both trainax_fd rows rematerialise the rollout's steps in the backward pass (the default,
  `remat="auto"`, does so for chains longer than 8 steps); `trainax_fd no remat` is the
  native trainer with `Supervised(20, remat=False)`, every activation kept.

Timing: `total` is the wall time of a user's first training, compilation included: the
trainer is built and called right after `jax.clear_caches()`, and the clock stops after
`block_until_ready` on the trained stepper and the loss history. `compile` is the part of
that time JAX spent tracing, lowering and compiling (summed from `jax.monitoring` events).
`run` is the same training again with every compiled program cached (trainax still traces
and compiles its window slicing whenever a trainer is built: about 2 s here, printed under its
row). All three are medians of `--repeats` runs, packages interleaved; the script prints how
much CPU other processes used meanwhile.

trainax_fd is run through its trainax layer (`trainax_fd.compat.trainax`, the call a
trainax user would make, the headline) and through its native `trainax_fd.trainers.Trainer`.

Install and run from the repository root (trainax is a comparison only, never a dependency):

    pip install -e .            # trainax_fd
    pip install trainax==0.0.2  # optional; without it trainax_fd is timed alone
    python benchmarks/trainax_training.py                    # everything, ~35 min on 2 cores
    python benchmarks/trainax_training.py --quick            # smaller sizes, ~7 min
    python benchmarks/trainax_training.py --parts upwind,memory --repeats 5
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import trainax_fd as tfd
import trainax_fd.compat.trainax as tx_layer
from trainax_fd.stencil import Grid

try:
    with warnings.catch_warnings():  # trainax imports tqdm.autonotebook
        warnings.simplefilter("ignore")
        import trainax
except ImportError:
    trainax = None

UPWIND_TARGET = 5.0  # the four trainings together >= 5x faster, compilation included
UPWIND_STEP_TARGET = 20.0  # and >= 20x faster a step once compiled
CONV_TARGET = 1.0  # no slower
MEMORY_TARGET = 1.5  # peak memory <= 1.5x the data
UPWIND_WEIGHTS = (0.59, 0.41)
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_COMPILE_SECONDS = [0.0]
SKIP_NATIVE = [False]  # --skip-native


def _on_event(event: str, duration: float, **_) -> None:
    if event in COMPILE_EVENTS:
        _COMPILE_SECONDS[0] += duration


jax.monitoring.register_event_duration_secs_listener(_on_event)


# -- steppers -----------------------------------------------------------------------------
class Lin(eqx.Module):
    """`w0 * u_i + w1 * u_(i+1)`, zero beyond the right end: upwind advection for c < 0."""

    w: jax.Array

    def __call__(self, u):
        return self.w[0] * u + self.w[1] * jnp.pad(u, ((0, 0), (0, 1)))[:, 1:]


class ConvNet(eqx.Module):
    """`u + f(u)`, `f` a stack of circularly padded 1D convolutions with GELU between."""

    layers: tuple[eqx.nn.Conv1d, ...]

    def __init__(self, *, width: int, depth: int, kernel: int, key):
        channels = [1] + [width] * (depth - 1) + [1]
        keys = jax.random.split(key, depth)
        self.layers = tuple(
            eqx.nn.Conv1d(a, b, kernel, padding="SAME", padding_mode="CIRCULAR", key=k)
            for a, b, k in zip(channels[:-1], channels[1:], keys)
        )

    def __call__(self, u):
        x = u
        for layer in self.layers[:-1]:
            x = jax.nn.gelu(layer(x))
        return u + self.layers[-1](x)


# -- the trainings, one callable per package -------------------------------------------------
def runners(data, optimizer, steps: int, batch_size: int, rollout: int) -> dict[str, Callable]:
    """`{package: stepper -> (trained stepper, loss history)}`; each builds its trainer inside
    (trainax slices the windows when its trainer is built, which belongs to its cost)."""

    def compat(stepper):
        trainer = tx_layer.trainer.SupervisedTrainer(
            data, optimizer=optimizer, num_training_steps=steps, batch_size=batch_size,
            num_rollout_steps=rollout,
        )  # fmt: skip
        return trainer(stepper, jax.random.PRNGKey(0), spawn_tqdm=False)

    def native(stepper):
        trainer = tfd.trainers.Trainer(
            data, tfd.configurations.Supervised(rollout), optimizer, num_steps=steps,
            batch_size=batch_size,
        )  # fmt: skip
        result = trainer(stepper, key=jax.random.key(0), progress=False)
        return result.stepper, result.loss_history

    out = {"trainax_fd": compat}
    if not SKIP_NATIVE[0]:
        out["trainax_fd native"] = native
    if trainax is not None:

        def theirs(stepper):
            trainer = trainax.trainer.SupervisedTrainer(
                data, optimizer=optimizer, num_training_steps=steps, batch_size=batch_size,
                num_rollout_steps=rollout,
            )  # fmt: skip
            return trainer(stepper, jax.random.PRNGKey(0), spawn_tqdm=False)

        out["trainax"] = theirs
    return out


def train(run: Callable, stepper, *, cold: bool) -> tuple[float, float, object, np.ndarray]:
    """One training; **returns** `(wall s, compile s, trained stepper, loss history)`."""
    if cold:
        jax.clear_caches()
    _COMPILE_SECONDS[0] = 0.0
    start = time.perf_counter()
    trained, history = run(stepper)
    jax.block_until_ready((eqx.filter(trained, eqx.is_array), history))
    wall = time.perf_counter() - start
    return wall, _COMPILE_SECONDS[0], trained, np.asarray(history)


def measure(runs: dict[str, Callable], stepper, repeats: int) -> dict[str, dict]:
    """Cold (`total`, `compile`) and warm (`run`) medians per package, packages interleaved."""
    rows = {
        name: dict(package=name, total=[], compile=[], run=[], warm_compile=[]) for name in runs
    }
    for _ in range(repeats):
        for name, run in runs.items():
            wall, comp, trained, history = train(run, stepper, cold=True)
            rows[name]["total"].append(wall)
            rows[name]["compile"].append(comp)
            rows[name]["stepper"], rows[name]["history"] = trained, history
    for run in runs.values():  # warm-up: compile every package's programs, all kept cached
        train(run, stepper, cold=False)
    for _ in range(repeats):
        for name, run in runs.items():
            wall, comp, _, _ = train(run, stepper, cold=False)
            rows[name]["run"].append(wall)
            rows[name]["warm_compile"].append(comp)
    for row in rows.values():
        for k in ("total", "compile", "run", "warm_compile"):
            row[k] = statistics.median(row[k])
    return rows


def add_ratios(rows: dict[str, dict]) -> None:
    if "trainax" not in rows:
        return
    theirs = rows["trainax"]
    for name, row in rows.items():
        if name != "trainax":
            row["ratio_total"] = theirs["total"] / row["total"]
            row["ratio_run"] = theirs["run"] / row["run"]
            if "per_step" in row:
                row["ratio_step"] = theirs["per_step"] / row["per_step"]


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def cpu_mark() -> tuple[float, float, float] | None:
    """`(wall s, busy CPU s of the machine, CPU s of this process and its children)`."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except OSError:  # not Linux
        return None
    t = os.times()
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    return time.perf_counter(), busy, t.user + t.system + t.children_user + t.children_system


def others_note(mark) -> str:
    """How much CPU other processes used since `mark`, as a share of all cores."""
    now = cpu_mark()
    if mark is None or now is None:
        return ""
    wall, busy, own = (b - a for a, b in zip(mark, now))
    share = max(0.0, busy - own) / (wall * (os.cpu_count() or 1))
    return f"other processes used {share:.0%} of the {os.cpu_count()} CPUs meanwhile"


# -- (1) the seed-sized upwind problem -------------------------------------------------------
def upwind(steps: int, rollouts: list[int], repeats: int) -> list[dict]:
    grid = Grid(40, placement="vertex")
    ref = tfd.Advection(grid, "dirichlet", -0.1, 0.1)
    data = tfd.rollout(ref, 100, include_init=True)(tfd.reference.sine(grid))[None]
    optimizer = optax.adam(1e-2)  # one object: its functions are static in every jit cache
    stepper = Lin(jnp.array([0.4, 0.5]))
    print(f"\n== upwind: data {data.shape}, {steps} Adam steps, full batch; {load_note()}")
    mark, out = cpu_mark(), []
    for n in rollouts:
        windows = data.shape[1] - n  # one trajectory: 101 - n windows, all in every batch
        rows = measure(runners(data, optimizer, steps, windows, n), stepper, repeats)
        add_ratios(rows)
        weights = {name: np.asarray(row["stepper"].w) for name, row in rows.items()}
        for name, w in weights.items():
            err = np.max(np.abs(w - np.array(UPWIND_WEIGHTS)))
            if steps >= 3000 and not err < 1e-5:
                raise AssertionError(f"upwind n={n}: {name} reached {w}, not {UPWIND_WEIGHTS}")
            rows[name]["note"] = f"w = ({w[0]:.7f}, {w[1]:.7f})"
        if "trainax" in weights:
            for name in [k for k in weights if k.startswith("trainax_fd")]:
                diff = np.max(np.abs(weights[name] - weights["trainax"]))
                if not diff < 1e-6:
                    raise AssertionError(f"upwind n={n}: {name} and trainax differ by {diff:.1e}")
                rows[name]["note"] += f"; |w - trainax's| {diff:.0e}"
        for row in rows.values():
            row["case"] = f"rollout {n}"
            out.append(row)
    print(others_note(mark))
    return out


# -- (2) a convolutional emulator ------------------------------------------------------------
def fourier_initial(samples: int, points: int, seed: int, max_wavenumber: int = 5) -> np.ndarray:
    """Random periodic Fourier series `(samples, 1, points)`, max |u| = 1, float32 (NumPy:
    cheap to compile and the same in every process)."""
    rng = np.random.default_rng(seed)
    x = np.arange(points) / points
    k = np.arange(1, max_wavenumber + 1)[:, None]
    out = np.empty((samples, 1, points), np.float32)
    for s in range(samples):
        a, b = rng.normal(size=(2, max_wavenumber, 1)) / (1.0 + k**2)
        u = np.sum(a * np.cos(2 * np.pi * k * x) + b * np.sin(2 * np.pi * k * x), axis=0)
        out[s, 0] = u / np.max(np.abs(u))
    return out


def advection_data(samples: int, times: int, points: int, seed: int = 0) -> jax.Array:
    """`(samples, times, 1, points)` float32 trajectories of periodic upwind advection (CFL 0.5),
    written sample-major in place by `trainax_fd.trajectories` (no temporary copy)."""
    grid = Grid((points,), 1.0, "periodic")
    ref = tfd.Advection(grid, "periodic", 1.0, 0.5 * grid.spacing[0])
    u0 = jnp.asarray(fourier_initial(samples, points, seed))
    return tfd.trajectories(ref, u0, times - 1, include_init=True).block_until_ready()


def conv(samples, times, points, steps, width, depth, repeats) -> list[dict]:
    data = advection_data(samples, times, points)
    net = ConvNet(width=width, depth=depth, kernel=5, key=jax.random.key(1))
    optimizer = optax.adam(1e-3)
    rollout, batch = 5, 32
    windows = samples * (times - rollout)
    print(
        f"\n== conv: data {data.shape}, {windows} windows, rollout {rollout}, batch {batch}, "
        f"{steps} Adam steps; Conv1d width {width}, depth {depth}, kernel 5; {load_note()}"
    )
    mark = cpu_mark()
    rows = measure(runners(data, optimizer, steps, batch, rollout), net, repeats)
    print(others_note(mark))
    for row in rows.values():  # steady state: the cached run less what it spent compiling
        row["per_step"] = (row["run"] - row["warm_compile"]) / steps
    add_ratios(rows)
    for row in rows.values():
        h = row["history"]
        if not np.all(np.isfinite(h)):
            raise AssertionError(f"conv: {row['package']} has non-finite losses")
        row["note"] = f"loss {h[0]:.3e} -> {h[-1]:.3e}"
        row["case"] = f"{steps} steps"
    if "trainax" in rows:
        ours, theirs = rows["trainax_fd"]["history"], rows["trainax"]["history"]
        rel = np.max(np.abs(ours - theirs) / np.abs(theirs))
        if not rel < 1e-3:
            raise AssertionError(f"conv: trainax_fd and trainax losses differ by {rel:.1e}")
        rows["trainax_fd"]["note"] += f"; rel.diff to trainax {rel:.0e}"
        if "trainax_fd native" in rows:
            rows["trainax_fd native"]["note"] += " (own shuffling)"
    return list(rows.values())


# -- (3) peak memory, each package in a fresh process --------------------------------------
MEMORY_NET = dict(width=8, depth=3)
MEMORY_ROLLOUT, MEMORY_BATCH, MEMORY_STEPS = 20, 16, 3


NO_REMAT = "trainax_fd no remat"  # native API, `Supervised(..., remat=False)`


def no_remat_runner(data, optimizer, steps: int, batch_size: int, rollout: int) -> Callable:
    """The native trainer keeping every activation of the rollout for the backward pass (the
    default, `remat="auto"`, rematerialises the steps of rollouts longer than 8 steps)."""

    def run(stepper):
        config = tfd.configurations.Supervised(rollout, remat=False)
        trainer = tfd.trainers.Trainer(
            data, config, optimizer, num_steps=steps, batch_size=batch_size
        )
        result = trainer(stepper, key=jax.random.key(0), progress=False)
        return result.stepper, result.loss_history

    return run


def memory_child(mode: str, samples: int, times: int, points: int) -> None:
    """Build the data and train (`mode`: `baseline` builds the data only); print JSON."""
    data = advection_data(samples, times, points)
    net = ConvNet(**MEMORY_NET, kernel=5, key=jax.random.key(1))
    optimizer = optax.adam(1e-3)
    start = time.perf_counter()
    loss = None
    if mode != "baseline":
        args = (data, optimizer, MEMORY_STEPS, MEMORY_BATCH, MEMORY_ROLLOUT)
        run = no_remat_runner(*args) if mode == NO_REMAT else runners(*args)[mode]
        trained, history = run(net)
        jax.block_until_ready((eqx.filter(trained, eqx.is_array), history))
        loss = float(history[-1])
    wall = time.perf_counter() - start
    print(json.dumps(dict(peak=peak_rss(), data=data.nbytes, loss=loss, wall=wall)))


def peak_rss() -> int:
    """Peak resident memory of this process in bytes: `VmHWM`, the high-water mark of this
    process's own address space. (`ru_maxrss` is not used: on Linux it keeps the parent's
    peak across fork + exec, so a child of a large parent reports the parent's size.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


#: Allocator settings the memory children run under: glibc's default (one malloc arena per
#: thread that allocates, up to 8 per core), and one arena. XLA's compiler and runtime threads
#: allocate from arenas of their own, whose freed memory the main thread cannot reuse.
ALLOCATORS = {"": {}, ", 1 arena": {"MALLOC_ARENA_MAX": "1"}}


def spawn(mode: str, samples: int, times: int, points: int, env: dict) -> dict:
    args = [sys.executable, os.path.abspath(__file__), "--memory-child", mode]
    args += ["--memory-size", f"{samples},{times},{points}"]
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env})
    if done.returncode != 0:
        raise RuntimeError(f"memory child {mode!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(samples: int, times: int, points: int) -> list[dict]:
    mib = 2**20
    print(
        f"\n== memory: data ({samples}, {times}, 1, {points}) float32 = "
        f"{samples * times * points * 4 / mib:.0f} MiB; rollout {MEMORY_ROLLOUT}, batch "
        f"{MEMORY_BATCH}, {MEMORY_STEPS} steps, Conv1d width {MEMORY_NET['width']}, depth "
        f"{MEMORY_NET['depth']}; each child a fresh process; {load_note()}"
    )
    mark = cpu_mark()
    packages = ["trainax_fd"] + ([] if SKIP_NATIVE[0] else [NO_REMAT])
    packages += ["trainax"] if trainax is not None else []
    rows = []
    for suffix, env in ALLOCATORS.items():
        base = spawn("baseline", samples, times, points, env)
        group = []
        for name in packages:
            full = spawn(name, samples, times, points, env)
            half = spawn(name, samples // 2, times, points, env)  # same programs, half the data
            d = full["data"]
            group.append(
                dict(
                    package=name + suffix, peak=full["peak"] / mib, baseline=base["peak"] / mib,
                    half=half["peak"] / mib, data=d / mib, wall=full["wall"],
                    ratio=(full["peak"] - base["peak"] + d) / d, loss=full["loss"],
                    marginal=(full["peak"] - half["peak"]) / (d - half["data"]),
                )
            )  # fmt: skip
            if not np.isfinite(full["loss"]):
                raise AssertionError(f"memory: {name} has a non-finite loss")
        if trainax is not None:
            for row in group[:-1]:
                row["vs"] = group[-1]["ratio"] / row["ratio"]
        rows += group
    print(others_note(mark))
    return rows


# -- output ----------------------------------------------------------------------------------
def _ratio(row: dict, key: str) -> str:
    return f"{row[key]:.2f}" if key in row else ""


def print_timings(title: str, rows: list[dict], per_step: bool) -> None:
    header = f"{'package':<18} {'case':<10} {'total s':>8} {'compile s':>9} {'run s':>7} "
    header += f"{'ms/step':>8} " if per_step else ""
    header += f"{'ratio tot':>9} {'ratio run':>9} " + (f"{'ratio step':>10} " if per_step else "")
    header += " check"
    print(f"\n{title}\n{header}\n{'-' * len(header)}")
    for r in rows:
        line = f"{r['package']:<18} {r['case']:<10} {r['total']:>8.2f} {r['compile']:>9.2f} "
        line += f"{r['run']:>7.2f} "
        line += f"{r['per_step'] * 1e3:>8.1f} " if per_step else ""
        line += f"{_ratio(r, 'ratio_total'):>9} {_ratio(r, 'ratio_run'):>9} "
        line += f"{_ratio(r, 'ratio_step'):>10} " if per_step else ""
        line += f" {r['note']}"
        print(line)
        if r["warm_compile"] > 0.05:
            print(f"    ({r['warm_compile']:.2f} s of the cached `run` was spent compiling)")


def print_memory(rows: list[dict]) -> None:
    header = f"{'package':<29} {'peak MiB':>8} {'base MiB':>8} {'half MiB':>8} {'data MiB':>8} "
    header += f"{'x data':>7} {'marginal':>8} {'train s':>7}"
    print(f"\nmemory\n{header}\n{'-' * len(header)}")
    for r in rows:
        print(
            f"{r['package']:<29} {r['peak']:>8.0f} {r['baseline']:>8.0f} {r['half']:>8.0f} "
            f"{r['data']:>8.0f} {r['ratio']:>7.2f} {r['marginal']:>8.2f} {r['wall']:>7.1f}"
        )
    print(
        "x data = (peak - base + data) / data; base: a child that imports the same and builds "
        "the data only (peak - base: compilation, the network's backward pass, the windows).\n"
        "marginal = (peak - half) / (data - half data); half: the same training on half the "
        "trajectories (the memory per byte of data; 1 = the data itself, nothing more).\n"
        "1 arena: the children run with MALLOC_ARENA_MAX=1 (an environment setting of the "
        "process, not of the package)."
    )


def summary(upwind_rows, conv_rows, memory_rows) -> None:
    lines = []

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    packages = dict.fromkeys(r["package"] for r in upwind_rows)
    if "trainax" in packages:
        theirs = [r for r in upwind_rows if r["package"] == "trainax"]
        for package in [p for p in packages if p != "trainax"]:
            ours = [r for r in upwind_rows if r["package"] == package]
            what = "target" if package == "trainax_fd" else "native API, for information"
            total = sum(r["total"] for r in theirs) / sum(r["total"] for r in ours)
            step = sum(r["run"] for r in theirs) / sum(r["run"] for r in ours)
            cases = "+".join(r["case"].split()[-1] for r in ours)
            lines.append(
                f"upwind rollouts {cases:<7} {package:<18} >= {UPWIND_TARGET:g}x faster together, "
                f"compile incl.: {verdict(total >= UPWIND_TARGET)} ({total:.2f}x; {what})"
            )
            lines.append(
                f"upwind rollouts {cases:<7} {package:<18} >= {UPWIND_STEP_TARGET:g}x faster a "
                f"step, compiled: {verdict(step >= UPWIND_STEP_TARGET)} ({step:.2f}x; {what})"
            )
    for r in conv_rows:
        if "ratio_total" in r:
            what = "target" if r["package"] == "trainax_fd" else "native API, for information"
            lines.append(
                f"conv   {r['case']:<10} {r['package']:<18} no slower, compile incl.: "
                f"{verdict(r['ratio_total'] >= CONV_TARGET)} ({r['ratio_total']:.2f}x; {what})"
            )
            lines.append(
                f"conv   {r['case']:<10} {r['package']:<18} no slower, steady state: "
                f"{verdict(r['ratio_step'] >= CONV_TARGET)} ({r['ratio_step']:.2f}x; for "
                "information)"
            )
    for r in memory_rows:
        lines.append(
            f"memory rollout 20  {r['package']:<29} memory per byte of data: {r['marginal']:.2f} "
            "(for information)"
        )
        lines.append(
            f"memory rollout 20  {r['package']:<29} peak <= {MEMORY_TARGET:g}x data: "
            f"{verdict(r['ratio'] <= MEMORY_TARGET)} ({r['ratio']:.2f}x; "
            + ("target" if r["package"] == "trainax_fd" else "for information")
            + (f"; trainax needs {r['vs']:.1f}x as much)" if "vs" in r else ")")
        )
    if trainax is None:
        lines.insert(0, "speed targets not checked: trainax is not installed")
    print("\nsummary (ratio = trainax / trainax_fd)\n" + "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="upwind,conv,memory", help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repeat")
    parser.add_argument("--repeats", type=int, help="timed runs per case (default 3, quick 1)")
    parser.add_argument("--upwind-steps", type=int, help="Adam steps (default 3000)")
    parser.add_argument("--rollouts", help="upwind rollouts, e.g. 1,2,3,4 (the default)")
    parser.add_argument("--conv-steps", type=int, help="Adam steps of the conv training")
    parser.add_argument("--conv-repeats", type=int, help="timed conv runs (default 2, quick 1)")
    parser.add_argument(
        "--memory-size", help="samples,times,points of the memory data (default 64,200,2048)"
    )
    parser.add_argument(
        "--skip-native", action="store_true", help="time the trainax-compatible layer only"
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = args.quick
    size = args.memory_size or ("16,200,1024" if quick else "64,200,2048")
    samples, times, points = (int(v) for v in size.split(","))
    if args.memory_child:
        memory_child(args.memory_child, samples, times, points)
        return

    SKIP_NATIVE[0] = args.skip_native
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"upwind", "conv", "memory"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from upwind, conv, memory")
    repeats = args.repeats or (1 if quick else 3)
    conv_repeats = args.conv_repeats or args.repeats or (1 if quick else 2)
    upwind_steps = args.upwind_steps or (300 if quick else 3000)
    rollouts = [int(n) for n in (args.rollouts or ("1,4" if quick else "1,2,3,4")).split(",")]
    conv_size = (
        (16, 26, 128, args.conv_steps or 5) if quick else (64, 51, 256, args.conv_steps or 100)
    )

    print(
        f"jax {jax.__version__}, equinox {eqx.__version__}, optax {optax.__version__}, "
        f"{jax.devices()[0].platform}, {os.cpu_count()} CPU(s); {load_note()}"
    )
    if trainax is None:
        print("trainax is not installed (pip install trainax==0.0.2): timing trainax_fd alone.")
    else:
        print("trainax 0.0.2 installed: compared side by side.")

    upwind_rows = upwind(upwind_steps, rollouts, repeats) if "upwind" in parts else []
    if upwind_rows:
        print_timings("upwind (ratio = trainax / package)", upwind_rows, per_step=False)
    conv_rows = []
    if "conv" in parts:
        conv_rows = conv(*conv_size, width=32, depth=4, repeats=conv_repeats)
        print_timings("conv (ratio = trainax / package)", conv_rows, per_step=True)
    memory_rows = memory(samples, times, points) if "memory" in parts else []
    if memory_rows:
        print_memory(memory_rows)
    print(f"\nfinished; {load_note()}")
    summary(upwind_rows, conv_rows, memory_rows)


if __name__ == "__main__":
    main()
