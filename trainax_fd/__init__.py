"""trainax_fd: a finite-difference stencil core, reference PDE steppers and trainers for
autoregressive neural PDE emulators in JAX."""

from . import data as data, losses as losses, reference as reference, stencil as stencil
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

__version__ = "0.1.0"
