"""Configurations: how a window of a trajectory becomes a loss for a stepper."""

from ._base import AbstractConfiguration as AbstractConfiguration
from ._composite import Composite as Composite
from ._diverted import DivertedChain as DivertedChain
from ._residuum import Residuum as Residuum, StepperResiduum as StepperResiduum
from ._supervised import MixChain as MixChain, Supervised as Supervised
