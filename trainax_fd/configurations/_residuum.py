"""Residuum training: a discrete condition on consecutive states of the network's rollout."""

from collections.abc import Callable

import equinox as eqx
import jax
from jax import lax
from jaxtyping import Array, Float, PyTree

from .._checks import check_int
from ._base import (
    DEFAULT_LOSS,
    AbstractConfiguration,
    Loss,
    Remat,
    check_cut_every,
    check_loss,
    check_remat,
    check_stepper,
    check_window,
    level,
    level_weights,
    scan_chain,
    stop_gradient_if,
    unrolls,
)


class StepperResiduum(eqx.Module):
    """The residuum of an explicit scheme: `u_next - stepper(u_prev)`.

    Built from any stepper of `trainax_fd.reference` (so from the stencil core): it vanishes
    exactly on the scheme's own trajectories. Use it as the `residuum_fn` of `Residuum`.

    **Arguments:**

    - `stepper`: the scheme, one state `(channels, *spatial)` to the next.
    """

    stepper: Callable

    def __call__(self, u_next: PyTree[Array], u_prev: PyTree[Array]) -> PyTree[Array]:
        """**Returns:** `u_next - stepper(u_prev)`, leaf by leaf, shapes of `u_next`."""
        return jax.tree_util.tree_map(lambda a, b: a - b, u_next, self.stepper(u_prev))


class Residuum(AbstractConfiguration):
    """Residuum rollout: the network's consecutive states should satisfy a discrete equation.

    `level_losses[t] = loss(residuum_fn(u_(t+1), u_t))` (compared with zero) along the
    network's own rollout from the initial condition; only initial conditions are read.

    **Arguments:**

    - `residuum_fn`: `(u_next, u_prev) -> residuum` PyTree, e.g. `StepperResiduum(ref)`.
    - `num_rollout_steps`: rollout length `n >= 1`.
    - `time_level_loss`: single-sample loss called as `loss(residuum, None)` (default `MSE()`).
    - `cut_bptt`, `cut_bptt_every`: as in `Supervised`.
    - `cut_prev`, `cut_next`: stop gradients through `u_t` / `u_(t+1)` inside the residuum.
    - `time_level_weights`: shape `(n,)`; ones when `None`.
    - `remat`: rematerialise each step in the backward pass; `"auto"` (default): in
        chains longer than 8 steps.
    """

    residuum_fn: Callable
    num_rollout_steps: int = eqx.field(static=True)
    time_level_loss: Loss
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    cut_prev: bool = eqx.field(static=True)
    cut_next: bool = eqx.field(static=True)
    time_level_weights: Float[Array, "num_rollout_steps"]
    remat: Remat = eqx.field(static=True)

    def __init__(
        self,
        residuum_fn: Callable,
        num_rollout_steps: int = 1,
        *,
        time_level_loss: Loss = DEFAULT_LOSS,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_prev: bool = False,
        cut_next: bool = False,
        time_level_weights=None,
        remat: Remat = "auto",
    ):
        if residuum_fn is None:
            raise ValueError(
                "`Residuum` needs a residuum function: pass `residuum_fn=` (e.g. "
                "`StepperResiduum(reference_stepper)`), got None."
            )
        if not callable(residuum_fn):
            raise TypeError(f"`residuum_fn` must be callable, got {type(residuum_fn).__name__}.")
        self.residuum_fn = residuum_fn
        self.num_rollout_steps = check_int("num_rollout_steps", num_rollout_steps)
        self.time_level_loss = check_loss(time_level_loss)
        self.cut_bptt = bool(cut_bptt)
        self.cut_bptt_every = check_cut_every(cut_bptt_every)
        self.cut_prev, self.cut_next = bool(cut_prev), bool(cut_next)
        self.time_level_weights = level_weights(
            time_level_weights, num_rollout_steps, "time_level_weights", "num_rollout_steps"
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
        return self.time_level_weights

    def level_losses(self, stepper: Callable, window):
        check_window(window, 1, "Residuum")
        u0 = level(window, 0)
        check_stepper(stepper, u0)

        def body(carry, _):
            u_prev, t = carry
            u_next = stepper(u_prev)
            prev = lax.stop_gradient(u_prev) if self.cut_prev else u_prev
            nxt = lax.stop_gradient(u_next) if self.cut_next else u_next
            value = self.time_level_loss(self.residuum_fn(nxt, prev), None)
            if self.cut_bptt:
                u_next = stop_gradient_if((t + 1) % self.cut_bptt_every == 0, u_next)
            return (u_next, t + 1), value

        n = self.num_rollout_steps
        _, losses = scan_chain(body, u0, n, self.remat, unroll=unrolls(stepper, u0, n))
        return losses
