"""trainax's losses (`tx.loss.*`); batched, over `trainax_fd.losses`."""

from ._loss import (
    BaseLoss as BaseLoss,
    MAELoss as MAELoss,
    MSELoss as MSELoss,
    Normalized_MAELoss as Normalized_MAELoss,
    Normalized_MSELoss as Normalized_MSELoss,
)
