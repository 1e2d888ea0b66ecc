"""Autoregressive rollouts and repeated steps as Modules over `lax.scan`."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from .._checks import check_int
from .._custom_types import State, Trajectory


@eqx.filter_checkpoint
def _remat_step(stepper: Callable, u: State) -> State:
    return stepper(u)


def _body(stepper: Callable, checkpoint: bool) -> Callable:
    """The step to scan; with `checkpoint`, rematerialised in the backward pass."""
    return (lambda u: _remat_step(stepper, u)) if checkpoint else stepper


class Rollout(eqx.Module):
    """`u0 -> (u1, ..., un)`: an autoregressive rollout, compiled, over `lax.scan`.

    Compile time does not grow with `n`; a second call with the same shapes does not
    recompile, and the stepper's array leaves (coefficients, weights) are traced, so changing
    their values does not recompile either. Build it with `rollout`.
    """

    stepper: Callable
    num_steps: int = eqx.field(static=True)
    include_init: bool = eqx.field(static=True)
    checkpoint: bool = eqx.field(static=True)

    def __call__(self, u0: State) -> Trajectory:
        return _rollout(self, u0)


@eqx.filter_jit
def _rollout(rollout: Rollout, u0: State) -> Trajectory:
    step = _body(rollout.stepper, rollout.checkpoint)

    def body(u, _):
        u_next = step(u)
        return u_next, u_next

    _, trajectory = lax.scan(body, u0, None, length=rollout.num_steps)
    if rollout.include_init:
        trajectory = jnp.concatenate([u0[None], trajectory])
    return trajectory


def rollout(
    stepper: Callable[[State], State],
    num_steps: int,
    *,
    include_init: bool = False,
    checkpoint: bool = False,
) -> Rollout:
    """Roll `stepper` out autoregressively for `num_steps` steps.

    **Arguments:**

    - `stepper`: `u -> u_next` on one sample (a reference stepper or a network).
    - `num_steps`: number of steps `n >= 1`.
    - `include_init`: whether the trajectory starts with `u0`.
    - `checkpoint`: rematerialise each step in the backward pass (`jax.checkpoint`), trading
      compute for memory in long differentiated rollouts.

    **Returns:** a callable `u0 -> trajectory`, with `u0` of shape `(channels, *spatial)` and the
    trajectory of shape `(n, channels, *spatial)`, or `(n + 1, ...)` with `include_init`. Batch
    with `jax.vmap`.
    """
    check_int("num_steps", num_steps, 1)
    if not callable(stepper):
        raise TypeError(f"`stepper` must be callable, got {type(stepper).__name__}.")
    return Rollout(stepper, num_steps, bool(include_init), bool(checkpoint))


class Repeated(eqx.Module):
    """`u -> stepper^k(u)`: one coarse step made of `k` fine ones. Build it with `repeat`."""

    stepper: Callable
    num_substeps: int = eqx.field(static=True)
    checkpoint: bool = eqx.field(static=True)

    def __call__(self, u: State) -> State:
        step = _body(self.stepper, self.checkpoint)
        u, _ = lax.scan(lambda v, _: (step(v), None), u, None, length=self.num_substeps)
        return u


def repeat(
    stepper: Callable[[State], State], num_substeps: int, *, checkpoint: bool = False
) -> Repeated:
    """A stepper that applies `stepper` `num_substeps` times (e.g. to coarsen `dt`).

    **Returns:** a callable `u -> u_next` of the same shape, itself a Module (vmappable, nestable
    inside `rollout`).
    """
    check_int("num_substeps", num_substeps, 1)
    if not callable(stepper):
        raise TypeError(f"`stepper` must be callable, got {type(stepper).__name__}.")
    return Repeated(stepper, num_substeps, bool(checkpoint))


@eqx.filter_jit
def _trajectories(stepper, initial, num_steps: int, include_init: bool, unroll: int):
    first = int(include_init)
    data = jnp.zeros((initial.shape[0], num_steps + first, *initial.shape[1:]), initial.dtype)
    if include_init:
        data = lax.dynamic_update_index_in_dim(data, initial, 0, axis=1)
    step = jax.vmap(stepper)

    def body(t, carry):
        u, data = carry
        u = step(u)
        return u, lax.dynamic_update_index_in_dim(data, u, t + first, axis=1)

    return lax.fori_loop(0, num_steps, body, (initial, data), unroll=unroll)[1]


def trajectories(
    stepper: Callable[[State], State],
    initial: Float[Array, "samples channels *spatial"],
    num_steps: int,
    *,
    include_init: bool = True,
    unroll: int = 2,
) -> Float[Array, "samples time channels *spatial"]:
    """Generate training data: roll a batch of initial states out, sample-major.

    Equal to `jax.vmap(rollout(stepper, num_steps, include_init=include_init))(initial)`, but
    written straight into one `(samples, time, ...)` buffer updated in place, which saves the
    time-major copy and its transpose that the vmapped scan makes (the output dominates the
    cost of data generation). Use it to make data, not inside a differentiated loss: its
    reverse-mode derivative would store the whole buffer per step; `rollout` is the
    differentiable one.

    **Arguments:**

    - `stepper`: `u -> u_next` on one sample.
    - `initial`: a batch of initial states, shape `(samples, channels, *spatial)`.
    - `num_steps`: steps per trajectory.
    - `include_init`: whether each trajectory starts with its initial state.
    - `unroll`: time steps per loop iteration in the compiled loop.

    **Returns:** shape `(samples, num_steps [+ 1], channels, *spatial)`.
    """
    check_int("num_steps", num_steps, 1)
    check_int("unroll", unroll, 1)
    if not callable(stepper):
        raise TypeError(f"`stepper` must be callable, got {type(stepper).__name__}.")
    if getattr(initial, "ndim", 0) < 2:
        raise ValueError(
            "`initial` must be a batch of states (samples, channels, *spatial), got shape "
            f"{getattr(initial, 'shape', None)}."
        )
    return _trajectories(stepper, jnp.asarray(initial), num_steps, bool(include_init), unroll)
