"""Rollout evaluation as APEBench measures it: per-step metrics of autoregressive rollouts
against reference trajectories (nRMSE, RMSE, MAE, symmetric variants, correlation, Fourier
bands, H1), their geometric mean and correlation time, over one stepper or an ensemble."""

from ._callback import ValidationRollout as ValidationRollout
from ._evaluate import (
    Evaluation as Evaluation,
    evaluate as evaluate,
    evaluate_ensemble as evaluate_ensemble,
)
from ._metrics import (
    BANDS as BANDS,
    MAE as MAE,
    MSE as MSE,
    RMSE as RMSE,
    AbstractStateMetric as AbstractStateMetric,
    Correlation as Correlation,
    Error as Error,
    H1_nRMSE as H1_nRMSE,
    correlation as correlation,
    fourier_bands as fourier_bands,
    fourier_nRMSE as fourier_nRMSE,
    nMAE as nMAE,
    nMSE as nMSE,
    nRMSE as nRMSE,
    sMAE as sMAE,
    sMSE as sMSE,
    sRMSE as sRMSE,
)
