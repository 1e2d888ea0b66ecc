"""The configuration interface and the pieces every configuration shares."""

import abc
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PyTree

from .._checks import check_finite, check_int, check_stepper as check_stepper
from .._custom_types import Scalar
from .._layout import has_convolution
from ..losses import MSE

#: A time-level loss on one sample, `loss(prediction, target_or_None) -> scalar`.
Loss = Callable[..., Scalar]
#: Per-level losses of one window, shape `(levels,)`.
LevelLosses = Float[Array, "levels"]
#: The default time-level loss (a stateless Module, safe to share).
DEFAULT_LOSS = MSE()


class AbstractConfiguration(eqx.Module):
    """How one window of a trajectory becomes a scalar loss for a stepper.

    A configuration acts on **one sample**: a window is a PyTree whose leaves have shape
    `(time, channels, *spatial)` (the time levels `0, ..., window_length - 1`); the trainer
    vmaps over a batch of windows. The loss is a weighted sum of per-level losses,
    `weights @ level_losses(stepper, window)`, so a batch of windows reduces level by level
    (`sum_l weights[l] * reduction(losses[:, l])`, the mean by default).

    Subclasses are final and implement `level_losses`, `weights`, `window_length` and
    `ic_only`.
    """

    @property
    @abc.abstractmethod
    def window_length(self) -> int:
        """Time levels of a window this configuration reads (1 for initial conditions only)."""

    @property
    @abc.abstractmethod
    def ic_only(self) -> bool:
        """Whether only the first time level is read (data then stores initial conditions)."""

    @property
    @abc.abstractmethod
    def weights(self) -> LevelLosses:
        """The weight of each level loss, shape `(levels,)`."""

    @abc.abstractmethod
    def level_losses(self, stepper: Callable, window: PyTree[Array]) -> LevelLosses:
        """The unweighted losses of one window, one per level, shape `(levels,)`."""

    def __call__(self, stepper: Callable, window: PyTree[Array]) -> Scalar:
        """The loss of one window: `weights @ level_losses(stepper, window)`.

        **Arguments:**

        - `stepper`: a callable on one state (`(channels, *spatial)` PyTree) to the next.
        - `window`: a PyTree with leaves `(time, channels, *spatial)`, `time >= window_length`.

        **Returns:** a scalar.
        """
        losses = self.level_losses(stepper, window)
        return jnp.sum(self.weights.astype(losses.dtype) * losses)


def level_weights(weights, count: int, name: str, count_name: str) -> Float[Array, "levels"]:
    """`weights` as an array of shape `(count,)` (ones when `None`), checked: the right
    shape, and finite (a `ValueError` now for concrete weights, `eqx.error_if` for traced ones,
    e.g. weights swept under `jax.vmap`)."""
    if weights is None:  # built in NumPy: nothing to compile
        return jax.device_put(np.ones(count, jax.dtypes.canonicalize_dtype(float)))
    weights = jnp.asarray(weights)
    if weights.shape != (count,):
        raise ValueError(
            f"`{name}` must have shape ({count},), one weight per step of `{count_name}`, got "
            f"shape {weights.shape}."
        )
    return check_finite(weights, name)


def check_cut_every(cut_bptt_every: int) -> int:
    return check_int("cut_bptt_every", cut_bptt_every, 1)


def check_loss(loss) -> Loss:
    if not callable(loss):
        raise TypeError(
            f"`time_level_loss` must be callable as `loss(prediction, target)`, got "
            f"{type(loss).__name__}."
        )
    return loss


def check_ref_stepper(ref_stepper, who: str) -> Callable:
    if ref_stepper is None:
        raise ValueError(
            f"`{who}` needs a reference stepper: pass `ref_stepper=` (e.g. a stepper from "
            "`trainax_fd.reference`), got None."
        )
    if not callable(ref_stepper):
        raise TypeError(f"`ref_stepper` must be callable, got {type(ref_stepper).__name__}.")
    return ref_stepper


def check_window(window: PyTree[Array], length: int, who: str) -> None:
    for leaf in jax.tree_util.tree_leaves(window):
        if leaf.ndim < 1 or leaf.shape[0] < length:
            raise ValueError(
                f"`window` must hold at least {length} time levels for {who}, got a leaf of "
                f"shape {leaf.shape}. A window is one sample `(time, channels, *spatial)`; "
                "batch with `jax.vmap`."
            )


def level(window: PyTree[Array], t) -> PyTree[Array]:
    """Time level `t` of a window."""
    return jax.tree_util.tree_map(lambda leaf: leaf[t], window)


def levels(window: PyTree[Array], start: int, stop: int) -> PyTree[Array]:
    """Time levels `start, ..., stop - 1` of a window (leading axis kept)."""
    return jax.tree_util.tree_map(lambda leaf: leaf[start:stop], window)


def stop_gradient_if(cut, state: PyTree[Array]) -> PyTree[Array]:
    """`stop_gradient(state)` where the traced boolean `cut` holds, `state` otherwise."""
    return jax.tree_util.tree_map(lambda x: jnp.where(cut, lax.stop_gradient(x), x), state)


#: Chains of up to this many steps of a stepper with convolutions are unrolled: XLA:CPU runs
#: convolutions outside loops on its faster kernels, which outweighs the longer compilation of
#: a short unrolled chain. Other steppers, and longer chains, stay loops, whose compile time
#: does not grow with their length (measurements: docs/architecture.md).
UNROLL_UP_TO = 8


def unrolls(stepper: Callable, state: PyTree[Array], length: int) -> bool:
    """Whether a chain of `length` steps of `stepper` from `state` is unrolled."""
    return length <= UNROLL_UP_TO and has_convolution(stepper, state)


Remat = bool | Literal["auto"]


def check_remat(remat) -> Remat:
    if isinstance(remat, bool | np.bool_):
        return bool(remat)
    if isinstance(remat, str) and remat == "auto":
        return remat
    raise ValueError(f"`remat` must be True, False or 'auto', got {remat!r}.")


def maybe_remat(fn: Callable, remat: Remat, length: int) -> Callable:
    """`fn`, the step of a chain of `length` steps, rematerialised in the backward pass
    (`jax.checkpoint`) when `remat`; `"auto"`: when the chain is longer than `UNROLL_UP_TO`
    steps. The backward pass then keeps one state a step instead of every activation of the
    step (memory flat in the chain's length), for one more forward pass of each step."""
    if remat == "auto":
        remat = length > UNROLL_UP_TO
    return eqx.filter_checkpoint(fn) if remat else fn


def scan_chain(
    body: Callable, state: PyTree[Array], length: int, remat: Remat, xs=None, *, unroll: bool
) -> tuple[PyTree[Array], Array]:
    """`lax.scan` of `body((state, t), x) -> ((state, t + 1), loss)` from `t = 0`, unrolled
    when `unroll` (see `unrolls`), rematerialised as `maybe_remat` says."""
    (state, _), losses = lax.scan(
        maybe_remat(body, remat, length), (state, jnp.asarray(0)), xs, length=length,
        unroll=unroll,
    )  # fmt: skip
    return state, losses
