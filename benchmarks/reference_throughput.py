"""Throughput of reference training-data generation: trainax_fd against exponax.

Each workload draws a batch of random initial conditions (`random_fourier`, wavenumbers up
to 5), rolls a reference stepper out (trainax_fd: `trajectories(stepper, u0s, n)`; exponax:
`jax.vmap(exponax.rollout(stepper, n))`) and returns the whole trajectory array
`(trajectories, steps, channels, *spatial)`, the way training data is generated (mode
`traj`). Mode `final` runs the same steps but keeps only the last state: it isolates the
stepping from writing the trajectory. Compile time (`jax.jit(f).lower(u0).compile()`) and run
time (median of `--repeats` runs after a warm-up, `block_until_ready` inside the timed
region) are measured apart.

- (a) 1D advection, 1024 points, 64 trajectories, 1000 steps, CFL 0.5: trainax_fd's upwind
  `Advection` against exponax's exact spectral `Advection` at the same `dt`.
- (b) 2D diffusion, 256 x 256, 16 trajectories, 200 steps: trainax_fd's explicit `Diffusion`
  at half its stable `dt` against exponax's exact spectral `Diffusion`, same `dt` and `k`.

Throughput is cell updates per second, `trajectories * steps * prod(spatial)` over the run
time. The bandwidth fraction assumes a cell update moves at least `2 * itemsize` bytes (read
the state, write the next one) and divides by the bandwidth of a 512 MiB float32 copy into an
already touched buffer (read + write bytes), timed in the same run. The same copy into a
freshly allocated output (what a compiled function returning a new array does) is printed too.

Install and run from the repository root (exponax is a comparison only, never a dependency):

    pip install -e .            # trainax_fd
    pip install exponax==0.2.0  # optional; without it trainax_fd is timed alone
    python benchmarks/reference_throughput.py           # full size, ~7 min on 2 CPU cores
    python benchmarks/reference_throughput.py --small   # 16-32x smaller workloads
"""

import argparse
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import trainax_fd as tfd
from trainax_fd.reference import random_fourier

try:
    import exponax
except ImportError:
    exponax = None

TARGET = 5.0  # issue target: trainax_fd throughput >= 5x exponax's
DIFFUSION_RTOL = 1e-2  # second-order FD vs exact spectral, relative to max |u|
BYTES_PER_UPDATE = 2 * 4  # float32: read the state, write the next one


def timed(f, u0: jax.Array, repeats: int) -> tuple[float, float, np.ndarray]:
    """Compile `f` for `u0` and run it; **returns** `(compile s, median run s, final states)`."""
    start = time.perf_counter()
    compiled = jax.jit(f).lower(u0).compile()
    compile_s = time.perf_counter() - start
    compiled(u0).block_until_ready()  # warm-up
    runs, out = [], None
    for _ in range(repeats):
        del out  # free the previous result first: only one trajectory array alive at a time
        start = time.perf_counter()
        out = compiled(u0).block_until_ready()
        runs.append(time.perf_counter() - start)
    final = np.asarray(out[:, -1] if out.ndim == u0.ndim + 1 else out)
    del out
    return compile_s, statistics.median(runs), final


def bandwidth(mib: int = 512, repeats: int = 5) -> tuple[float, float]:
    """Copy bandwidth in bytes/s (read + write): into a touched buffer, into a fresh one."""
    x = np.ones(mib * 2**20 // 4, np.float32)
    y = np.zeros_like(x)
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(y, x)
        warm.append(time.perf_counter() - start)
    xj = jnp.asarray(x)
    copy = jax.jit(lambda a: a * 2.0).lower(xj).compile()
    fresh = []
    for _ in range(repeats):
        start = time.perf_counter()
        copy(xj).block_until_ready()
        fresh.append(time.perf_counter() - start)
    return 2 * x.nbytes / min(warm), 2 * x.nbytes / min(fresh)


def initial_conditions(grid: tfd.Grid, count: int, seed: int = 0) -> jax.Array:
    keys = jax.random.split(jax.random.key(seed), count)
    draw = jax.jit(jax.vmap(lambda k: random_fourier(grid, key=k, max_wavenumber=5)))
    return draw(keys).astype(jnp.float32)


def final_state(step, n: int):
    """`u0 -> step^n(u0)` on one sample, nothing else kept."""
    return lambda u: jax.lax.fori_loop(0, n, lambda _, v: step(v), u)


def compare(name: str, ours, theirs, u0, steps: int, repeats: int, check) -> list[dict]:
    """Time both packages in both modes; `check(ours_final, theirs_final)` -> note string."""
    cells = u0.shape[0] * steps * int(np.prod(u0.shape[2:]))
    rows = []
    for mode in ("traj", "final"):
        # each package's own way to make a data set: trainax_fd writes sample-major in place
        # (`trajectories`), exponax is vmapped over its rollout
        ours_traj = lambda u: tfd.trajectories(ours, u, steps, include_init=False)  # noqa: E731
        pair = [("trainax_fd", ours, ours_traj)]
        if theirs is not None:
            pair.append(("exponax", theirs, jax.vmap(exponax.rollout(theirs, steps))))
        finals = []
        for package, stepper, traj in pair:
            f = traj if mode == "traj" else jax.vmap(final_state(stepper, steps))
            c, r, final = timed(f, u0, repeats)
            rows.append(dict(package=package, workload=name, mode=mode, compile=c, run=r))
            rows[-1]["rate"] = cells / r
            finals.append(final)
        ours_row = rows[-len(pair)]
        if not np.all(np.isfinite(finals[0])):
            raise AssertionError(f"{name} ({mode}): trainax_fd produced non-finite values")
        if theirs is None:
            ours_row["note"] = "finite (exponax not installed)"
        else:
            ours_row["note"] = check(finals[0], finals[1])
            ours_row["ratio"] = ours_row["rate"] / rows[-1]["rate"]
    return rows


def advection(points: int, trajectories: int, steps: int, repeats: int) -> list[dict]:
    grid = tfd.Grid((points,), 1.0, "periodic")
    velocity = 1.0
    dt = 0.5 * grid.spacing[0] / velocity  # CFL 0.5
    ours = tfd.Advection(grid, "periodic", velocity, dt, scheme="upwind")
    theirs = None
    if exponax is not None:
        theirs = exponax.stepper.Advection(1, 1.0, points, dt, velocity=velocity)

    def check(a, b):  # first-order upwind diffuses, exponax is exact: report, do not assert
        return f"finite; max|diff| {np.max(np.abs(a - b)):.3f}"

    u0 = initial_conditions(grid, trajectories)
    name = f"adv 1D {points}, {trajectories}x{steps}"
    return compare(name, ours, theirs, u0, steps, repeats, check)


def diffusion(points: int, trajectories: int, steps: int, repeats: int) -> list[dict]:
    grid = tfd.Grid((points, points), 1.0, "periodic")
    k = 0.01
    dt = 0.5 / (k * sum(2.0 / h**2 for h in grid.spacing))  # half the explicit limit
    ours = tfd.Diffusion(grid, "periodic", k, dt)
    theirs = None
    if exponax is not None:
        theirs = exponax.stepper.Diffusion(2, 1.0, points, dt, diffusivity=k)

    def check(a, b):
        err = np.max(np.abs(a - b)) / np.max(np.abs(b))
        if not err < DIFFUSION_RTOL:
            raise AssertionError(f"diffusion: relative difference {err:.2e} > {DIFFUSION_RTOL}")
        return f"finite; rel.diff {err:.1e}"

    u0 = initial_conditions(grid, trajectories)
    name = f"diff 2D {points}^2, {trajectories}x{steps}"
    return compare(name, ours, theirs, u0, steps, repeats, check)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="16-32x smaller workloads")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (>= 3)")
    args = parser.parse_args()
    repeats = max(3, args.repeats)
    adv, diff = ((512, 16, 250), (128, 8, 50)) if args.small else ((1024, 64, 1000), (256, 16, 200))

    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {jax.device_count()} device(s)")
    if exponax is None:
        print("exponax is not installed (pip install exponax): timing trainax_fd alone.")
    else:
        print(f"exponax {exponax.__version__}: compared side by side.")
    rows = advection(*adv, repeats) + diffusion(*diff, repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    bw, fresh = bandwidth()  # after the workloads, so that it does not set the peak RSS
    print(
        f"bandwidth: {bw / 1e9:.1f} GB/s (512 MiB copy, read + write, touched buffer); "
        f"{fresh / 1e9:.2f} GB/s into a freshly allocated output"
    )
    print(f"assumption: a cell update moves >= {BYTES_PER_UPDATE} bytes (float32 read + write)\n")

    header = f"{'package':<11} {'workload':<24} {'mode':<5} {'compile s':>9} {'run s':>7} "
    header += f"{'Mcell/s':>8} {'ratio':>6} {'of BW':>6}  check"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        frac = row["rate"] * BYTES_PER_UPDATE / bw
        print(
            f"{row['package']:<11} {row['workload']:<24} {row['mode']:<5} {row['compile']:>9.2f} "
            f"{row['run']:>7.3f} {row['rate'] / 1e6:>8.1f} {ratio:>6} {frac:>6.1%}  "
            f"{row.get('note', '')}"
        )
    print(f"\npeak RSS of the workloads: {peak:.0f} MiB")
    if exponax is None:
        print(f"target >= {TARGET:g}x exponax: not checked (exponax not installed)")
    for row in rows:
        if "ratio" in row:
            met = "MET" if row["ratio"] >= TARGET else "NOT MET"
            what = "target" if row["mode"] == "traj" else "stepping only, for information"
            print(
                f"{row['workload']}, {row['mode']}: >= {TARGET:g}x exponax {met} "
                f"({row['ratio']:.2f}x; {what})"
            )


if __name__ == "__main__":
    main()
