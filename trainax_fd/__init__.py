"""trainax_fd: a finite-difference stencil core, reference PDE steppers and trainers for
autoregressive neural PDE emulators in JAX."""

from . import (
    arch as arch,
    configurations as configurations,
    data as data,
    evaluation as evaluation,
    landscape as landscape,
    losses as losses,
    plot as plot,
    reference as reference,
    solvers as solvers,
    stencil as stencil,
    sweeps as sweeps,
    trainers as trainers,
)
from ._layout import canonical_convolutions as canonical_convolutions
from .landscape import Landscape as Landscape, loss_landscape as loss_landscape
from .reference import (
    AbstractStepper as AbstractStepper,
    Advection as Advection,
    Burgers as Burgers,
    Diffusion as Diffusion,
    FourierHeat as FourierHeat,
    PoissonRelaxation as PoissonRelaxation,
    repeat as repeat,
    rollout as rollout,
    trajectories as trajectories,
)
from .stencil import (
    Dirichlet as Dirichlet,
    Grid as Grid,
    Neumann as Neumann,
    Periodic as Periodic,
    Stencil as Stencil,
)
from .sweeps import SweepResult as SweepResult, sweep as sweep
from .trainers import Trainer as Trainer, TrainResult as TrainResult

__version__ = "0.1.0"
