"""What a solve reports, and the one stopping loop every iteration shares."""

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

PATIENCE = 3
"""Iterations without a 10 % gain on the best residual before a solve counts as stalled."""


class SolveReport(eqx.Module):
    """How a solve went; fixed-size arrays, so it passes through `jit` and `vmap`.

    Residuals are relative, `||f - A u||_2 / ||f||_2` over all channels and points, with
    `A u = f` the linear system of the equation (boundary values moved into `f`).

    **Fields:**

    - `iterations`: multigrid cycles (`method="mg"`) or conjugate-gradient iterations done.
    - `residuals`: shape `(max_iterations + 1,)`; entry `0` is the start (after full
      multigrid, if used), entry `i` after iteration `i`; `NaN` after the last iteration.
    - `factors`: shape `(max_iterations,)`; `residuals[i + 1] / residuals[i]`, the
      convergence factor of each iteration; `NaN` after the last.
    - `converged`: whether the final residual is at most `tolerance`.
    - `tolerance`: the tolerance used: the one given, or by default `floor`.
    - `floor`: a bound on the rounding error of the residual at the solution,
      `eps || |A| |u| + |f| ||_2 / ||f||_2`. Residuals reach a few times to ten times below
      it and no further; the default tolerance is the bound itself.

    Batched (under `vmap`) every field gains the batch axes in front.
    """

    iterations: Int[Array, ""]
    residuals: Float[Array, " history"]
    factors: Float[Array, " iterations"]
    converged: Bool[Array, ""]
    tolerance: Float[Array, ""]
    floor: Float[Array, ""]

    @property
    def residual(self) -> Float[Array, ""]:
        """The final relative residual."""
        last = jnp.expand_dims(self.iterations, -1)
        return jnp.take_along_axis(self.residuals, last, axis=-1)[..., 0]

    @property
    def convergence_factor(self) -> Float[Array, ""]:
        """The mean factor per iteration, `(residual / residuals[0]) ** (1 / iterations)`
        (`NaN` without iterations)."""
        n = self.iterations.astype(self.residuals.dtype)
        return jnp.where(n > 0, (self.residual / self.residuals[..., 0]) ** (1 / n), jnp.nan)


def iterate(
    step: Callable,
    state,
    residual: Callable,
    floor: Callable,
    *,
    scale: Array,
    tol: Array | None,
    max_iterations: int,
) -> tuple:
    """Run `state = step(state)` until the residual meets the tolerance, stalls, stops being
    finite or `max_iterations` is reached.

    `residual(state)` gives the residual array `f - A u`, the relative residual being
    `||r|| / scale`; `floor(state)` the rounding floor; `tol=None` means the floor. The
    residual array travels in the loop state and its norm is taken there, never of the
    expression that makes it: a reduction fused with a stencil gets every shifted copy of the
    grid materialised by XLA:CPU, several arrays of the grid's size. So the loop's condition
    measures the latest iterate and the body records, one iteration later, what the condition
    saw. **Returns:** `(state, SolveReport)`.
    """

    def target(state):
        return floor(state) if tol is None else jnp.asarray(tol, scale.dtype)

    def cond(carry):
        i, state, r, _, stall, _ = carry
        rel = jnp.linalg.norm(r) / scale
        going = (i < max_iterations) & (rel > target(state)) & (stall < PATIENCE)
        return going & jnp.isfinite(rel)

    def body(carry):
        i, state, r, best, stall, history = carry
        rel = jnp.linalg.norm(r) / scale  # the residual the condition just accepted
        gained = rel < 0.9 * best
        stall = jnp.where(gained, 0, stall + 1)
        best = jnp.where(gained, rel, best)
        state = step(state)
        return i + 1, state, residual(state), best, stall, history.at[i].set(rel)

    history = jnp.full((max_iterations + 1,), jnp.nan, scale.dtype)
    best = jnp.asarray(jnp.inf, scale.dtype)  # the first measurement is a gain: no stall
    init = (jnp.asarray(0), state, residual(state), best, jnp.asarray(-1), history)
    i, state, r, _, _, history = lax.while_loop(cond, body, init)
    rel = jnp.linalg.norm(r) / scale
    history = history.at[i].set(rel)
    factors = history[1:] / history[:-1]
    level = floor(state)
    report = SolveReport(i, history, factors, rel <= target(state), target(state), level)
    return state, report
