"""trainax's batched losses (`tx.loss.*`) over `trainax_fd.losses`."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ... import losses


class BaseLoss(eqx.Module):
    """A trainax loss: `single_batch` on one sample, `__call__`/`multi_batch` on a batch,
    reduced over the batch by `batch_reduction` (default `jnp.mean`). Subclass it and
    implement `single_batch` for a loss of your own, as in trainax."""

    batch_reduction: Callable = eqx.field(static=True)

    def __init__(self, *, batch_reduction: Callable = jnp.mean):
        self.batch_reduction = batch_reduction

    @abc.abstractmethod
    def single_batch(self, prediction, target=None):
        """The loss of one sample `(channels, *spatial)` (no batch axis)."""

    def multi_batch(self, prediction, target=None):
        """`batch_reduction(vmap(single_batch))` over a leading batch axis."""
        axes = (0, None) if target is None else (0, 0)
        return self.batch_reduction(jax.vmap(self.single_batch, in_axes=axes)(prediction, target))

    def __call__(self, prediction, target=None):
        return self.multi_batch(prediction, target)


class MSELoss(BaseLoss):
    """Mean squared error (`trainax_fd.losses.MSE` per sample)."""

    def single_batch(self, prediction, target=None):
        return losses.MSE()(prediction, target)


class MAELoss(BaseLoss):
    """Mean absolute error (`trainax_fd.losses.MAE` per sample)."""

    def single_batch(self, prediction, target=None):
        return losses.MAE()(prediction, target)


class Normalized_MSELoss(BaseLoss):
    """MSE normalised by the target's mean square (`trainax_fd.losses.NormalizedMSE`)."""

    def single_batch(self, prediction, target=None):
        return losses.NormalizedMSE()(prediction, target)


class Normalized_MAELoss(BaseLoss):
    """MAE normalised by the target's mean absolute value (`trainax_fd.losses.NormalizedMAE`)."""

    def single_batch(self, prediction, target=None):
        return losses.NormalizedMAE()(prediction, target)


def per_sample(loss) -> tuple[Callable, Callable]:
    """`(single-sample loss, batch reduction)` of a trainax loss, or of a `trainax_fd.losses`
    loss (reduced with the mean)."""
    if isinstance(loss, BaseLoss):
        return loss.single_batch, loss.batch_reduction
    if isinstance(loss, losses.AbstractLoss):
        return loss, jnp.mean
    raise TypeError(
        "`time_level_loss` must be a trainax loss (`tx.loss.MSELoss()`, a `tx.loss.BaseLoss` "
        f"subclass) or a `trainax_fd.losses` loss, got {type(loss).__name__}."
    )
