"""Time-level losses on one sample: pointwise, normalised, Sobolev, spectral, composite."""

from ._base import (
    MAE as MAE,
    MSE as MSE,
    RMSE as RMSE,
    AbstractLoss as AbstractLoss,
    NormalizedMAE as NormalizedMAE,
    NormalizedMSE as NormalizedMSE,
    Weighted as Weighted,
)
from ._spatial import FourierBand as FourierBand, Sobolev as Sobolev
