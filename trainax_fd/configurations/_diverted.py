"""The diverted chain: network main chain with branches of reference-stepper targets."""

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jax import lax
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
    maybe_remat,
    scan_chain,
    stop_gradient_if,
    unrolls,
)


class DivertedChain(AbstractConfiguration):
    """The diverted chain: targets made on the fly by a reference stepper.

    The network rolls out a main chain `u_0, u_1, ...` from the initial condition. From each
    of the first `n - m + 1` states a branch of `m` steps starts: the network and the reference
    stepper both step `m` times from the branch state, and each step is compared. Only initial
    conditions are read from the data. `num_branch_steps=1` is the "branch one" case (a one-step
    difference to the reference along the network's own rollout); `m = n` compares one full
    rollout with the reference.

    `level_losses` has shape `((n - m + 1) * m,)`, branch-major; its weights are
    `time_level_weights[t] * branch_level_weights[b]`.

    **Arguments:**

    - `ref_stepper`: the reference stepper (one sample to the next); required.
    - `num_rollout_steps`: main-chain length `n >= 1`.
    - `num_branch_steps`: branch length `m` in `1, ..., n`.
    - `time_level_loss`: single-sample loss `(prediction, target) -> scalar` (default `MSE()`).
    - `cut_bptt`, `cut_bptt_every`: stop gradients through the network after overall step `k`
        (main or branch) when `k % cut_bptt_every == 0`.
    - `cut_div_chain`: stop gradients through the reference branches (then the reference
        stepper need not be differentiable).
    - `time_level_weights`: one weight per branch, shape `(n - m + 1,)`; ones when `None`.
    - `branch_level_weights`: one weight per branch step, shape `(m,)`; ones when `None`.
    - `remat`: rematerialise each step in the backward pass; `"auto"` (default): in
        chains longer than 8 steps.
    """

    ref_stepper: Callable
    num_rollout_steps: int = eqx.field(static=True)
    num_branch_steps: int = eqx.field(static=True)
    time_level_loss: Loss
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    cut_div_chain: bool = eqx.field(static=True)
    time_level_weights: Float[Array, "branches"]  # noqa: F821
    branch_level_weights: Float[Array, "num_branch_steps"]
    remat: Remat = eqx.field(static=True)

    def __init__(
        self,
        ref_stepper: Callable,
        num_rollout_steps: int = 1,
        num_branch_steps: int = 1,
        *,
        time_level_loss: Loss = DEFAULT_LOSS,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_div_chain: bool = False,
        time_level_weights=None,
        branch_level_weights=None,
        remat: Remat = "auto",
    ):
        self.ref_stepper = check_ref_stepper(ref_stepper, "DivertedChain")
        n = check_int("num_rollout_steps", num_rollout_steps)
        m = check_int("num_branch_steps", num_branch_steps)
        if m > n:
            raise ValueError(
                f"`num_branch_steps` must be at most `num_rollout_steps` ({n}), got {m}."
            )
        self.num_rollout_steps, self.num_branch_steps = n, m
        self.time_level_loss = check_loss(time_level_loss)
        self.cut_bptt = bool(cut_bptt)
        self.cut_bptt_every = check_cut_every(cut_bptt_every)
        self.cut_div_chain = bool(cut_div_chain)
        self.time_level_weights = level_weights(
            time_level_weights, n - m + 1, "time_level_weights", "branches (n - m + 1)"
        )
        self.branch_level_weights = level_weights(
            branch_level_weights, m, "branch_level_weights", "num_branch_steps"
        )
        self.remat = check_remat(remat)

    @property
    def window_length(self) -> int:
        return 1

    @property
    def ic_only(self) -> bool:
        return True

    @property
    def weights(self):
        return jnp.ravel(self.time_level_weights[:, None] * self.branch_level_weights[None, :])

    def level_losses(self, stepper: Callable, window):
        n, m = self.num_rollout_steps, self.num_branch_steps
        check_window(window, 1, "DivertedChain")
        u0 = level(window, 0)
        check_stepper(stepper, u0)
        check_stepper(self.ref_stepper, u0, "ref_stepper")
        loss, ref, every = self.time_level_loss, self.ref_stepper, self.cut_bptt_every
        unroll = m > 1 and unrolls(stepper, u0, m - 1)  # the branch's chain

        def cut(u, k):
            return stop_gradient_if(k % every == 0, u) if self.cut_bptt else u

        def branch_step(t):
            def body(carry, _):
                (u, target), i = carry  # branch step b = i + 1 (step 0 is the main step)
                u, target = stepper(u), ref(target)
                value = loss(u, target)
                return ((cut(u, t + i + 2), target), i + 1), value

            return body

        def main_step(carry, _):
            u, t = carry
            target = lax.stop_gradient(u) if self.cut_div_chain else u
            # The branch's first network step is the main chain's next state.
            u_next = stepper(u)
            target = ref(target)
            first = loss(u_next, target)
            u_next = cut(u_next, t + 1)
            if m > 1:
                _, rest = scan_chain(
                    branch_step(t), (u_next, target), m - 1, self.remat, unroll=unroll
                )
                first = jnp.concatenate([first[None], rest])
            else:
                first = first[None]
            return (u_next, t + 1), first

        branches = n - m + 1
        (_, _), losses = lax.scan(
            maybe_remat(main_step, self.remat, branches), (u0, jnp.asarray(0)), None,
            length=branches,
        )  # fmt: skip
        return jnp.ravel(losses)
