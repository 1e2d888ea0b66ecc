"""The stepper interface and the checks every reference stepper shares."""

import abc

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import check_finite, is_concrete as is_concrete
from .._custom_types import AnyArray, Coefficient, State
from ..stencil import Grid


class AbstractStepper(eqx.Module):
    """A time stepper on one sample: `u_next = stepper(u)`, `u` of shape `(channels, *spatial)`.

    Subclasses are final: they set `grid` and implement `step`. `__call__` checks the shape
    (batch with `jax.vmap`) and runs `step` compiled; coefficients are array leaves, so changing
    them does not recompile.
    """

    grid: eqx.AbstractVar[Grid]

    @property
    def num_channels(self) -> int | None:
        """Channels the stepper needs, or `None` for any number."""
        return None

    @abc.abstractmethod
    def step(self, u: State) -> State:
        """Advance one sample by one time step (no shape check; see `__call__`)."""

    def __call__(self, u: State) -> State:
        return _checked_step(self, u)


@eqx.filter_jit  # eagerly, a step would dispatch (and compile) op by op
def _checked_step(stepper: AbstractStepper, u: State) -> State:
    stepper.grid.check_state(u)
    if stepper.num_channels is not None and u.shape[0] != stepper.num_channels:
        raise ValueError(
            f"`u` must have {stepper.num_channels} channel(s) for {type(stepper).__name__} on "
            f"this {stepper.grid.ndim}D grid, got shape {u.shape}."
        )
    return stepper.step(u)


def array_module(*values):
    """NumPy for concrete values (checks then compile nothing), `jax.numpy` for traced ones."""
    return np if is_concrete(*values) else jnp


def as_array(value: Coefficient, name: str) -> AnyArray:
    """A coefficient as an array leaf, with a `TypeError` naming it if it is not numeric."""
    try:
        out = jnp.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be a float or an array, got {type(value).__name__}: {value!r}."
        ) from None
    if not jnp.issubdtype(out.dtype, jnp.number):
        raise TypeError(f"`{name}` must be numeric, got dtype {out.dtype}.")
    if jnp.issubdtype(out.dtype, jnp.integer):
        out = out.astype(jnp.result_type(float))
    return out


def check_dt(dt: AnyArray, limit, scheme: str, condition: str) -> AnyArray:
    """Stop a step that would blow up: `dt` must be finite, positive and not exceed `limit`
    (`np.inf` for an unconditionally stable scheme).

    Concrete values raise a `ValueError` now; traced ones are checked when run (`eqx.error_if`).

    **Returns:** `dt`, to be stored (the traced check rides on it).
    """
    dt = check_finite(dt, "dt")
    if is_concrete(dt, limit):
        dt_min, dt_max = float(np.min(np.asarray(dt))), float(np.max(np.asarray(dt)))
        limit_max = float(np.min(np.asarray(limit)))
        if dt_min <= 0:
            raise ValueError(f"`dt` must be positive, got {dt_min:.6g}.")
        if dt_max > limit_max * (1 + 1e-9):
            raise ValueError(
                f"`dt`={dt_max:.6g} exceeds the stable limit {limit_max:.6g} of {scheme} "
                f"({condition}); a stable choice is dt={0.9 * limit_max:.6g}."
            )
        return dt
    dt = eqx.error_if(dt, jnp.any(dt <= 0), "`dt` must be positive.")
    if is_concrete(limit) and np.all(np.isinf(np.asarray(limit))):
        return dt
    limit = jnp.asarray(limit, dtype=jnp.result_type(dt))
    return eqx.error_if(
        dt, jnp.any(dt > limit), f"`dt` exceeds the stable limit of {scheme} ({condition})."
    )


def check_coefficient(value: AnyArray, name: str, *, nonnegative: bool = False) -> AnyArray:
    """A physical coefficient, finite (and `>= 0` with `nonnegative`: a negative diffusivity
    makes the problem ill-posed, every mode grows). Concrete values raise a `ValueError` now;
    traced ones (swept under `jax.vmap`) are checked when run.

    **Returns:** the value, to be stored (the traced check rides on it).
    """
    why = f"; a negative {name} makes the problem ill-posed (every mode grows)"
    return check_finite(value, name, nonnegative=nonnegative, why_nonnegative=why)
