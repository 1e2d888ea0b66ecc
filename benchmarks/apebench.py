"""APEBench's advection baseline training, timed side by side with trainax_fd.

The training APEBench runs for `1d_diff_adv` with `network_config="Conv;34;10;relu"`,
`train_config="one"` and `optim_config="adam;10_000;constant;1e-4"`: its trainax 0.0.2
`SupervisedTrainer` (windows of 2 levels from 50 trajectories of 51 levels, batch 20) steps
pdequinox's `ConvNet` (31,757 parameters) 10,000 times with Adam. trainax_fd trains on the same
data (APEBench's initial conditions, drawn by `trainax_fd.reproductions.apebench_baseline`)
with its native `Trainer` and `Supervised(1)`, once with the very same pdequinox network and
once with `arch.ConvNet` (the same architecture, padding from the stencil core).

Reported per training: `total` (the 10,000 steps from a fresh process state, compilation
included: `jax.clear_caches()` first, clock stopped after `block_until_ready`), `compile` (JAX's
tracing, lowering and compiling, from `jax.monitoring` events), and `ms/step` = (total -
compile) / steps. Ratios are APEBench's / trainax_fd's. Checks: every loss finite, the last
1,000 steps' mean loss 100x below the first step's (10x for runs under 5,000 steps), and the
trained emulators' geometric-mean nRMSE over 100 test steps printed (the same evaluation for
all).

Install and run from the repository root (APEBench pins exponax 0.1.0, trainax 0.0.2 and
pdequinox 0.1.2; none of them is a dependency of trainax_fd):

    pip install -e .
    pip install apebench==0.1.1   # optional: without it, trainax (+ pdequinox) if installed
    python benchmarks/apebench.py                 # 10,000 steps, ~5 min on 2 cores
    python benchmarks/apebench.py --steps 2000    # shorter
"""

import argparse
import importlib
import os
import statistics
import sys
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from trainax_fd.configurations import Supervised
from trainax_fd.evaluation import evaluate, nRMSE
from trainax_fd.reproductions import apebench_baseline as ape
from trainax_fd.trainers import Trainer


def _optional(name: str):
    """The installed package `name`, or None. This script's folder, first on `sys.path`, is
    left out of the search: the script's own name would shadow the `apebench` package."""
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    sys.path[:] = [p for p in saved if os.path.abspath(p or os.curdir) != here]
    try:
        with warnings.catch_warnings():  # trainax and apebench import tqdm.autonotebook
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError:
        return None
    finally:
        sys.path[:] = saved


apebench, trainax, pdequinox = (_optional(n) for n in ("apebench", "trainax", "pdequinox"))

TARGET = 3.0  # trainax_fd >= 3x faster per step
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_COMPILE = [0.0]


def _listener(event: str, duration: float, **_) -> None:
    if event in COMPILE_EVENTS:
        _COMPILE[0] += duration


jax.monitoring.register_event_duration_secs_listener(_listener)


def timed(train):
    """`train()` from cleared caches: `(total s, compile s, losses)`."""
    jax.clear_caches()
    _COMPILE[0] = 0.0
    start = time.perf_counter()
    model, losses = train()
    jax.block_until_ready((model, losses))
    return time.perf_counter() - start, _COMPILE[0], model, np.asarray(losses)


def apebench_training(steps: int):
    """APEBench's own pipeline: its scenario builds the trainer and the network."""
    scenario = apebench.scenarios.difficulty.Advection(optim_config=f"adam;{steps};constant;1e-4")
    trainer = scenario.get_trainer(train_config="one")
    init_key, shuffle_key = jax.random.split(jax.random.PRNGKey(0))
    net = scenario.get_neural_stepper(
        task_config="predict", network_config="Conv;34;10;relu", key=init_key
    )

    def train():
        # APEBench's trainer carries a (here empty) callback: (model, losses, aux history)
        model, losses, _ = trainer(net, shuffle_key, record_loss_every=1, spawn_tqdm=False)
        return model, jnp.asarray(losses)

    return train


def trainax_training(data, steps: int, net):
    """trainax 0.0.2 alone (no APEBench): its `SupervisedTrainer` on the same data and net."""
    trainer = trainax.trainer.SupervisedTrainer(
        data, optimizer=optax.adam(1e-4), num_training_steps=steps, batch_size=20,
        num_rollout_steps=1,
    )  # fmt: skip

    def train():
        model, losses = trainer(net, jax.random.PRNGKey(0), spawn_tqdm=False)
        return model, jnp.asarray(losses)

    return train


def native_training(data, steps: int, net):
    trainer = Trainer(data, Supervised(1), optax.adam(1e-4), num_steps=steps, batch_size=20,
                      chunk_size=1000)  # fmt: skip

    def train():
        result = trainer(net, key=jax.random.key(0), progress=False)
        return result.model, result.loss_history

    return train


def pdequinox_net(key):
    return pdequinox.arch.ConvNet(1, 1, 1, hidden_channels=34, depth=10,
                                  activation=jax.nn.relu, key=key)  # fmt: skip


def compute_floor(data, net, steps: int = 1000) -> float:
    """ms of one optimizer step with nothing but the step: `value_and_grad` of the one-step
    MSE and the Adam update of `net` on one fixed batch of 20 windows, one jitted call per
    step (XLA's layouts at top level), dispatched back to back. No trainer can step faster."""
    optimizer = optax.adam(1e-4)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    x, y = jnp.asarray(data[:20, 0]), jnp.asarray(data[:20, 1])

    @jax.jit
    def step(params, state):
        def loss(p):
            model = eqx.combine(p, static)
            return jnp.mean(jnp.square(jax.vmap(model)(x) - y))

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    state = optimizer.init(params)
    jax.block_until_ready(step(params, state))
    start = time.perf_counter()
    for _ in range(steps):
        params, state, _ = step(params, state)
    jax.block_until_ready(params)
    return (time.perf_counter() - start) / steps * 1e3


def check(name: str, losses: np.ndarray) -> None:
    assert np.isfinite(losses).all(), f"{name}: a non-finite loss"
    tail = float(np.mean(losses[-min(1000, len(losses) // 2) :]))
    factor = 100 if len(losses) >= 5000 else 10  # a short run has not gone as far
    assert tail < losses[0] / factor, f"{name}: loss {losses[0]:.3e} -> {tail:.3e}, not trained"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, medians")
    args = parser.parse_args()
    data = ape.make_data()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs; "
        f"apebench {'absent' if apebench is None else apebench.__version__}, trainax "
        f"{'absent' if trainax is None else 'present'}, pdequinox "
        f"{'absent' if pdequinox is None else 'present'}; {args.steps} steps, batch 20"
    )
    runs = {}
    if apebench is not None:
        runs["APEBench (trainax + pdequinox)"] = apebench_training(args.steps)
    elif trainax is not None and pdequinox is not None:
        net = pdequinox_net(jax.random.key(0))
        runs["trainax + pdequinox"] = trainax_training(data.train, args.steps, net)
    reference = next(iter(runs), None)
    if pdequinox is not None:
        runs["trainax_fd, pdequinox ConvNet"] = native_training(
            data.train, args.steps, pdequinox_net(jax.random.key(0))
        )
    runs["trainax_fd, arch.ConvNet"] = native_training(
        data.train, args.steps, ape.convnet(jax.random.key(0), init="uniform")
    )
    results = {name: [] for name in runs}
    models = {}
    for _ in range(args.repeats):  # interleaved
        for name, train in runs.items():
            total, compiled, model, losses = timed(train)
            check(name, losses)
            results[name].append((total, compiled))
            models[name] = model
    rows = []
    for name, times in results.items():
        total = statistics.median(t for t, _ in times)
        compiled = statistics.median(c for _, c in times)
        per_step = (total - compiled) / args.steps * 1e3
        gmean = float(evaluate(models[name], data.test, metrics=(nRMSE(),), num_steps=100).gmean[0])
        rows.append((name, total, compiled, per_step, gmean))
    base = {name: (t, s) for name, t, _, s, _ in rows}
    print("\n| training | total s | compile s | ms/step | ratio total | ratio ms/step | nRMSE |")
    print("|---|---|---|---|---|---|---|")
    for name, total, compiled, per_step, gmean in rows:
        if reference is not None and name != reference:
            ratios = f"{base[reference][0] / total:.2f} | {base[reference][1] / per_step:.2f}"
        else:
            ratios = "| " if reference is None else "1 | 1"
        print(f"| {name} | {total:.1f} | {compiled:.1f} | {per_step:.2f} | {ratios} | "
              f"{gmean:.4f} |")  # fmt: skip
    # the network's forward and backward pass: 2 x 3 x multiply-adds of the 11 convolutions
    macs = 20 * 160 * (1 * 34 * 3 + 9 * 34 * 34 * 3 + 34 * 1 * 3)
    floor = compute_floor(data.train, ape.convnet(jax.random.key(0), init="uniform"))
    print(
        f"\ncompute floor (one jitted step on a fixed batch, {6 * macs / 1e6:.0f} MFLOP): "
        f"{floor:.2f} ms/step, {6 * macs / floor / 1e6:.0f} GFLOP/s"
    )
    if reference is not None:
        best = max(base[reference][1] / s for n, (_, s) in base.items() if n != reference)
        verdict = "met" if best >= TARGET else "not met"
        print(
            f"per-step target >= {TARGET:g}x: {verdict} (best {best:.2f}x; the floor allows "
            f"{base[reference][1] / floor:.2f}x)"
        )


if __name__ == "__main__":
    main()
