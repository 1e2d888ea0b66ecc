"""The damped inverse of periodic heat diffusion: each Fourier mode is sharpened as far as the
probability that it carries signal rather than noise allows (Holl, Koltun & Thuerey 2022)."""

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from .._custom_types import State
from ..reference._diffusion import wavenumber_squared
from ..stencil import Grid

#: The original's band of indecision: no action while `1/2 < p < 0.68` (one sigma).
BAND = (0.5, 0.68)


def check_band(band: Sequence[float]) -> tuple[float, float]:
    """`band` as `(low, high)` with `0 <= low <= high <= 1`, else a `ValueError`."""
    try:
        low, high = (float(b) for b in band)
    except (TypeError, ValueError):
        raise ValueError(f"`band` must be two numbers (low, high), got {band!r}.") from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"`band` must satisfy 0 <= low <= high <= 1, got {band!r}.")
    return low, high


def check_prior(prior: float) -> float:
    if not (isinstance(prior, float | int) and 0.0 < prior < 1.0):
        raise ValueError(f"`signal_prior` must be a number in (0, 1), got {prior!r}.")
    return float(prior)


def log_inverse_kernel(grid: Grid, amount, dtype) -> Float[Array, "*modes"]:
    """The logarithm of the inverse heat kernel on the `rfftn` modes of `grid`:
    `min(|kappa|^2 * amount, log(max float))`, where the forward step multiplies mode `kappa`
    by `exp(-|kappa|^2 * amount)` (`amount = diffusivity * dt`; on unit cells
    `|kappa|^2 = 4 pi^2 |k|^2` with `k` in cycles per cell). Clamped so that `exp` of it stays
    finite in `dtype`.

    **Returns:** shape `(N_0, ..., N_last // 2 + 1)`, in `dtype`.
    """
    k2 = jnp.asarray(wavenumber_squared(grid), dtype)
    ceiling = float(np.log(np.finfo(jnp.dtype(dtype)).max))
    return jnp.minimum(k2 * jnp.asarray(amount).astype(dtype), ceiling)


def damped_inverse_kernel(
    amplitude: Array,
    log_kernel: Array,
    noise: Array,
    *,
    signal_scale: float,
    signal_prior: float = 0.5,
    band: Sequence[float] = BAND,
) -> tuple[Array, Array]:
    """The damped inverse kernel of every Fourier mode, from the probability that the mode's
    amplitude is signal rather than noise.

    Per mode, with `a = |amplitude|`:

    - signal likelihood `prior * exp(-(a / s)^2 / 2)`, `s = signal_scale * exp(-log_kernel)`
      (the amplitude a reasonable source has after diffusion; `0` where it is not finite);
    - noise likelihood `(1 - prior) * exp(-(a / noise)^2 / 2)`;
    - `p = signal / (signal + noise)` (Bayes; `0` where both vanish);
    - action `2 (p - 1/2)` outside the band `low < p < high`, else `0`: `+1` inverts the
      diffusion fully, `-1` applies it once more (damps noise), `0` leaves the mode;
    - kernel `exp(log_kernel * action)`.

    **Arguments:**

    - `amplitude`: the Fourier amplitudes, complex or real, any shape broadcasting with
        `log_kernel` and `noise`.
    - `log_kernel`: the log inverse kernel per mode (`log_inverse_kernel`).
    - `noise`: the noise scale of an amplitude (same for every mode: white noise).
    - `signal_scale`: the expected amplitude of the undiffused signal in one mode.
    - `signal_prior`: prior probability of signal, in `(0, 1)` (`1/2`).
    - `band`: `(low, high)`, the probabilities with no action (`(0.5, 0.68)`).

    **Returns:** `(kernel, probability)`, both real, of the broadcast shape.
    """
    low, high = check_band(band)
    prior = check_prior(signal_prior)
    a = jnp.abs(amplitude)
    expected = signal_scale * jnp.exp(-log_kernel)
    signal = prior * jnp.exp(-0.5 * jnp.square(a / expected))
    signal = jnp.where(jnp.isfinite(signal), signal, 0.0)
    noise_likelihood = (1.0 - prior) * jnp.exp(-0.5 * jnp.square(a / noise))
    total = signal + noise_likelihood
    safe = jnp.where(total > 0, total, 1.0)
    probability = jnp.where(total > 0, signal / safe, 0.0)
    act = (probability <= low) | (probability >= high)
    action = jnp.where(act, 2.0 * (probability - 0.5), 0.0)
    return jnp.exp(log_kernel * action), probability


def inverse_diffusion(
    y: State,
    grid: Grid,
    amount,
    *,
    uncertainty,
    signal_scale: float | None = None,
    signal_prior: float = 0.5,
    band: Sequence[float] = BAND,
) -> State:
    """The damped inverse of periodic heat diffusion applied to one sample: every Fourier mode
    of `y` multiplied by its `damped_inverse_kernel`.

    The inverse of `FourierHeat(grid, diffusivity, dt)` is `exp(+|kappa|^2 amount)` per mode
    (`amount = diffusivity * dt`), which amplifies noise without bound; here each mode is
    inverted only as far as it is likely signal. The noise scale of every mode is
    `sqrt(sum uncertainty^2)` over the grid, per channel (white noise of that size in space
    has this amplitude in each unnormalised Fourier mode).

    **Arguments:**

    - `y`: one sample `(channels, *grid.shape)`, e.g. an observation misfit; float64 keeps
        the sharpened modes accurate.
    - `grid`: the periodic grid (`"periodic"` or `"cell"` placement).
    - `amount`: `diffusivity * dt` of the diffusion to invert (a scalar; may be traced).
    - `uncertainty`: the noise of `y` in space, broadcastable to `y` (the SIP experiments
        use `1e-6 * |y|`).
    - `signal_scale`: expected undiffused amplitude of a mode; default the number of cells
        along the first axis, the original's choice.
    - `signal_prior`, `band`: as in `damped_inverse_kernel`.

    **Returns:** shape of `y`, in `y`'s dtype.

    !!! example
        ```python
        heat = FourierHeat(grid, 8.0, 1.0)
        dx = inverse_diffusion(y_target - heat(x), grid, 8.0,
                               uncertainty=1e-6 * jnp.abs(y_target - heat(x)))
        ```
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"`grid` must be a `Grid`, got {type(grid).__name__}.")
    if "vertex" in grid.placement:
        raise ValueError(
            "`grid` must be periodic (placement 'periodic' or 'cell' on every axis), got "
            f"placement {grid.placement}."
        )
    grid.check_state(y)
    if signal_scale is None:
        signal_scale = float(grid.shape[0])
    if not (isinstance(signal_scale, float | int) and signal_scale > 0):
        raise ValueError(f"`signal_scale` must be a positive number, got {signal_scale!r}.")
    axes = tuple(range(1, y.ndim))
    spatial = (1,) * grid.ndim
    uncertainty = jnp.broadcast_to(jnp.asarray(uncertainty, y.dtype), y.shape)
    noise = jnp.sqrt(jnp.sum(jnp.square(uncertainty), axis=axes)).reshape(-1, *spatial)
    amplitude = jnp.fft.rfftn(y, axes=axes)
    log_kernel = log_inverse_kernel(grid, amount, y.dtype)[None]
    kernel, _ = damped_inverse_kernel(
        amplitude, log_kernel, noise, signal_scale=float(signal_scale), signal_prior=signal_prior,
        band=band,
    )  # fmt: skip
    out = jnp.fft.irfftn(amplitude * lax.convert_element_type(kernel, amplitude.dtype),
                         s=grid.shape, axes=axes)  # fmt: skip
    return out.astype(y.dtype)
