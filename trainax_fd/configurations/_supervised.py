"""Supervised rollout, and the mix chain (network steps, then reference-stepper steps)."""

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import check_int
from ._base import (
    DEFAULT_LOSS,
    AbstractConfiguration,
    Loss,
    Remat,
    check_cut_every,
    check_loss,
    check_ref_stepper,
    check_remat,
    check_stepper,
    check_window,
    level,
    level_weights,
    levels,
    scan_chain,
    stop_gradient_if,
    unrolls,
)


def _supervised_chain(stepper, loss, u0, targets, steps, cut_bptt, cut_every, remat):
    """Roll `stepper` out for `steps` steps against `targets`; losses and the last state."""

    def body(carry, target):
        u, t = carry
        u = stepper(u)
        value = loss(u, target)
        if cut_bptt:
            u = stop_gradient_if((t + 1) % cut_every == 0, u)
        return (u, t + 1), value

    return scan_chain(body, u0, steps, remat, xs=targets, unroll=unrolls(stepper, u0, steps))


class Supervised(AbstractConfiguration):
    """Supervised rollout: `num_rollout_steps` autoregressive steps against the data.

    `level_losses[t] = loss(stepper^(t+1)(u_0), u_(t+1))`. With `num_rollout_steps=1` this is
    one-step supervised training.

    **Arguments:**

    - `num_rollout_steps`: autoregressive steps `n >= 1`; windows need `n + 1` time levels.
    - `time_level_loss`: single-sample loss `(prediction, target) -> scalar` (default `MSE()`).
    - `cut_bptt`: stop gradients through the chain every `cut_bptt_every` steps (after step
        `t` when `(t + 1) % cut_bptt_every == 0`).
    - `cut_bptt_every`: int `>= 1`.
    - `time_level_weights`: weights of the `n` levels, shape `(n,)`; ones when `None`.
    - `remat`: rematerialise each step in the backward pass (memory flat in `n`, one more
        forward pass a step); `"auto"` (default): in chains longer than 8 steps.

    The rollout is a `lax.scan`, compiled once whatever `n`; up to 8 steps of a stepper with
    convolutions are unrolled instead (XLA:CPU runs convolutions outside loops faster; see
    `UNROLL_UP_TO`).
    """

    num_rollout_steps: int = eqx.field(static=True)
    time_level_loss: Loss
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    time_level_weights: Float[Array, "num_rollout_steps"]
    remat: Remat = eqx.field(static=True)

    def __init__(
        self,
        num_rollout_steps: int = 1,
        *,
        time_level_loss: Loss = DEFAULT_LOSS,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        time_level_weights=None,
        remat: Remat = "auto",
    ):
        self.num_rollout_steps = check_int("num_rollout_steps", num_rollout_steps)
        self.time_level_loss = check_loss(time_level_loss)
        self.cut_bptt = bool(cut_bptt)
        self.cut_bptt_every = check_cut_every(cut_bptt_every)
        self.time_level_weights = level_weights(
            time_level_weights, num_rollout_steps, "time_level_weights", "num_rollout_steps"
        )
        self.remat = check_remat(remat)

    @property
    def window_length(self) -> int:
        return self.num_rollout_steps + 1

    @property
    def ic_only(self) -> bool:
        return False

    @property
    def weights(self):
        return self.time_level_weights

    def level_losses(self, stepper: Callable, window):
        n = self.num_rollout_steps
        check_window(window, n + 1, f"Supervised(num_rollout_steps={n})")
        u0 = level(window, 0)
        check_stepper(stepper, u0)
        _, losses = _supervised_chain(
            stepper,
            self.time_level_loss,
            u0,
            levels(window, 1, n + 1),
            n,
            self.cut_bptt,
            self.cut_bptt_every,
            self.remat,
        )
        return losses


class MixChain(AbstractConfiguration):
    """Network steps, then reference-stepper steps, in one chain, all against the data.

    The chain is `num_rollout_steps` steps of the network followed by
    `num_post_physics_steps` steps of `ref_stepper`; every level is compared with the data,
    so the physics steps pass gradients back into the network's last state.

    **Arguments:**

    - `ref_stepper`: the reference stepper (one sample to the next); required.
    - `num_rollout_steps`: network steps `n >= 1`.
    - `num_post_physics_steps`: reference steps `m >= 1`; windows need `n + m + 1` levels.
    - `time_level_loss`, `cut_bptt`, `cut_bptt_every`, `remat`: as in `Supervised` (cuts
        apply to the network steps only).
    - `time_level_weights`: shape `(n + m,)`; ones when `None`.
    """

    ref_stepper: Callable
    num_rollout_steps: int = eqx.field(static=True)
    num_post_physics_steps: int = eqx.field(static=True)
    time_level_loss: Loss
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    time_level_weights: Float[Array, "levels"]
    remat: Remat = eqx.field(static=True)

    def __init__(
        self,
        ref_stepper: Callable,
        num_rollout_steps: int = 1,
        num_post_physics_steps: int = 1,
        *,
        time_level_loss: Loss = DEFAULT_LOSS,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        time_level_weights=None,
        remat: Remat = "auto",
    ):
        self.ref_stepper = check_ref_stepper(ref_stepper, "MixChain")
        self.num_rollout_steps = check_int("num_rollout_steps", num_rollout_steps)
        self.num_post_physics_steps = check_int("num_post_physics_steps", num_post_physics_steps)
        self.time_level_loss = check_loss(time_level_loss)
        self.cut_bptt = bool(cut_bptt)
        self.cut_bptt_every = check_cut_every(cut_bptt_every)
        self.time_level_weights = level_weights(
            time_level_weights,
            num_rollout_steps + num_post_physics_steps,
            "time_level_weights",
            "num_rollout_steps + num_post_physics_steps",
        )
        self.remat = check_remat(remat)

    @property
    def window_length(self) -> int:
        return self.num_rollout_steps + self.num_post_physics_steps + 1

    @property
    def ic_only(self) -> bool:
        return False

    @property
    def weights(self):
        return self.time_level_weights

    def level_losses(self, stepper: Callable, window):
        n, m = self.num_rollout_steps, self.num_post_physics_steps
        check_window(window, n + m + 1, f"MixChain(num_rollout_steps={n}, ...={m})")
        u0 = level(window, 0)
        check_stepper(stepper, u0)
        check_stepper(self.ref_stepper, u0, "ref_stepper")
        args = (self.time_level_loss,)
        u, network = _supervised_chain(
            stepper, *args, u0, levels(window, 1, n + 1), n, self.cut_bptt,
            self.cut_bptt_every, self.remat,
        )  # fmt: skip
        _, physics = _supervised_chain(
            self.ref_stepper, *args, u, levels(window, n + 1, n + m + 1), m, False, 1, self.remat
        )
        return jnp.concatenate([network, physics])
