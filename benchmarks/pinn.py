"""Physics-informed training: trainax_fd against DeepXDE on the manufactured Poisson problem,
and the cost of `trainax_fd.autodiff.laplacian` against `jnp.trace(jax.hessian(f))`.

`-Δu = 2π² sin(πx) sin(πy)` on the unit square, `u = 0` on the boundary, exact solution
`sin(πx) sin(πy)`. Both packages train the same network (tanh MLP, 4 hidden layers of 50,
Glorot-normal weights, zero biases) on the same numbers of fixed collocation points
(trainax_fd: Halton; DeepXDE: its default Hammersley) with the same schedule: Adam(1e-3),
then L-BFGS (history 100, strong-Wolfe / zoom line search), boundary values as a penalty
(loss weights 1 and 100) and imposed exactly (`u = 4x(1-x)y(1-y) N(x, y)`). Every `--every`
steps the relative L2 error against the exact solution on a 100 x 100 grid is recorded with
a timestamp (the time spent computing it is not counted); the run stops at the first check at
or below the target. Seconds per step come from separate runs of `--timing-steps` Adam and
L-BFGS steps without checks.

trainax_fd runs every training twice: the first run includes compilation, the second is the
run time; compile time is their difference. `cold s` is the time to the target error of a
first run, compilation included (DeepXDE: its only run); `to 1e-3 s` that of a compiled run.
An L-BFGS step of either takes about one line-search evaluation (trainax_fd reuses the
line search's value and gradient on the fixed points). DeepXDE runs its
PyTorch backend (eager, nothing to compile) once. Install it (never a dependency of
trainax_fd) with

    pip install deepxde torch   # DeepXDE 1.15 on PyTorch 2.13 (CPU) measured

Without DeepXDE, trainax_fd is timed alone.

    python benchmarks/pinn.py                    # both variants, up to the full schedule
    python benchmarks/pinn.py --small            # 5x fewer steps and points
    python benchmarks/pinn.py --part laplacian   # only the Laplacian's cost
    python benchmarks/pinn.py --torch-threads 1  # PyTorch on one thread (faster on a busy VM)
"""

import argparse
import importlib.util
import os
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import trainax_fd.autodiff as ad
from trainax_fd.data import Sampler
from trainax_fd.reproductions import pinn
from trainax_fd.trainers import AbstractHostCallback, Trainer

TARGET = 1e-3


class Reached(Exception):
    """Raised by the callback once the target error is reached and `--stop` is set."""


class _Log:
    """Rows `(step, seconds, error)`; hashed by identity, so the trainer's compiled chunk
    does not change as rows are added."""

    def __init__(self, stop: bool):
        self.stop = stop
        self.restart()

    def restart(self) -> None:
        """Empty rows, the clock from now (the same log, so the same compiled programs)."""
        self.rows: list[tuple[int, float, float]] = []
        self.start = time.perf_counter()
        self.excluded = 0.0

    def record(self, step: int, error_fn) -> bool:
        """Record the error at `step`; whether the run should stop here."""
        now = time.perf_counter()
        error = error_fn()
        self.rows.append((step, now - self.start - self.excluded, error))
        self.excluded += time.perf_counter() - now
        return self.stop and error <= TARGET


class ErrorLog(AbstractHostCallback):
    """Between chunks, every `every` steps: the relative L2 error of the solution, timed."""

    every: int = eqx.field(static=True)
    log: _Log = eqx.field(static=True)
    objective: ad.PINN
    test: jax.Array
    exact: jax.Array

    def __call__(self, result, num_steps):
        def error():
            u = pinn.evaluate(self.objective, result.model, self.test)
            return pinn.relative_l2(u, self.exact)

        if self.log.record(int(result.step), error):
            raise Reached


def summarise(rows) -> dict:
    """Time to the target error (the first check at or below it), the last error."""
    steps = np.array([r[0] for r in rows])
    seconds = np.array([r[1] for r in rows])
    errors = np.array([r[2] for r in rows])
    hit = np.nonzero(errors <= TARGET)[0]
    return {
        "to_target": seconds[hit[0]] if len(hit) else np.nan,
        "step_at_target": int(steps[hit[0]]) if len(hit) else -1,
        "final": float(errors[-1]),
        "total": float(seconds[-1]),
    }


def run_trainax_fd(variant, args, test, exact) -> dict:
    objective, draw = pinn.poisson(
        variant, interior=args.interior, boundary_points=args.boundary, weight=100.0
    )
    model = pinn.network(jax.random.key(args.seed), 50, 4)
    source = Sampler(draw.fixed(key=jax.random.key(args.seed + 1)))
    adam = optax.adam(1e-3)
    lbfgs = optax.lbfgs(memory_size=args.history)
    key = jax.random.key(args.seed + 2)
    log = _Log(args.stop)  # one log: the second run's trainers equal the first's (cached)
    callback = ErrorLog(args.every, log, objective, test, exact)
    first = Trainer(source, objective, adam, num_steps=args.adam_steps, callbacks=[callback])
    second = Trainer(
        source, objective, lbfgs, num_steps=args.adam_steps + args.lbfgs_steps,
        callbacks=[callback],
    )  # fmt: skip
    totals = []
    for _ in range(2):  # the first run compiles; the second is the run time
        log.restart()
        try:
            result = first(model, key=key, progress=False)
            result = second(result, new_optimizer=True, progress=False)
        except Reached:
            pass
        totals.append(log.rows[-1][1])
    out = summarise(log.rows)
    out["compile"] = totals[0] - totals[1]
    # seconds per step: `--timing-steps` of each optimizer, no callbacks, after a first run
    n = args.timing_steps
    first = Trainer(source, objective, adam, num_steps=n)
    second = Trainer(source, objective, lbfgs, num_steps=2 * n)
    for _ in range(2):
        start = time.perf_counter()
        result = jax.block_until_ready(first(model, key=key, progress=False))
        middle = time.perf_counter()
        jax.block_until_ready(second(result, new_optimizer=True, progress=False))
        end = time.perf_counter()
    out["adam_ms"], out["lbfgs_ms"] = 1e3 * (middle - start) / n, 1e3 * (end - middle) / n
    return out


def run_deepxde(variant, args, test, exact) -> dict:
    import deepxde as dde
    import torch

    class DeepXDELog(dde.callbacks.Callback):
        def __init__(self, log: _Log, every: int):
            super().__init__()
            self.log, self.every, self.last = log, every, -1

        def on_epoch_end(self):
            step = int(self.model.train_state.step)
            if step % self.every == 0 and step != self.last:
                self.last = step
                if self.log.record(step, self.error):
                    self.model.stop_training = True

        def error(self):
            return pinn.relative_l2(self.model.predict(test)[:, 0], exact)

    def pde(x, y):
        laplacian = dde.grad.hessian(y, x, i=0, j=0) + dde.grad.hessian(y, x, i=1, j=1)
        source = 2 * np.pi**2 * torch.sin(np.pi * x[:, 0:1]) * torch.sin(np.pi * x[:, 1:2])
        return -laplacian - source

    def build():
        dde.config.set_random_seed(args.seed)
        geometry = dde.geometry.Rectangle([0.0, 0.0], [1.0, 1.0])
        net = dde.nn.FNN([2] + [50] * 4 + [1], "tanh", "Glorot normal")
        if variant == "penalty":
            on_boundary = lambda _, on_boundary: on_boundary  # noqa: E731
            bcs = [dde.icbc.DirichletBC(geometry, lambda x: 0.0, on_boundary)]
            data = dde.data.PDE(geometry, pde, bcs, num_domain=args.interior,
                                num_boundary=args.boundary, num_test=1000)  # fmt: skip
            return dde.Model(data, net), [1.0, 100.0]
        data = dde.data.PDE(geometry, pde, [], num_domain=args.interior, num_test=1000)
        net.apply_output_transform(
            lambda x, y: 4 * x[:, 0:1] * (1 - x[:, 0:1]) * x[:, 1:2] * (1 - x[:, 1:2]) * y
        )
        return dde.Model(data, net), [1.0]

    def lbfgs_options(steps: int, every: int) -> None:
        dde.optimizers.config.set_LBFGS_options(maxcor=args.history, maxiter=steps)
        options = dde.optimizers.config.LBFGS_options
        options["iter_per_step"] = every  # the callback sees the error every `every` steps
        options["fun_per_step"] = int(1.25 * every)

    model, weights = build()
    log = _Log(args.stop)
    callback = DeepXDELog(log, args.every)
    model.compile("adam", lr=1e-3, loss_weights=weights)
    log.start = time.perf_counter()
    model.train(iterations=args.adam_steps, display_every=args.adam_steps, verbose=0,
                callbacks=[callback])  # fmt: skip
    if not model.stop_training:
        lbfgs_options(args.lbfgs_steps, args.every)
        model.compile("L-BFGS", loss_weights=weights)
        model.train(verbose=0, callbacks=[callback])
    out = summarise(log.rows)
    n = args.timing_steps
    model, weights = build()
    model.compile("adam", lr=1e-3, loss_weights=weights)
    start = time.perf_counter()
    model.train(iterations=n, display_every=n, verbose=0)
    middle = time.perf_counter()
    lbfgs_options(n, n)
    model.compile("L-BFGS", loss_weights=weights)
    model.train(verbose=0)
    end = time.perf_counter()
    steps = int(model.train_state.step) - n  # L-BFGS may stop early, converged
    out["adam_ms"], out["lbfgs_ms"] = 1e3 * (middle - start) / n, 1e3 * (end - middle) / steps
    return out


@eqx.filter_jit
def laplacians(lap, net, x):
    return jax.vmap(lambda p: lap(net, p))(x)


@eqx.filter_jit
@eqx.filter_value_and_grad
def loss_and_grad(net, lap, x):
    return jnp.mean(jax.vmap(lambda p: lap(net, p))(x) ** 2)


def laplacian_costs(points: int, repeats: int) -> None:
    """The Laplacian of a 4 x 50 tanh MLP at `points` points, alone and inside the gradient of
    a mean-square loss (a PINN step), for each method against the Hessian's trace. Runs are
    interleaved (method by method, repeat by repeat) so that load on the machine hits all
    alike; medians."""
    methods = {
        "collapsed (default)": lambda f, x: ad.laplacian(f, x),
        "forward": lambda f, x: ad.laplacian(f, x, method="forward"),
        "forward_reverse": lambda f, x: ad.laplacian(f, x, method="forward_reverse"),
        "taylor": lambda f, x: ad.laplacian(f, x, method="taylor"),
        "trace(jax.hessian)": lambda f, x: jnp.trace(jax.hessian(f)(x)),
    }
    print(f"\nLaplacian of a 4 x 50 tanh MLP at {points} points, medians of {repeats} "
          "interleaved runs; ms (the Hessian's trace / this):")  # fmt: skip
    print(f"{'dim':>4} {'method':<20} {'values ms':>16} {'loss+grad ms':>16} {'compile s':>10}")
    for dim in (2, 3, 10):
        net = pinn.network(jax.random.key(dim), 50, 4, dim)
        x = jax.random.uniform(jax.random.key(100 + dim), (points, dim))
        calls = {}
        for name, lap in methods.items():
            start = time.perf_counter()
            jax.block_until_ready(laplacians(lap, net, x))
            jax.block_until_ready(loss_and_grad(net, lap, x))
            calls[name] = time.perf_counter() - start  # compile and one run of each
        times = {name: ([], []) for name in methods}
        for _ in range(repeats):
            for name, lap in methods.items():
                for fn, out in ((laplacians, times[name][0]), (loss_and_grad, times[name][1])):
                    args = (lap, net, x) if fn is laplacians else (net, lap, x)
                    start = time.perf_counter()
                    jax.block_until_ready(fn(*args))
                    out.append(time.perf_counter() - start)
        reference = np.asarray(laplacians(methods["trace(jax.hessian)"], net, x))
        for lap in methods.values():
            got = np.asarray(laplacians(lap, net, x))
            assert np.allclose(got, reference, rtol=1e-3, atol=1e-3 * np.abs(reference).max())
        median = {k: (np.median(v[0]), np.median(v[1])) for k, v in times.items()}
        base_v, base_g = median["trace(jax.hessian)"]
        for name, (run_v, run_g) in median.items():
            compile_s = calls[name] - run_v - run_g
            print(f"{dim:>4} {name:<20} {1e3 * run_v:>8.2f} ({base_v / run_v:4.1f}x) "
                  f"{1e3 * run_g:>8.2f} ({base_g / run_g:4.1f}x) {compile_s:>10.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="5x fewer steps and points")
    parser.add_argument("--part", choices=["all", "training", "laplacian"], default="all")
    parser.add_argument("--variants", nargs="+", default=["penalty", "exact"])
    parser.add_argument("--adam-steps", type=int)
    parser.add_argument("--lbfgs-steps", type=int)
    parser.add_argument("--interior", type=int)
    parser.add_argument("--boundary", type=int)
    parser.add_argument("--history", type=int, default=100, help="L-BFGS history, both")
    parser.add_argument("--every", type=int, default=50, help="steps between error checks")
    parser.add_argument(
        "--no-stop", dest="stop", action="store_false",
        help="run the whole schedule (default: stop once the error reaches the target)",
    )  # fmt: skip
    parser.add_argument(
        "--torch-threads", type=int, help="PyTorch's threads (default: its own choice)"
    )
    parser.add_argument("--timing-steps", type=int, default=200, help="steps timed per optimizer")
    parser.add_argument("--repeats", type=int, default=20, help="Laplacian timing repeats")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scale = 5 if args.small else 1
    for name, full in (("adam_steps", 2000), ("lbfgs_steps", 3000), ("interior", 2000),
                       ("boundary", 400)):  # fmt: skip
        if getattr(args, name) is None:
            setattr(args, name, full // scale)
    have_deepxde = all(importlib.util.find_spec(m) for m in ("deepxde", "torch"))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; jax "
          f"{jax.__version__}, backend {jax.default_backend()}")  # fmt: skip
    if have_deepxde and args.part != "laplacian":
        os.environ.setdefault("DDE_BACKEND", "pytorch")
        import deepxde
        import torch

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        print(f"DeepXDE {deepxde.__version__} (backend {deepxde.backend.backend_name}), "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    if args.part != "laplacian":
        test = np.asarray(pinn.SQUARE.sample(10_000, method="grid"))
        exact = np.asarray(jax.vmap(pinn.poisson_exact)(jnp.asarray(test)))
        print(f"Poisson, tanh MLP 4 x 50, {args.interior} interior points, {args.boundary} "
              f"boundary points (penalty), Adam(1e-3) {args.adam_steps} steps, then L-BFGS "
              f"(history {args.history}) up to {args.lbfgs_steps} steps; error every "
              f"{args.every} steps; target relative L2 {TARGET:g}")  # fmt: skip
        header = (f"{'variant':<8} {'package':<11} {'compile s':>9} {'cold s':>7} "
                  f"{'to 1e-3 s':>10} {'at step':>8} {'Adam ms':>8} {'L-BFGS ms':>10} "
                  f"{'final err':>10} {'run s':>7}")  # fmt: skip
        print(header)
        for variant in args.variants:
            runs = {"trainax_fd": run_trainax_fd(variant, args, test, exact)}
            if have_deepxde:
                runs["DeepXDE"] = run_deepxde(variant, args, test, exact)
            for name, r in runs.items():
                compile_s = f"{r['compile']:9.2f}" if "compile" in r else f"{'-':>9}"
                r["cold"] = r["to_target"] + r.get("compile", 0.0)
                print(f"{variant:<8} {name:<11} {compile_s} {r['cold']:>7.2f} "
                      f"{r['to_target']:>10.2f} {r['step_at_target']:>8} {r['adam_ms']:>8.2f} "
                      f"{r['lbfgs_ms']:>10.2f} {r['final']:>10.2e} {r['total']:>7.1f}")  # fmt: skip
            if have_deepxde:
                ours, theirs = runs["trainax_fd"], runs["DeepXDE"]
                print(f"{variant:<8} {'ratio':<11} {'':>9} {theirs['cold'] / ours['cold']:>7.2f} "
                      f"{theirs['to_target'] / ours['to_target']:>10.2f} {'':>8} "
                      f"{theirs['adam_ms'] / ours['adam_ms']:>8.2f} "
                      f"{theirs['lbfgs_ms'] / ours['lbfgs_ms']:>10.2f}")  # fmt: skip
    if args.part != "training":
        laplacian_costs(2048, args.repeats)


if __name__ == "__main__":
    main()
