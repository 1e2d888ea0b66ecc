"""The full loss of an objective over a whole data set, without an optimizer."""

from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._custom_types import Scalar
from ..data import AbstractDataset, AbstractDataSource
from ..objectives import AbstractObjective, WindowObjective, as_objective
from ..trainers._sources import build_dataset
from ..trainers._trainer import full_loss_of


class FullLoss(eqx.Module):
    """An objective's loss over a whole data set, as a `Trainer` on the same data sees it.

    `FullLoss(data, objective)(model)` equals `Trainer(data, objective, ...).full_loss(model)`;
    no optimizer is needed. Data and objective are taken as the `Trainer` takes them
    (trajectories with a configuration; a data set such as `Pairs` or `Windows`; a `Sampler`,
    whose loss is that of the batch drawn with `key`).

    A configuration of rollout `n` reads windows of `n + 1` time levels by default, so longer
    rollouts have fewer windows (`samples * (time - n)` with `starts="all"`). To evaluate
    several rollouts on the same windows, give them all the `window_length` of the longest.

    **Arguments:**

    - `data`: trajectories `(samples, time, channels, *spatial)`, a data set or a source.
    - `objective`: a configuration, an objective, or a function `loss(model, batch)`.
    - `starts`, `window_length`: for trajectories, as in `Trainer`.
    - `reduction`: reduces a configuration's per-window losses of one level.
    - `canonical_convolutions`: as in `Trainer` (`None`: on CPU when the loss has any).
    """

    data: AbstractDataset | AbstractDataSource
    objective: AbstractObjective
    canonical_convolutions: bool | None = eqx.field(static=True)

    def __init__(
        self,
        data: PyTree[Array] | AbstractDataset | AbstractDataSource,
        objective: Any,
        *,
        starts: Literal["all", "initial"] = "all",
        window_length: int | None = None,
        reduction: Callable = jnp.mean,
        canonical_convolutions: bool | None = None,
    ):
        self.objective = as_objective(objective, reduction)
        self.data = build_dataset(data, self.objective, starts=starts, window_length=window_length)
        self.canonical_convolutions = canonical_convolutions

    @property
    def configuration(self):
        """The configuration, for an objective over windows (else `None`)."""
        if isinstance(self.objective, WindowObjective):
            return self.objective.configuration
        return None

    @property
    def num_examples(self) -> int:
        """Examples the loss is taken over (1 batch for a source without a data set)."""
        return getattr(self.data, "num_examples", 1)

    def full_loss(self, model, *, state=None, chunk_size: int | None = None, key=None) -> Scalar:
        """The loss over all examples, `chunk_size` at a time (see `Trainer.full_loss`).

        **Returns:** a scalar.
        """
        return full_loss_of(
            self.objective, self.data, model, state, chunk_size, key, self.canonical_convolutions
        )

    def __call__(self, model, *, state=None, chunk_size: int | None = None, key=None) -> Scalar:
        """As `full_loss`."""
        return self.full_loss(model, state=state, chunk_size=chunk_size, key=key)
