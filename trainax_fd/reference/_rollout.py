"""Autoregressive rollouts and repeated steps as Modules over `lax.scan`."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from .._checks import check_int, check_step, is_concrete, warn
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
        check_step(u, u_next)  # at trace time: a clear error, not the scan's about its carry
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

        def body(v, _):
            v_next = step(v)
            check_step(v, v_next)  # at trace time: a clear error, not the scan's
            return v_next, None

        u, _ = lax.scan(body, u, None, length=self.num_substeps)
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


def _one(batch):
    """The shapes of one sample of a batch."""
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), batch)


def _state_dependent_limit(stepper) -> bool:
    """Whether `stepper` has a stable `dt` that depends on the state (`Burgers`)."""
    return callable(getattr(stepper, "max_stable_dt", None)) and hasattr(stepper, "dt")


@eqx.filter_jit
def _trajectories(stepper, initial, num_steps: int, include_init: bool, unroll: int):
    first = int(include_init)
    data = jnp.zeros((initial.shape[0], num_steps + first, *initial.shape[1:]), initial.dtype)
    if include_init:
        data = lax.dynamic_update_index_in_dim(data, initial, 0, axis=1)
    step = jax.vmap(stepper)
    # With a state-dependent stability limit, per sample: the first time level whose state is
    # over it (`num_steps` where none is) and the limit there.
    monitor = _state_dependent_limit(stepper)
    if monitor:
        dtype = jnp.result_type(stepper.dt)
        over = (jnp.full(initial.shape[:1], num_steps), jnp.full(initial.shape[:1], jnp.inf, dtype))
    else:
        over = ()

    def body(t, carry):
        u, data, over = carry
        if monitor:
            here = jax.vmap(stepper.max_stable_dt)(u).astype(over[1].dtype)
            new = (over[0] == num_steps) & (stepper.dt > here)
            level = jnp.asarray(t, over[0].dtype)
            over = (jnp.where(new, level, over[0]), jnp.where(new, here, over[1]))
        u_next = step(u)
        check_step(_one(u), _one(u_next))  # at trace time, before the loop compares its carries
        data = lax.dynamic_update_index_in_dim(data, u_next, t + first, axis=1)
        return u_next, data, over

    _, data, over = lax.fori_loop(0, num_steps, body, (initial, data, over), unroll=unroll)
    return data, over if monitor else None


def _warn_if_unstable(stepper, over, limit, num_steps: int) -> None:
    """Warn, naming the first sample whose rollout went over its stable `dt`."""
    over = np.asarray(over)
    bad = np.flatnonzero(over < num_steps)
    if bad.size == 0:
        return
    sample = int(bad[0])
    level, here = int(over[sample]), float(np.asarray(limit)[sample])
    dt = float(np.max(np.asarray(stepper.dt)))
    warn(
        f"`stepper` ({type(stepper).__name__}) is unstable on these data: its `dt`={dt:.6g} "
        f"exceeds `max_stable_dt`={here:.6g} of sample {sample} at time level {level} "
        f"({bad.size} of {over.size} samples go over the limit); the trajectories may blow up. "
        f"A stable choice for that state is dt={0.9 * here:.6g}, or smaller initial states."
    )


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

    A stepper whose stable `dt` depends on the state (one with `max_stable_dt(u)` and `dt`,
    like `Burgers`: its convective limit) is checked at every step, inside the same compiled
    loop; if a state goes over the limit, a `UserWarning` names the first such sample and its
    time level (the call then waits for the data). A stepper must map a state to one of the
    same shape and dtype; anything else is a `ValueError` before the loop runs.

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
    data, over = _trajectories(stepper, jnp.asarray(initial), num_steps, bool(include_init), unroll)
    if over is not None and is_concrete(over):
        _warn_if_unstable(stepper, *over, num_steps)
    return data
