"""Loss landscapes: full losses over 1D slices and 2D planes of steppers, vmapped and chunked.

Axes say how a coordinate changes the base stepper: `Parameter` sets selected weights,
`Direction` moves along a (random, filter-normalised) direction, `Custom` calls a function.
`loss_landscape` evaluates one or several losses (`Trainer`s or `FullLoss`es, e.g. one per
rollout length) on the grid and returns a `Landscape` for `trainax_fd.plot`.
"""

from ._axes import (
    AbstractAxis as AbstractAxis,
    Custom as Custom,
    Direction as Direction,
    Parameter as Parameter,
)
from ._directions import random_direction as random_direction
from ._landscape import Landscape as Landscape, loss_landscape as loss_landscape
from ._loss import FullLoss as FullLoss
