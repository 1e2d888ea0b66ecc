"""The full loss of a configuration over all windows of a data set, without an optimizer."""

from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import optax
from jaxtyping import Array, PyTree

from .._custom_types import Scalar
from ..configurations import AbstractConfiguration
from ..data import Windows
from ..trainers import Trainer


class FullLoss(eqx.Module):
    """A configuration's loss over all windows of some trajectories, as a `Trainer` sees it.

    The windows, the reduction and the evaluation are those of a `Trainer` built with the same
    arguments, so `FullLoss(data, config)(stepper)` equals
    `Trainer(data, config, ...).full_loss(stepper)`; no optimizer is needed.

    A configuration of rollout `n` reads windows of `n + 1` time levels by default, so longer
    rollouts have fewer windows (`samples * (time - n)` with `starts="all"`). To evaluate
    several rollouts on the same windows, give them all the `window_length` of the longest.

    **Arguments:**

    - `trajectories`: PyTree of arrays `(samples, time, channels, *spatial)`.
    - `configuration`: how a window becomes a loss (`trainax_fd.configurations`).
    - `starts`: `"all"` window starts or `"initial"` (rollouts from the initial condition).
    - `window_length`: time levels per window (default: what the configuration reads).
    - `reduction`: reduces a batch of per-window level losses, `(windows,) -> ()`.
    """

    trainer: Trainer
    configuration: AbstractConfiguration

    def __init__(
        self,
        trajectories: PyTree[Array],
        configuration: AbstractConfiguration,
        *,
        starts: Literal["all", "initial"] = "all",
        window_length: int | None = None,
        reduction: Callable = jnp.mean,
    ):
        self.trainer = Trainer(
            trajectories,
            configuration,
            optax.identity(),
            num_steps=1,
            batch_size=1,
            starts=starts,
            window_length=window_length,
            reduction=reduction,
        )
        self.configuration = configuration

    @property
    def windows(self) -> Windows:
        """The lazy windows the loss is taken over."""
        return self.trainer.windows

    def full_loss(self, stepper, *, chunk_size: int | None = None) -> Scalar:
        """The loss over all windows, `chunk_size` windows at a time (see `Trainer.full_loss`).

        **Returns:** a scalar.
        """
        return self.trainer.full_loss(stepper, chunk_size=chunk_size)

    def __call__(self, stepper, *, chunk_size: int | None = None) -> Scalar:
        """As `full_loss`."""
        return self.full_loss(stepper, chunk_size=chunk_size)
