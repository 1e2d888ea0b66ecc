"""Objectives: what a training minimises, `objective(model, batch) -> scalar`, split into
per-example terms and one reduction so that training, metrics, full losses, landscapes and
sweeps share one implementation."""

from ._base import AbstractObjective as AbstractObjective
from ._objectives import (
    BatchLoss as BatchLoss,
    InputTarget as InputTarget,
    PerSample as PerSample,
    WindowObjective as WindowObjective,
    as_objective as as_objective,
)
