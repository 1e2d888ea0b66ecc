"""Elliptic solve `div(k grad T) + s = 0`: trainax_fd's multigrid against PyAMG and scipy.

The problem of issue 15: the unit square, `T = 0` on the boundary, `k = 1 + 0.9 sin(6 pi x)
sin(4 pi y)` averaged to the faces (the stencil core's `div_k_grad`), `s = 1`, float64, solved
to a relative residual `||f - A T|| / ||f|| <= 1e-8`. trainax_fd solves it matrix-free with
`trainax_fd.solvers.solve` (geometric multigrid; also multigrid-CG and a full-multigrid start);
PyAMG (Ruge-Stueben algebraic multigrid, setup included, alone and as a CG preconditioner) and
scipy's sparse direct `spsolve` solve the matrix `trainax_fd.solvers.to_sparse` exports, the
same discrete operator.

Timed apart: trainax_fd's first call for the problem (tracing, compilation and one run; after
a small warm-up solve, so that XLA's one-time start-up in the process is not counted) and the
median of `--repeats` compiled runs after it (`block_until_ready` inside the timed region);
PyAMG's setup and solve, each a median; `spsolve` once. Memory: for trainax_fd the compiled
program's own (XLA's memory analysis: temporaries and outputs; the inputs `k` and `s` are the
caller's), for PyAMG and `spsolve` the peak resident memory of one solve in a fresh child
process (Linux's `VmHWM`, reset through `/proc/self/clear_refs`, above the resident memory
just before the solve, the matrix already built). The process's peak during trainax_fd's first
call (compilation included) is printed too. Checks: every solution's relative residual
against the exported matrix is at most `1e-8` (`spsolve`'s at round-off), and every solution
agrees with `spsolve`'s (or PyAMG's) to `1e-6`. Ratios are theirs / trainax_fd's compiled run
time. Last, the V(2,2) convergence factor (mean per cycle, from zero to `1e-10`) on 64² up to
the benchmark's grid, `k = 1` and the variable `k`.

Install and run from the repository root; pyamg and scipy are comparisons only, never
dependencies of trainax_fd:

    pip install -e .
    pip install pyamg scipy       # optional; without them trainax_fd is timed alone
    python benchmarks/multigrid.py                  # 1023^2 interior vertices (h = 1/1024)
    python benchmarks/multigrid.py --n 255 --repeats 3
    python benchmarks/multigrid.py --placement cell --n 1024 --no-spsolve
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import trainax_fd as tfd  # noqa: E402
from trainax_fd.solvers import solve, to_sparse  # noqa: E402

try:
    import scipy.sparse.linalg as spla
except ImportError:
    spla = None
try:
    import pyamg
except ImportError:
    pyamg = None

TOL = 1e-8
VARIANTS = {
    "mg V(2,2)": {},
    "mg V(2,2) + FMG": dict(fmg=True),
    "mgcg V(2,2)": dict(method="mgcg"),
    "mg V(1,1)": dict(smoothing=(1, 1)),
}
RUN_TARGET_S = 0.5
COLD_TARGET_S = 3.0
PYAMG_RATIO_TARGET = 10.0


def reset_peak() -> int:
    """Reset the resident-memory high-water mark; **returns** the current RSS in KiB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status("VmRSS")


def peak_since(base_kib: int) -> float:
    """MiB of resident memory above `base_kib` at the peak since `reset_peak`."""
    return max(_status("VmHWM") - base_kib, 0) / 1024


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def problem(n: int, placement: str):
    grid = tfd.Grid((n, n), placement=placement)
    x, y = grid.mesh(jnp.float64)
    k = (1 + 0.9 * jnp.sin(6 * jnp.pi * x) * jnp.sin(4 * jnp.pi * y))[None]
    s = jnp.ones((1, n, n), jnp.float64)
    return grid, k, s


def time_trainax(grid, k, s, repeats: int, **options) -> dict:
    """First call (trace + compile + run) and the median compiled run of `solve`."""
    base = reset_peak()
    start = time.perf_counter()
    u, report = solve(grid, "dirichlet", k, s, tol=TOL, **options)
    jax.block_until_ready((u, report))
    first = time.perf_counter() - start
    first_peak = peak_since(base)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        u, report = solve(grid, "dirichlet", k, s, tol=TOL, **options)
        jax.block_until_ready((u, report))
        runs.append(time.perf_counter() - start)
    run = statistics.median(runs)
    peak = program_memory(grid, k, s, **options)
    return dict(
        solution=np.asarray(u[0]).ravel(),
        first=first,
        compile=first - run,
        run=run,
        iterations=int(report.iterations),
        factor=float(report.convergence_factor),
        first_peak=first_peak,
        peak=peak,
    )


def time_pyamg(matrix, rhs, repeats: int, accel) -> dict:
    setups, solves = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ml = pyamg.ruge_stuben_solver(matrix)
        setups.append(time.perf_counter() - start)
        residuals = []
        start = time.perf_counter()
        x = ml.solve(rhs, tol=TOL, accel=accel, maxiter=500, residuals=residuals)
        solves.append(time.perf_counter() - start)
    iterations = len(residuals) - 1
    factor = (residuals[-1] / residuals[0]) ** (1 / max(iterations, 1))
    setup, solve_s = statistics.median(setups), statistics.median(solves)
    return dict(
        solution=x, setup=setup, run=setup + solve_s, solve=solve_s, iterations=iterations,
        factor=factor,
    )  # fmt: skip


def time_spsolve(matrix, rhs) -> dict:
    start = time.perf_counter()
    x = spla.spsolve(matrix.tocsc(), rhs)
    return dict(solution=x, run=time.perf_counter() - start)


def child(name: str, n: int, placement: str) -> None:
    """Run PyAMG or `spsolve` once in this fresh process; print its peak memory as JSON."""
    grid, k, s = problem(n, placement)
    matrix, rhs = system(grid, k, s)
    base = reset_peak()
    if name == "scipy spsolve":
        spla.spsolve(matrix.tocsc(), rhs)
    else:
        ml = pyamg.ruge_stuben_solver(matrix)
        ml.solve(rhs, tol=TOL, accel="cg" if name.endswith("CG") else None, maxiter=500)
    print(json.dumps({"peak": peak_since(base)}))


def child_peak(name: str, n: int, placement: str) -> float:
    command = [sys.executable, __file__, "--child", name, "--n", str(n), "--placement", placement]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak"]


def program_memory(grid, k, s, **options) -> float:
    """MiB of XLA's temporaries and outputs for the compiled solve."""
    compiled = (
        jax.jit(lambda k, s: solve(grid, "dirichlet", k, s, tol=TOL, **options))
        .lower(k, s)
        .compile()
    )
    analysis = compiled.memory_analysis()
    return (analysis.temp_size_in_bytes + analysis.output_size_in_bytes) / 2**20


def system(grid, k, s):
    """The exported matrix (negated: symmetric positive definite) and right-hand side."""
    matrix = -to_sparse(grid, "dirichlet", k)
    boundary = tfd.stencil.div_k_grad(jnp.zeros_like(s), k, grid, "dirichlet")
    return matrix, np.asarray(s + boundary)[0].ravel()


def relative_residual(matrix, rhs, x) -> float:
    return float(np.linalg.norm(rhs - matrix @ x) / np.linalg.norm(rhs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1023, help="points per axis")
    parser.add_argument("--placement", default="vertex", choices=["vertex", "cell"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-spsolve", action="store_true", help="skip scipy's spsolve")
    parser.add_argument("--no-variants", action="store_true", help="only the default solve")
    parser.add_argument(
        "--no-factors", action="store_true", help="skip the V(2,2) factors on 64^2 to n^2"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.n, args.placement)

    grid, k, s = problem(args.n, args.placement)
    print(
        f"{args.n}^2 {args.placement} points, variable k, relative residual {TOL:g}, float64; "
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}, "
        f"{len(jax.devices())} device(s)"
    )
    if pyamg is None or spla is None:
        print("pyamg and/or scipy not installed: `pip install pyamg scipy` to compare.")

    # XLA's one-time start-up (its first compilation in the process) is not the solver's
    small = tfd.Grid((31, 31), placement="vertex")
    jax.block_until_ready(solve(small, "dirichlet", 1.0, 1.0, tol=TOL))

    variants = {"mg V(2,2)": {}} if args.no_variants else VARIANTS
    results = {}
    for name, options in variants.items():
        results[name] = time_trainax(grid, k, s, args.repeats, **options)
    ours = results["mg V(2,2)"]

    reference = None
    if spla is not None:
        matrix, rhs = system(grid, k, s)
        if pyamg is not None:
            results["PyAMG RS"] = time_pyamg(matrix, rhs, args.repeats, None)
            results["PyAMG RS + CG"] = time_pyamg(matrix, rhs, args.repeats, "cg")
        if not args.no_spsolve:
            results["scipy spsolve"] = time_spsolve(matrix, rhs)
            reference = results["scipy spsolve"]["solution"]
        elif pyamg is not None:
            reference = results["PyAMG RS"]["solution"]
        for name, r in results.items():
            r["residual"] = relative_residual(matrix, rhs, r["solution"])
            limit = 1e-9 if name == "scipy spsolve" else 1.01 * TOL  # spsolve: round-off
            assert r["residual"] <= limit, f"{name}: residual {r['residual']:.3g}"
            if reference is not None:
                error = np.linalg.norm(r["solution"] - reference) / np.linalg.norm(reference)
                r["error"] = error
                assert error <= 1e-6, f"{name}: differs from the reference by {error:.3g}"

    for name, r in results.items():
        if "peak" not in r:
            r["peak"] = child_peak(name, args.n, args.placement)

    header = (
        "| method | first call s | compile s | run s | iterations | factor | residual | "
        "memory MiB | ratio |"
    )
    print("\n" + header + "\n|" + "---|" * 9)
    for name, r in results.items():
        first = f"{r['first']:.2f}" if "first" in r else ""
        comp = f"{r['compile']:.2f}" if "compile" in r else ""
        run = f"{r['run']:.3f}"
        if "setup" in r:
            run = f"{r['run']:.3f} ({r['setup']:.2f} setup)"
        iters = str(r.get("iterations", ""))
        factor = f"{r['factor']:.3f}" if "factor" in r else ""
        resid = f"{r['residual']:.1e}" if "residual" in r else ""
        ratio = r["run"] / ours["run"]
        print(
            f"| {name} | {first} | {comp} | {run} | {iters} | {factor} | {resid} | "
            f"{r['peak']:.0f} | {ratio:.1f} |"
        )
    print(
        f"\ntrainax_fd mg V(2,2): compiled run {ours['run']:.3f} s (target <= {RUN_TARGET_S} s: "
        f"{'met' if ours['run'] <= RUN_TARGET_S else 'not met'}); first call with compilation "
        f"{ours['first']:.2f} s (target <= {COLD_TARGET_S} s: "
        f"{'met' if ours['first'] <= COLD_TARGET_S else 'not met'}); peak during the first call "
        f"{ours['first_peak']:.0f} MiB."
    )
    if "PyAMG RS" in results:
        ratio = results["PyAMG RS"]["run"] / ours["run"]
        print(
            f"PyAMG (setup + solve) / trainax_fd run: {ratio:.1f}x (target >= "
            f"{PYAMG_RATIO_TARGET:g}x: {'met' if ratio >= PYAMG_RATIO_TARGET else 'not met'})."
        )
    if not args.no_factors:
        convergence_factors(args.n, args.placement)


def convergence_factors(n_max: int, placement: str) -> None:
    """V(2,2) from zero to `1e-10`: the mean factor per cycle, `k = 1` and variable `k`."""
    print("\n| grid | V(2,2) factor, k = 1 | V(2,2) factor, variable k |\n|---|---|---|")
    n = 64
    while n <= n_max + 1:
        size = n - 1 if placement == "vertex" else n
        grid, k, s = problem(size, placement)
        factors = []
        for kk in (jnp.ones_like(k), k):
            _, report = solve(grid, "dirichlet", kk, s, tol=1e-10)
            assert bool(report.converged)
            factors.append(float(report.convergence_factor))
        print(f"| {size}² | {factors[0]:.3f} | {factors[1]:.3f} |")
        n *= 2


if __name__ == "__main__":
    main()
