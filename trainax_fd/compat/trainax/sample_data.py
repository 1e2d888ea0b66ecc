"""trainax's sample data (`tx.sample_data.*`): periodic 1D advection and the Lorenz system,
rolled out with `trainax_fd.trajectories` (one compiled program each)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from ..._checks import check_int
from ...reference import trajectories


class _SpectralAdvection(eqx.Module):
    """Exact periodic advection of a band-limited state `(channels, points)` by `cfl` cells."""

    cfl: float

    def __call__(self, u):
        n = u.shape[-1]
        phase = 2 * jnp.pi * jnp.fft.rfftfreq(n) * self.cfl  # wavenumber times the shift
        shift = lax.complex(jnp.cos(phase), -jnp.sin(phase)).reshape((1,) * (u.ndim - 1) + (-1,))
        return jnp.fft.irfft(jnp.fft.rfft(u) * shift, n=n).astype(u.dtype)


@eqx.filter_jit
def _fourier_series(key, num_samples: int, num_points: int, highest_mode: int, no_offset: bool):
    """`num_samples` random sums of the modes `1, ..., highest_mode` on a periodic grid of
    `num_points` on `[0, 2 pi)`: amplitudes uniform in `[-1, 1]` (as trainax draws them)."""

    def one(key):
        sine_key, cosine_key, offset_key = jax.random.split(key, 3)
        a = jax.random.uniform(sine_key, (highest_mode,), minval=-1.0, maxval=1.0)
        b = jax.random.uniform(cosine_key, (highest_mode,), minval=-1.0, maxval=1.0)
        offset = jax.random.uniform(offset_key, (), minval=-0.5, maxval=0.5)
        x = jnp.linspace(0, 2 * jnp.pi, num_points + 1)[:-1]
        modes = jnp.arange(1, highest_mode + 1, dtype=x.dtype)[:, None] * x[None]
        u = a @ jnp.sin(modes) + b @ jnp.cos(modes)
        return u if no_offset else u + offset

    return jax.vmap(one)(jax.random.split(key, num_samples))


def advection_1d_periodic(
    num_points: int = 30,
    num_samples: int = 20,
    *,
    cfl: float = 0.75,
    highest_init_mode: int = 5,
    temporal_horizon: int = 100,
    key: PRNGKeyArray,
) -> Float[Array, "num_samples temporal_horizon 1 num_points"]:
    """Trajectories of 1D periodic advection, exact (spectral) for band-limited states.

    **Arguments:** `num_points`, `num_samples` (trajectories), `cfl` (cells moved per step),
    `highest_init_mode` (below `num_points // 2`), `temporal_horizon` (time levels, the first
    the initial condition), `key`.

    **Returns:** shape `(num_samples, temporal_horizon, 1, num_points)`.
    """
    check_int("temporal_horizon", temporal_horizon, 2)
    u0 = _fourier_series(key, num_samples, num_points, highest_init_mode, True)
    return trajectories(_SpectralAdvection(float(cfl)), u0[:, None], temporal_horizon - 1)


class _LorenzRK4(eqx.Module):
    dt: float
    sigma: float
    rho: float
    beta: float

    def rhs(self, u):
        x, y, z = u
        return jnp.stack([self.sigma * (y - x), x * (self.rho - z) - y, x * y - self.beta * z])

    def __call__(self, u):
        k1 = self.rhs(u)
        k2 = self.rhs(u + 0.5 * self.dt * k1)
        k3 = self.rhs(u + 0.5 * self.dt * k2)
        k4 = self.rhs(u + self.dt * k3)
        return u + self.dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def make_lorenz_stepper_rk4(
    dt: float = 0.01, *, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0
):
    """One classical Runge-Kutta step of size `dt` of the Lorenz system, a state `(3,)` to the
    next."""
    return _LorenzRK4(float(dt), float(sigma), float(rho), float(beta))


def lorenz_rk4(
    num_samples: int = 20,
    *,
    temporal_horizon: int = 1000,
    dt: float = 0.01,
    num_warmup_steps: int = 500,
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
    init_std: float = 1.0,
    key: PRNGKeyArray,
) -> Float[Array, "num_samples temporal_horizon 3"]:
    """Trajectories of the Lorenz system with `make_lorenz_stepper_rk4`, from normal initial
    states of standard deviation `init_std`, the first `num_warmup_steps` levels dropped.

    **Returns:** shape `(num_samples, temporal_horizon, 3)`.
    """
    check_int("temporal_horizon", temporal_horizon)
    check_int("num_warmup_steps", num_warmup_steps, 0)
    if temporal_horizon + num_warmup_steps < 2:
        raise ValueError(
            "`temporal_horizon + num_warmup_steps` must be at least 2 (one step), got "
            f"{temporal_horizon} + {num_warmup_steps}."
        )
    stepper = make_lorenz_stepper_rk4(dt, sigma=sigma, rho=rho, beta=beta)
    return _lorenz(stepper, key, num_samples, temporal_horizon, num_warmup_steps, init_std)


@eqx.filter_jit
def _lorenz(stepper, key, num_samples: int, horizon: int, warmup: int, init_std):
    u0 = jax.random.normal(key, (num_samples, 3)) * init_std
    return trajectories(stepper, u0, horizon + warmup - 1)[:, warmup:]
