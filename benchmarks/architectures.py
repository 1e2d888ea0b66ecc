"""Per-step training time of a ConvNet emulator: `trainax_fd.arch` against pdequinox and Equinox.

The same network, trained the same way, written three ways, timed side by side in one process:

- `trainax_fd`: `trainax_fd.arch.ConvNet(1, 1, 1, width=W, depth=D, kernel_size=K,
  activation=act, residual=True)` (convolutions padded by the stencil core's `Periodic`).
- `pdequinox`: `pdequinox.arch.ConvNet(1, 1, 1, hidden_channels=W, depth=D - 1, kernel_size=K,
  activation=act)` (`depth` counts hidden layers there) with `u + f(u)` around it; only when
  pdequinox is installed.
- `equinox`: a stack of `eqx.nn.Conv1d(..., padding="SAME", padding_mode="CIRCULAR")` with
  `u + f(u)` around it, what a user writes with Equinox alone.

All three get the same weights (copied from the trainax_fd net), so with the same batches they
must give the same loss history (checked: relative 1e-4 on the first loss, 1e-2 on the
last). The data: 64 trajectories of 1D periodic advection, 256 points, 21 time levels;
`Supervised(5)` rollouts, batch 32, Adam(1e-3). Each network trains in two loops:

- `Trainer`: `trainax_fd.trainers.Trainer` (the same trainer for all three);
- `plain loop`: what a user writes without it: `eqx.filter_jit` over a `lax.scan` of optax
  steps, windows gathered by index inside the scan, the rollout a `lax.scan`. Its
  convolutions stay in Equinox's channels-first layout, which XLA:CPU runs far slower inside
  loops, so it takes `--plain-steps` (10) steps only;
- `plain loop + canonical_convolutions`: the same loop through `trainax_fd.canonical_convolutions`
  (the rewrite the Trainer applies), `--steps` steps.

Construction: each package's constructor call from cold (after `jax.clear_caches()`), the
random weights' compilation included; medians of `--repeats`.

Timing, per loop and network: `compile` is the time JAX spent tracing, lowering and compiling
in the first (cold, after `jax.clear_caches()`) call; `per step` is the cached call's wall time,
less any compilation, over the steps. Medians of `--repeats`, networks interleaved. Ratios are
theirs / trainax_fd's per step (above 1: trainax_fd is faster). `GFLOP/s` counts the
convolutions only: `3 x 2 x batch x rollout x points x sum(c_in c_out K)` per step (forward, and
the gradients with respect to the input and the weights), beside the machine's float32
matrix-multiply peak measured here (`jnp.dot` of 2048 x 2048 matrices).

Install and run from the repository root (pdequinox is a comparison only, never a dependency):

    pip install -e .                # trainax_fd (equinox comes with it)
    pip install pdequinox==0.1.2    # optional
    python benchmarks/architectures.py                   # ~10 min on 2 cores
    python benchmarks/architectures.py --quick           # 30 steps, 1 repeat, ~2 min
    python benchmarks/architectures.py --activation relu --loops trainer
"""

import argparse
import functools
import importlib.metadata
import itertools
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trainax_training import advection_data, cpu_mark, load_note, measure, others_note

from trainax_fd import arch, canonical_convolutions, configurations, trainers

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pdequinox
except ImportError:
    pdequinox = None

TARGET = 1.5  # trainax_fd's ConvNet >= 1.5x faster per step than pdequinox's
ACTIVATIONS = {"gelu": jax.nn.gelu, "relu": jax.nn.relu, "tanh": jnp.tanh}


class Residual(eqx.Module):
    """`u + f(u)`."""

    f: eqx.Module

    def __call__(self, u):
        return u + self.f(u)


class EquinoxConvNet(eqx.Module):
    """Circularly padded `eqx.nn.Conv1d` layers with an activation between them."""

    layers: tuple[eqx.nn.Conv1d, ...]
    activation: Callable = eqx.field(static=True)

    def __init__(self, channels: list[int], kernel: int, activation: Callable, *, key):
        keys = jax.random.split(key, len(channels) - 1)
        self.layers = tuple(
            eqx.nn.Conv1d(a, b, kernel, padding="SAME", padding_mode="CIRCULAR", key=k)
            for a, b, k in zip(channels[:-1], channels[1:], keys)
        )
        self.activation = activation

    def __call__(self, u):
        for layer in self.layers[:-1]:
            u = self.activation(layer(u))
        return self.layers[-1](u)


def constructors(width: int, depth: int, kernel: int, activation: Callable) -> dict:
    """`{package: () -> network}`: each package's own constructor call (random weights)."""

    def ours():
        return arch.ConvNet(
            1, 1, 1, width=width, depth=depth, kernel_size=kernel, activation=activation,
            residual=True, key=jax.random.key(1),
        )  # fmt: skip

    out = {"trainax_fd": ours}
    if pdequinox is not None:
        out["pdequinox"] = lambda: pdequinox.arch.ConvNet(
            1, 1, 1, hidden_channels=width, depth=depth - 1, kernel_size=kernel,
            activation=activation, key=jax.random.key(2),
        )  # fmt: skip
    channels = [1] + [width] * (depth - 1) + [1]
    out["equinox"] = lambda: EquinoxConvNet(channels, kernel, activation, key=jax.random.key(3))
    return out


def construction_seconds(makers: dict, repeats: int) -> dict[str, float]:
    """Median wall time of each constructor call from cold (after `jax.clear_caches()`): the
    random draws' compilation included, packages interleaved."""
    times = {name: [] for name in makers}
    for _ in range(repeats):
        for name, make in makers.items():
            jax.clear_caches()
            start = time.perf_counter()
            jax.block_until_ready(eqx.filter(make(), eqx.is_array))
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def networks(makers: dict) -> dict[str, eqx.Module]:
    """The three networks, the others holding the trainax_fd net's weights."""
    ours = makers["trainax_fd"]()
    weights = [layer.weight for layer in ours.layers]
    biases = [layer.bias.reshape(-1, 1) for layer in ours.layers]

    def copy(net):
        layers = lambda n: n.f.layers  # noqa: E731
        for leaf in ("weight", "bias"):
            net = eqx.tree_at(
                lambda n, leaf=leaf: [getattr(lay, leaf) for lay in layers(n)],
                net,
                weights if leaf == "weight" else biases,
            )
        return net

    return {"trainax_fd": ours} | {
        name: copy(Residual(make())) for name, make in makers.items() if name != "trainax_fd"
    }


def trainer_runner(net, data, steps: int, batch: int, rollout: int, optimizer) -> Callable:
    def run(_):
        trainer = trainers.Trainer(
            data, configurations.Supervised(rollout), optimizer, num_steps=steps, batch_size=batch
        )
        result = trainer(net, key=jax.random.key(0), progress=False)
        return result.stepper, result.loss_history

    return run


def plain_training(net, data, samples, starts, optimizer, rollout: int):
    """A user's own compiled loop: one `lax.scan` over optax steps, MSE over the rollout."""
    params, static = eqx.partition(net, eqx.is_array)

    def loss_fn(params, windows):
        model = eqx.combine(params, static)

        def one(window):
            def step(u, target):
                u = model(u)
                return u, jnp.mean((u - target) ** 2)

            return lax.scan(step, window[0], window[1:])[1].mean()

        return jax.vmap(one)(windows).mean()

    def body(carry, index):
        params, state = carry
        windows = jax.vmap(lambda s, t: lax.dynamic_slice_in_dim(data[s], t, rollout + 1))(*index)
        loss, grads = jax.value_and_grad(loss_fn)(params, windows)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    init = (params, optimizer.init(params))
    (params, _), losses = lax.scan(body, init, (samples, starts))
    return eqx.combine(params, static), losses


def plain_runner(
    net, data, steps: int, batch: int, rollout: int, optimizer, *, canonical: bool
) -> Callable:
    rng = np.random.default_rng(0)
    samples = jnp.asarray(rng.integers(0, data.shape[0], (steps, batch)))
    starts = jnp.asarray(rng.integers(0, data.shape[1] - rollout, (steps, batch)))

    def run(_):
        return train(net, data, samples, starts, optimizer, rollout)

    train = eqx.filter_jit(canonical_convolutions(plain_training) if canonical else plain_training)
    return run


LOOPS = {
    "trainer": ("Trainer", trainer_runner),
    "plain": ("plain loop", functools.partial(plain_runner, canonical=False)),
    "canonical": ("plain + canonical", functools.partial(plain_runner, canonical=True)),
}


def matmul_peak(n: int = 2048, repeats: int = 7) -> float:
    """Median float32 GFLOP/s of `jnp.dot` on `n x n` matrices."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    b = jax.random.normal(jax.random.key(1), (n, n))
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dot(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def check_histories(rows: dict[str, dict], loop: str) -> None:
    ours = rows["trainax_fd"]["history"]
    for name, row in rows.items():
        h = row["history"]
        if not np.all(np.isfinite(h)):
            raise AssertionError(f"{loop}: {name} has non-finite losses")
        first = abs(h[0] - ours[0]) / abs(ours[0])
        last = abs(h[-1] - ours[-1]) / abs(ours[-1])
        if not (first < 1e-4 and last < 1e-2):
            raise AssertionError(
                f"{loop}: {name}'s losses differ from trainax_fd's (same weights, same batches):"
                f" first {h[0]:.6e} vs {ours[0]:.6e}, last {h[-1]:.6e} vs {ours[-1]:.6e}"
            )
        row["note"] = f"loss {h[0]:.4e} -> {h[-1]:.4e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps (Trainer)")
    parser.add_argument(
        "--plain-steps", type=int, default=10, help="optimizer steps in the slow plain loop"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=5, help="convolutions (trainax_fd's depth)")
    parser.add_argument("--kernel", type=int, default=5)
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="gelu")
    parser.add_argument(
        "--loops", default="trainer,canonical,plain", help="comma list of trainer, canonical, plain"
    )
    parser.add_argument("--quick", action="store_true", help="30 steps, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.plain_steps, args.repeats = 30, 5, 1
    loops = [loop.strip() for loop in args.loops.split(",")]
    if unknown := set(loops) - set(LOOPS):
        parser.error(f"--loops: unknown {sorted(unknown)}; choose from {sorted(LOOPS)}")

    print(f"jax {jax.__version__}, equinox {eqx.__version__}, {jax.default_backend()}")
    if pdequinox is None:
        print("pdequinox not installed: compared with the Equinox network only")
    else:
        print(f"pdequinox {importlib.metadata.version('pdequinox')} installed")
    rollout, batch, points = 5, 32, 256
    data = advection_data(64, 21, points)
    makers = constructors(args.width, args.depth, args.kernel, ACTIVATIONS[args.activation])
    built = construction_seconds(makers, args.repeats)
    nets = networks(makers)
    channels = [1] + [args.width] * (args.depth - 1) + [1]
    macs = sum(a * b * args.kernel for a, b in itertools.pairwise(channels))
    flops = 3 * 2 * batch * rollout * points * macs
    counts = {name: sum(x.size for x in jax.tree.leaves(eqx.filter(n, eqx.is_array)))
              for name, n in nets.items()}  # fmt: skip
    if len(set(counts.values())) != 1:
        raise AssertionError(f"the networks differ in parameter count: {counts}")
    peak = matmul_peak()
    print(
        f"data {data.shape}, rollout {rollout}, batch {batch}, {args.steps} Adam steps; "
        f"ConvNet width {args.width}, {args.depth} convolutions, kernel {args.kernel}, "
        f"{args.activation}, residual, periodic; {counts['trainax_fd']} parameters; "
        f"{flops / 1e9:.2f} GFLOP of convolutions per step; matmul peak {peak:.0f} GFLOP/s; "
        f"{load_note()}"
    )
    print("\n== construction from cold (random weights drawn, compilation included)")
    for name, seconds in built.items():
        ratio = seconds / built["trainax_fd"]
        print(f"{name:<12} {seconds:6.2f} s  ratio {ratio:5.2f}")
    optimizer = optax.adam(1e-3)  # one object: static in every jit cache
    results = {}
    for loop in loops:
        title, make = LOOPS[loop]
        steps = args.plain_steps if loop == "plain" else args.steps
        runs = {
            name: make(net, data, steps, batch, rollout, optimizer) for name, net in nets.items()
        }
        mark = cpu_mark()
        rows = measure(runs, None, args.repeats)  # each run trains its own network
        print(f"\n== {title}  ({others_note(mark)})")
        check_histories(rows, title)
        header = ("network", "compile s", "per step ms", "GFLOP/s", "ratio")
        print("{:<12} {:>9} {:>11} {:>8} {:>6}  note".format(*header))
        for name, row in rows.items():
            step = (row["run"] - row["warm_compile"]) / steps
            row["per_step"] = step
            ratio = step / rows["trainax_fd"]["per_step"]
            print(
                f"{name:<12} {row['compile']:9.2f} {1e3 * step:11.2f} {flops / step / 1e9:8.1f} "
                f"{ratio:6.2f}  {row['note']}"
            )
        results[loop] = rows

    print("\n== summary (per step, theirs / trainax_fd)")
    for loop, rows in results.items():
        for name in (n for n in rows if n != "trainax_fd"):
            ratio = rows[name]["per_step"] / rows["trainax_fd"]["per_step"]
            verdict = ""
            if name == "pdequinox" and loop == "trainer":
                verdict = f"  target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'}"
            print(f"{LOOPS[loop][0]:<17} {name:<10} {ratio:5.2f}x{verdict}")


if __name__ == "__main__":
    main()
