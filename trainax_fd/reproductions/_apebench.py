"""APEBench's 1D advection baseline on the package: the data (exact advection in APEBench's
"difficulty" form, truncated-Fourier initial conditions drawn as APEBench draws them), the
ConvNet, seeds trained as one sweep, and the rollout evaluation.

exponax is optional: `DifficultyLinear` and `apebench_initial_set` give the same states as
exponax's `DifficultyLinearStepper` and the `RandomTruncatedFourierSeries` of the exponax
release APEBench pins (0.1.0: uniform amplitudes and phases; later releases filter white
noise instead), so the study runs and matches APEBench's data without it.
"""

import functools
from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jaxtyping import Array, Complex, Float

from .._checks import check_int, check_key
from ..arch import ConvNet
from ..configurations import AbstractConfiguration, DivertedChain, Supervised
from ..evaluation import Evaluation, correlation, evaluate_ensemble, nRMSE
from ..reference import trajectories
from ..sweeps import SweepResult, sweep
from ..trainers import Trainer

#: APEBench's reported geometric-mean nRMSE (first 100 steps) of this setup, one-step training.
APEBENCH_NRMSE = (0.0645, 0.0669)


class DifficultyLinear(eqx.Module):
    """Exact periodic 1D linear dynamics in APEBench's difficulty form, `u_t = sum_j a_j
    d^j u / dx^j` with the difficulties `gamma_j = alpha_j N^j 2^(j - 1)` (`alpha_j = a_j dt
    / L^j`, one spatial dimension): one step multiplies every Fourier mode `k` by
    `exp(sum_j alpha_j (2 pi i k)^j)`, as exponax's `DifficultyLinearStepper` (ETDRK0).
    `gamma_1 = -4` moves the state 4 points to the right per step.

    The spectral coefficients are a complex array leaf (`coefficients`, `(1, N // 2 + 1)`):
    inside a trained model they are fixed with `arch.Corrected`'s `trainable` spec.

    **Arguments:** `num_points` (N), `difficulties` (`gamma_0, gamma_1, ...`).
    """

    coefficients: Complex[Array, "1 modes"]

    def __init__(self, num_points: int, difficulties=(0.0, -4.0)):
        check_int("num_points", num_points, 2)
        gammas = tuple(float(g) for g in difficulties)
        if not gammas:
            raise ValueError(f"`difficulties` must hold at least one value, got {difficulties!r}.")
        k = np.fft.rfftfreq(num_points, 1.0 / num_points)
        exponent = np.zeros(k.shape, np.complex128)
        for j, gamma in enumerate(gammas):
            alpha = gamma if j == 0 else gamma / (num_points**j * 2 ** (j - 1))
            exponent = exponent + alpha * (2j * np.pi * k) ** j
        dtype = jnp.result_type(float)
        complex_dtype = jnp.complex128 if dtype == jnp.float64 else jnp.complex64
        self.coefficients = jax.device_put(np.exp(exponent)[None].astype(complex_dtype))

    def __call__(self, u: Float[Array, "channels points"]) -> Float[Array, "channels points"]:
        spectrum = jnp.fft.rfft(u, axis=-1)
        spectrum = spectrum * self.coefficients.astype(spectrum.dtype)
        return jnp.fft.irfft(spectrum, n=u.shape[-1], axis=-1).astype(u.dtype)


def apebench_initial(num_points: int, *, key, cutoff: int = 5) -> Float[Array, "1 points"]:
    """One zero-mean truncated Fourier series scaled to a maximum magnitude of 1, as APEBench's
    `"fourier;5;true;true"` draws it (exponax 0.1.0): `u(x) = sum_{k=1}^{cutoff} a_k cos(2 pi
    k x + phi_k)`, `a_k` uniform in `[-1, 1]`, `phi_k` uniform in `[0, 2 pi)`, from the same
    draws of `key`. **Returns:** shape `(1, num_points)`."""
    amplitude_key, angle_key, _ = jax.random.split(key, 3)  # the third draws a zero offset
    shape = (1, num_points // 2 + 1)
    amplitude = jax.random.uniform(amplitude_key, shape, minval=-1.0, maxval=1.0)
    angle = jax.random.uniform(angle_key, shape, minval=0.0, maxval=2 * np.pi)
    k = np.arange(shape[1])
    # irfft halves every mode but the mean and the Nyquist mode: scaled by N/2, mode k
    # contributes a_k cos(2 pi k x + phi_k).
    scale = np.where((k == 0) | (2 * k == num_points), num_points, num_points / 2)
    keep = np.where((k >= 1) & (k <= cutoff), scale, 0.0).astype(amplitude.dtype)[None]
    # in exponax's order of operations (amplitude times phase, then the mask and scale): the
    # same floats
    coefficient = lax.complex(
        (amplitude * jnp.cos(angle)) * keep, (amplitude * jnp.sin(angle)) * keep
    )
    u = jnp.fft.irfft(coefficient, n=num_points, axis=-1)
    return u / jnp.max(jnp.abs(u))


@functools.partial(jax.jit, static_argnums=(0, 1, 3))
def _initial_set(num_points: int, num_samples: int, key, cutoff: int):
    def draw(k, _):
        k, sub = jax.random.split(k)
        channel_key = jax.random.split(sub, 1)[0]  # one channel, as exponax's multi-channel
        return k, apebench_initial(num_points, key=channel_key, cutoff=cutoff)

    return lax.scan(draw, key, None, length=num_samples)[1]


def apebench_initial_set(num_points: int, num_samples: int, *, seed: int, cutoff: int = 5):
    """APEBench's initial conditions of one seed (`jax.random.PRNGKey(seed)` walked as
    exponax's `build_ic_set` walks it). **Returns:** `(num_samples, 1, num_points)`."""
    check_int("num_points", num_points, 2)
    check_int("num_samples", num_samples)
    check_int("cutoff", cutoff)
    return _initial_set(num_points, num_samples, jax.random.key(seed), cutoff)


class Data(eqx.Module):
    """The study's data: training and test trajectories and the reference stepper."""

    train: Float[Array, "samples time 1 points"]
    test: Float[Array, "samples time 1 points"]
    stepper: Callable


def make_data(
    *,
    num_points: int = 160,
    difficulty: float = -4.0,
    num_train: int = 50,
    train_steps: int = 50,
    num_test: int = 30,
    test_steps: int = 200,
    train_seed: int = 0,
    test_seed: int = 773,
    cutoff: int = 5,
    stepper: Callable | None = None,
    initial: Callable | None = None,
) -> Data:
    """APEBench's `1d_diff_adv` data: `num_train` trajectories of `train_steps` steps (seed 0)
    and `num_test` of `test_steps` (seed 773), including the initial conditions.

    **Arguments:** the sizes and seeds (APEBench's defaults); `stepper`: the reference
    stepper (default `DifficultyLinear(num_points, (0, difficulty))`; an exponax stepper
    works as well); `initial`: `(num_samples, seed) -> (num_samples, 1, num_points)` (default
    `apebench_initial_set`).

    **Returns:** a `Data`.
    """
    if stepper is None:
        stepper = DifficultyLinear(num_points, (0.0, difficulty))
    if initial is None:
        initial = functools.partial(apebench_initial_set, num_points, cutoff=cutoff)
    train = trajectories(stepper, initial(num_train, seed=train_seed), train_steps)
    test = trajectories(stepper, initial(num_test, seed=test_seed), test_steps)
    return Data(train, test, stepper)


#: The standard deviation of a unit normal truncated to `[-2, 2]` (flax's `lecun_normal`
#: divides by it so that the truncated draws have variance `1 / fan_in`).
_TRUNCATED_STD = 0.87962566103423978


@eqx.filter_jit  # every layer's draws in one program
def _lecun(net: ConvNet, key) -> ConvNet:
    keys = jax.random.split(key, len(net.layers))
    layers = []
    for layer, k in zip(net.layers, keys):
        fan_in = layer.weight[0].size
        scale = 1.0 / (np.sqrt(fan_in) * _TRUNCATED_STD)
        weight = scale * jax.random.truncated_normal(k, -2.0, 2.0, layer.weight.shape)
        fresh = (weight.astype(layer.weight.dtype), jnp.zeros_like(layer.bias))
        layers.append(eqx.tree_at(lambda c: (c.weight, c.bias), layer, fresh))
    return eqx.tree_at(lambda n: n.layers, net, tuple(layers))


def convnet(
    key, *, width: int = 34, depth: int = 10, activation=jax.nn.relu, init: str = "lecun"
) -> ConvNet:
    """APEBench's `"Conv;{width};{depth};relu"`: `depth` hidden layers, `depth + 1` periodic
    convolutions of kernel 3 (`ConvNet(depth=depth + 1)` here); 34 and 10 give 31,757
    parameters.

    `init="lecun"` draws the weights as flax's `Conv` does (truncated normal of variance
    `1 / fan_in`, zero biases): the networks of APEBench's notebooks that report
    0.0645-0.0669. `init="uniform"` keeps Equinox's (and pdequinox's) uniform draws in
    `±1 / sqrt(fan_in)`, biases included.
    """
    if init not in ("lecun", "uniform"):
        raise ValueError(f"`init` must be 'lecun' or 'uniform', got {init!r}.")
    net_key, init_key = jax.random.split(key)
    net = ConvNet(1, 1, 1, width=width, depth=depth + 1, kernel_size=3, activation=activation,
                  key=net_key)  # fmt: skip
    return _lecun(net, init_key) if init == "lecun" else net


def configurations(reference: Callable, rollout: int = 5) -> dict[str, AbstractConfiguration]:
    """APEBench's training configurations `"one"`, `"sup-{rollout}"` and `"div-{rollout}"`."""
    return {
        "one": Supervised(1),
        f"sup-{rollout:02d}": Supervised(rollout),
        f"div-{rollout:02d}": DivertedChain(reference, rollout),
    }


def train_seeds(
    data: Float[Array, "samples time 1 points"],
    configuration: AbstractConfiguration,
    *,
    num_seeds: int = 3,
    num_steps: int = 10_000,
    batch_size: int = 20,
    learning_rate: float = 1e-4,
    width: int = 34,
    depth: int = 10,
    init: str = "lecun",
    key,
    progress: bool = False,
) -> SweepResult:
    """Train `num_seeds` ConvNets (initialisation and shuffling from one key each) as one
    vmapped sweep: Adam with a constant learning rate on windows of every start (of
    `num_rollout_steps + 1` levels, as trainax cuts them). **Returns:** a `SweepResult`."""
    check_key(key)
    window = max(configuration.window_length, getattr(configuration, "num_rollout_steps", 0) + 1)
    trainer = Trainer(
        data, configuration, optax.adam(learning_rate), num_steps=num_steps,
        batch_size=batch_size, window_length=window,
    )  # fmt: skip
    make = functools.partial(convnet, width=width, depth=depth, init=init)
    return sweep(trainer, key=key, init=make, num_members=num_seeds, shuffle="per_member",
                 progress=progress)  # fmt: skip


def evaluate_seeds(swept: SweepResult, test: Float[Array, "samples time 1 points"]) -> Evaluation:
    """nRMSE and correlation of every seed's rollouts, step by step (gmean over steps 1-100)."""
    return evaluate_ensemble(swept.results.model, test, metrics=(nRMSE(), correlation()))


def spread_table(evaluations: Mapping[str, Evaluation], metric: str = "nRMSE") -> str:
    """Per training: the geometric-mean `metric` of every seed, and their median, min and max."""
    rows = []
    for label, e in evaluations.items():
        values = np.asarray(e.gmean[..., e.index(metric)]).ravel()
        seeds = "  ".join(f"{v:.4f}" for v in values)
        rows.append(
            f"{label:>9}  {np.median(values):.4f}  {values.min():.4f}  {values.max():.4f}  {seeds}"
        )
    steps = next(iter(evaluations.values())).aggregate_steps
    header = f"{'training':>9}  median     min     max  per seed ({metric}, steps 1-{steps})"
    return "\n".join([header, *rows])


def within(value: float, band: tuple[float, float] = APEBENCH_NRMSE, tolerance: float = 0.2):
    """Whether `value` is within `tolerance` (relative) of the band `(low, high)`."""
    low, high = band
    return low * (1 - tolerance) <= value <= high * (1 + tolerance)
