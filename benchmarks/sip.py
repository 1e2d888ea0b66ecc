"""One SIP training step of the heat inversion: trainax_fd against the original PhiFlow notebook.

The step of Holl, Koltun & Thuerey's heat-inversion notebook (PhiFlow with PyTorch, the
`physgrad-code` notebook of the Physics-based Deep Learning book): a batch of 128 random heat
sources on 64², their diffused observations (float64), the U-Net (PhiFlow's `u_net(1, 1)`,
float32, batch norm in training mode), the SIP update through the damped inverse physics, the
proxy loss and one Adam(1e-3) step.

- `trainax_fd`: `Trainer(heat_inversion_sampler(physics, batch_size=128), SIPLoss(physics),
  optax.adam(1e-3), num_steps=K)` on `arch.SIPUNet(2, 1, 1)`: the sources are drawn inside
  the compiled step. `compile` is the first call less its steps at the cached rate; `per step`
  is a cached call's wall time over its `K` steps (median of `--repeats`).
- `phiflow`: the notebook's code as published, with the small fixes current PhiFlow (3.4,
  PhiML 1.16) needs (below), eager PyTorch: `per step` times `update_weights(...)` alone and
  `with data` adds `generate_heat_example(...)`, which the notebook runs in every step too
  (medians, after two warm-up steps). Only when `phiflow` and `torch` are installed.

The two run interleaved, round by round (`--repeats` rounds: one trainax_fd call, then
`--phiflow-steps` PhiFlow steps), as the load of a shared machine changes between runs.

Fixes the published notebook needs on PhiFlow 3.4 / PhiML 1.16:

1. `SoftGeometryMask(box).at(grid)`: the deprecated mask has no `at` any more; written
   `field.resample(SoftGeometryMask(box), to=grid)`.
2. `field.to_float(y_target)` raises `NoBackendFound` (it casts the grid's `None`
   attributes too); written `y_target.with_values(math.to_float(y_target.values))`.

Checks (asserted): the two networks with the same weights give the same output on a batch
(relative 1e-4); trainax_fd's damped inverse (`inverse_diffusion`) equals PhiFlow's
`inv_diffuse` on the same misfit (relative 1e-8); losses finite.

FLOPs: the U-Net's convolutions, forward, input gradients (but the first layer's) and weight
gradients, counted from the layer shapes; XLA's own count of the compiled step is printed
beside it. The machine's convolution peak is measured here: a canonical (NHWC) 3 x 3
convolution of 64 -> 64 channels on 128 x 64² in float32, forward, through XLA.

Install and run from the repository root (phiflow and torch are comparisons only, never
dependencies of trainax_fd):

    pip install -e .
    pip install phiflow==3.4.0 torch    # optional
    python benchmarks/sip.py                       # 3 rounds: 3 steps each, 2 PhiFlow steps
    python benchmarks/sip.py --steps 5 --repeats 5
"""

import argparse
import importlib.metadata
import statistics
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

jax.config.update("jax_enable_x64", True)  # float64 physics, as the original

from trainax_fd import inverse, trainers  # noqa: E402
from trainax_fd.arch import SIPUNet  # noqa: E402
from trainax_fd.reproductions.heat_inversion import setup  # noqa: E402

TARGET = 1.5  # trainax_fd's step >= 1.5x faster than PhiFlow's


def conv_flops(net: SIPUNet, batch: int, size: int) -> float:
    """The U-Net's convolution FLOPs in one training step: forward, input gradients (not of
    the first layer: the data needs none) and weight gradients."""
    total, first = 0.0, True
    levels = [net.inc, *net.downs]
    for level, block in enumerate(levels):
        for conv in block.convs:
            out, cin, *k = conv.weight.shape
            per = 2.0 * batch * (size >> level) ** 2 * cin * out * float(np.prod(k))
            total += per * (2 if first else 3)
            first = False
    for i, block in enumerate(net.ups):
        level = len(net.ups) - 1 - i
        for conv in block.convs:
            out, cin, *k = conv.weight.shape
            total += 3 * 2.0 * batch * (size >> level) ** 2 * cin * out * float(np.prod(k))
    out, cin, *k = net.project.weight.shape
    return total + 3 * 2.0 * batch * size**2 * cin * out


def conv_peak(repeats: int = 5) -> float:
    """GFLOP/s of a canonical float32 convolution (NHWC, 3 x 3, 64 -> 64, 128 x 64²)."""
    x = jax.random.normal(jax.random.key(0), (128, 64, 64, 64), jnp.float32)
    w = jax.random.normal(jax.random.key(1), (3, 3, 64, 64), jnp.float32)
    f = jax.jit(lambda x, w: lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))  # fmt: skip
    jax.block_until_ready(f(x, w))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(x, w))
        times.append(time.perf_counter() - start)
    return 2.0 * 128 * 64 * 64 * 64 * 64 * 9 / min(times) / 1e9


def trainax_step(steps: int, size: int, batch: int):
    """Compile the training and run it once. **Returns:** `(first call s, XLA flops of one
    step or nan, net, run)`, where `run(r)` times a cached call of `steps` steps (s)."""
    physics, sampler = setup(size, batch)
    net = SIPUNet(2, 1, 1, dtype=jnp.float32, key=jax.random.key(0))
    trainer = trainers.Trainer(sampler, inverse.SIPLoss(physics), optax.adam(1e-3),
                               num_steps=steps)  # fmt: skip
    start = time.perf_counter()
    result = trainer(net, key=jax.random.key(1), progress=False)
    jax.block_until_ready(result.loss_history)
    first = time.perf_counter() - start
    losses = np.asarray(result.loss_history)
    assert np.all(np.isfinite(losses)), losses

    def run(r: int) -> float:
        start = time.perf_counter()
        again = trainer(net, key=jax.random.key(2 + r), progress=False)
        jax.block_until_ready(again.loss_history)
        return time.perf_counter() - start

    flops = float("nan")
    try:  # XLA's count for one step: the loss and its gradient on one batch
        objective = inverse.SIPLoss(physics)
        batch_ = eqx.filter_jit(sampler.draw)(jax.random.key(0))
        grad = jax.jit(lambda n, b: eqx.filter_grad(objective)(n, b))
        cost = grad.lower(net, batch_).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list | tuple) else cost
        flops = float(cost.get("flops", float("nan")))
    except Exception as error:  # the cost analysis is optional across XLA versions
        warnings.warn(f"no XLA cost analysis: {error}", stacklevel=1)
    return first, flops, net, run


PHIFLOW_NOTEBOOK = """
def generate_heat_example(*shape, bounds: Box = None):
    shape = math.merge_shapes(*shape)
    heat_t0 = CenteredGrid(0, extrapolation.PERIODIC, bounds, resolution=shape.spatial)
    bounds = heat_t0.bounds
    component_counts = math.to_int32(4 + 7 * math.random_uniform(shape.batch))
    positions = (math.random_uniform(shape.batch, batch(components=10), channel(vector=shape.spatial.names)) - 0.5) * bounds.size * 0.8 + bounds.size * 0.5
    for i in range(10):
        position = positions.components[i]
        half_size = math.random_uniform(shape.batch, channel(vector=shape.spatial.names)) * 10
        strength = math.random_uniform(shape.batch) * math.to_float(i < component_counts)
        position = math.clip(position, bounds.lower + half_size, bounds.upper - half_size)
        component_box = Cuboid(position, half_size)
        component_mask = SoftGeometryMask(component_box)
        component_mask = resample(component_mask, to=heat_t0)  # fix 1: was .at(heat_t0)
        heat_t0 += component_mask * strength
    return heat_t0


def apply_damping(kernel, inv_kernel, amp, f_uncertainty, log_kernel):
    signal_prior = 0.5
    expected_amp = 1. * kernel.shape.get_size('x') * inv_kernel  # This can be measured
    signal_likelihood = math.exp(-0.5 * (abs(amp) / expected_amp) ** 2) * signal_prior  # this can be NaN
    signal_likelihood = math.where(math.is_finite(signal_likelihood), signal_likelihood, math.zeros_like(signal_likelihood))
    noise_likelihood = math.exp(-0.5 * (abs(amp) / f_uncertainty) ** 2) * (1 - signal_prior)
    probability_signal = math.safe_div(signal_likelihood, (signal_likelihood + noise_likelihood))
    action = math.where((0.5 >= probability_signal) | (probability_signal >= 0.68), 2 * (probability_signal - 0.5), 0.)  # 1 sigma required to take action
    prob_kernel = math.exp(log_kernel * action)
    return prob_kernel, probability_signal


def inv_diffuse(grid: Grid, amount: float, uncertainty: Grid):
    f_uncertainty: math.Tensor = math.sqrt(math.sum(uncertainty.values ** 2, dim='x,y'))  # all frequencies have the same uncertainty, 1/N in iFFT
    k_squared: math.Tensor = math.sum(math.fftfreq(grid.shape, grid.dx) ** 2, 'vector')
    fft_laplace: math.Tensor = -(2 * np.pi) ** 2 * k_squared
    # --- Compute sharpening kernel with damping ---
    log_kernel = fft_laplace * -amount
    log_kernel_clamped = math.minimum(log_kernel, math.to_float(math.floor(math.log(math.wrap(np.finfo(np.float32).max)))))  # avoid overflow
    raw_kernel = math.exp(log_kernel_clamped)  # inverse diffusion FFT kernel, all values >= 1
    inv_kernel = math.exp(-log_kernel)
    amp = math.fft(grid.values)
    kernel, sig_prob = apply_damping(raw_kernel, inv_kernel, amp, f_uncertainty, log_kernel)
    # --- Apply and compute uncertainty ---
    data = math.real(math.ifft(amp * math.to_complex(kernel)))
    uncertainty = math.sqrt(math.sum(((f_uncertainty * kernel) ** 2))) / grid.shape.get_size('x')  # 1/N normalization in iFFT
    uncertainty = grid * 0 + uncertainty
    return grid.with_values(data), uncertainty, abs(amp), raw_kernel, kernel, sig_prob


def loss_function(net, x_gt: CenteredGrid, sip: bool):
    y_target = diffuse.fourier(x_gt, 8., 1)
    with math.precision(32):
        prediction = field.native_call(net, y_target.with_values(math.to_float(y_target.values)))  # fix 2: was field.to_float(y_target)
        prediction += field.mean(x_gt) - field.mean(prediction)
    x = field.stop_gradient(prediction)
    if sip:
        y = diffuse.fourier(x, 8., 1)
        dx, _, amp, raw_kernel, kernel, sig_prob = inv_diffuse(y_target - y, 8., uncertainty=abs(y_target - y) * 1e-6)
        correction = x + dx
        y_l2 = field.l2_loss(y - y_target)  # not important, just for tracking
        loss = field.l2_loss(prediction - correction) # proxy L2 loss for network
    else:
        y = diffuse.fourier(prediction, 8., 1)
        loss = y_l2 = field.l2_loss(y - y_target) # for Adam we backprop through the loss and y
    return loss, x, y, field.l2_loss(x_gt - x), y_l2
"""  # noqa: E501


def phiflow_namespace():
    """The notebook's functions, defined in a namespace of `phi.torch.flow`, or `None`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ns: dict = {}
            exec("from phi.torch.flow import *", ns)
    except ImportError:
        return None
    exec(PHIFLOW_NOTEBOOK, ns)
    return ns


def phiflow_step(ns, size: int, batch: int):
    """The notebook's net and optimizer, and `step()`: one loop body of the notebook, timed.
    **Returns:** `(net, step)`; `step()` returns `(data s, update s, x_l2)`."""
    math, spatial = ns["math"], ns["spatial"]
    math.set_global_precision(64)
    net = ns["u_net"](1, 1)
    optimizer = ns["adam"](net, 0.001)
    shape = (spatial(x=size, y=size), ns["batch"](batch=batch))

    def step():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecated mask warns every call
            start = time.perf_counter()
            data = ns["generate_heat_example"](*shape)
            middle = time.perf_counter()
            out = ns["update_weights"](net, optimizer, ns["loss_function"], net, data, sip=True)
            end = time.perf_counter()
        error = float(out[3].mean)
        assert np.isfinite(error), error
        return middle - start, end - middle, error

    return net, step


def check_against_phiflow(ns, torch_net, size: int) -> tuple[float, float]:
    """Copy the PyTorch U-Net's weights into a `SIPUNet`; compare outputs on a batch, and the
    damped inverse on one misfit. **Returns:** the two max relative differences."""
    import torch

    net = SIPUNet(2, 1, 1, dtype=jnp.float32, key=jax.random.key(0))
    state = {k: v.detach().numpy() for k, v in torch_net.state_dict().items()}

    def block(prefix):
        convs = [f"{prefix}.double_conv.0", f"{prefix}.double_conv.3"]
        norms = [f"{prefix}.double_conv.1", f"{prefix}.double_conv.4"]
        return [(state[c + ".weight"], state[c + ".bias"]) for c in convs], [
            (state[n + ".weight"], state[n + ".bias"]) for n in norms
        ]

    levels = len(net.downs) + 1
    blocks = ["inc"] + [f"down{i}.conv" for i in range(1, levels)]
    blocks += [f"up{i}.conv" for i in range(1, levels)]
    new = []
    for mine, name in zip([net.inc, *net.downs, *net.ups], blocks):
        convs, norms = block(name)
        for i in range(2):
            mine = eqx.tree_at(lambda b, i=i: (b.convs[i].weight, b.convs[i].bias), mine,
                               tuple(jnp.asarray(a) for a in convs[i]))  # fmt: skip
            mine = eqx.tree_at(lambda b, i=i: (b.norms[i].weight, b.norms[i].bias), mine,
                               tuple(jnp.asarray(a) for a in norms[i]))  # fmt: skip
        new.append(mine)
    net = eqx.tree_at(lambda n: (n.inc, n.downs, n.ups), net,
                      (new[0], tuple(new[1:levels]), tuple(new[levels:])))  # fmt: skip
    outc = (jnp.asarray(state["outc.weight"]), jnp.asarray(state["outc.bias"]))
    net = eqx.tree_at(lambda n: (n.project.weight, n.project.bias), net, outc)
    x = np.random.default_rng(0).normal(size=(8, 1, size, size)).astype(np.float32)
    torch_net.train()
    with torch.no_grad(), ns["math"].precision(32):
        expected = torch_net(torch.from_numpy(x)).numpy()
    got = np.asarray(jax.vmap(net, axis_name="batch")(jnp.asarray(x)))
    net_error = float(np.abs(got - expected).max() / np.abs(expected).max())

    math, spatial = ns["math"], ns["spatial"]
    misfit = np.random.default_rng(1).normal(size=(size, size)) * 1e-2
    grid = ns["CenteredGrid"](math.tensor(misfit, spatial("x,y")), ns["extrapolation"].PERIODIC,
                              x=size, y=size)  # fmt: skip
    dx = ns["inv_diffuse"](grid, 8.0, uncertainty=abs(grid) * 1e-6)[0].values.numpy("x,y")
    physics, _ = setup(size, 1)
    m = jnp.asarray(misfit[None])
    ours_dx = np.asarray(inverse.inverse_diffusion(m, physics.grid, 8.0,
                                                   uncertainty=1e-6 * jnp.abs(m)))[0]  # fmt: skip
    inverse_error = float(np.abs(ours_dx - dx).max() / np.abs(dx).max())
    return net_error, inverse_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="trainax_fd steps per timed call")
    parser.add_argument("--repeats", type=int, default=3, help="timed trainax_fd calls")
    parser.add_argument("--phiflow-steps", type=int, default=2,
                        help="PhiFlow steps timed after each trainax_fd call")  # fmt: skip
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--skip-phiflow", action="store_true")
    args = parser.parse_args()

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.batch} x {args.size}²")
    peak = conv_peak()
    print(f"convolution peak (XLA, NHWC 3x3 64->64, float32): {peak:.1f} GFLOP/s")
    first, xla_flops, net, run = trainax_step(args.steps, args.size, args.batch)
    flops = conv_flops(net, args.batch, args.size)
    print(f"step FLOPs: convolutions {flops / 1e9:.1f} GFLOP (counted), XLA's count of the "
          f"loss and gradient {xla_flops / 1e9:.1f} GFLOP")  # fmt: skip
    ns = None if args.skip_phiflow else phiflow_namespace()
    if ns is not None:
        torch_net, step = phiflow_step(ns, args.size, args.batch)
        for _ in range(2):  # warm-up
            step()
    # interleaved: the load of a shared machine changes between runs
    ours, data_times, step_times = [], [], []
    for r in range(args.repeats):
        ours.append(run(r) / args.steps)
        for _ in range(args.phiflow_steps if ns is not None else 0):
            d, u, _ = step()
            data_times.append(d)
            step_times.append(u)
    per_step = statistics.median(ours)
    compile_s = max(first - args.steps * per_step, 0.0)
    print(
        f"trainax_fd: compile {compile_s:.1f} s, {per_step:.3f} s per step, "
        f"{flops / per_step / 1e9:.1f} GFLOP/s = {flops / per_step / 1e9 / peak:.0%} of peak"
    )
    if ns is None:
        print("phiflow: not installed (pip install phiflow==3.4.0 torch), no ratio")
        return
    import torch

    versions = f"phiflow {importlib.metadata.version('phiflow')}, torch {torch.__version__}"
    update, data = statistics.median(step_times), statistics.median(data_times)
    print(
        f"phiflow ({versions}, {torch.get_num_threads()} threads): {update:.3f} s per step, "
        f"{update + data:.3f} s with the data; {flops / update / 1e9:.1f} GFLOP/s = "
        f"{flops / update / 1e9 / peak:.0%} of peak"
    )
    net_error, inverse_error = check_against_phiflow(ns, torch_net, args.size)
    print(
        f"checks: same weights, same output (max rel {net_error:.1e}); inverse physics "
        f"(max rel {inverse_error:.1e})"
    )
    assert net_error < 1e-4, net_error
    assert inverse_error < 1e-8, inverse_error
    ratio, ratio_data = update / per_step, (update + data) / per_step
    verdict = "met" if ratio_data >= TARGET else "not met"
    print(
        f"ratio phiflow / trainax_fd: {ratio:.2f} (step), {ratio_data:.2f} (step with data); "
        f"target >= {TARGET}x: {verdict}"
    )


if __name__ == "__main__":
    main()
