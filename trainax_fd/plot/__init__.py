"""Matplotlib figures: space-time diagrams, 2D snapshots, loss landscapes, loss histories,
rollout evaluations."""

from ._evaluation import error_curves as error_curves, rollout_panels as rollout_panels
from ._fields import snapshot as snapshot, spacetime as spacetime
from ._landscape import (
    landscape as landscape,
    landscape_grid as landscape_grid,
    landscape_slice as landscape_slice,
    loss_history as loss_history,
)
