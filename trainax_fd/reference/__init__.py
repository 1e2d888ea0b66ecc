"""Reference PDE steppers built only from the stencil core, rollouts and initial conditions."""

from ._advection import Advection as Advection
from ._base import AbstractStepper as AbstractStepper
from ._burgers import Burgers as Burgers
from ._diffusion import Diffusion as Diffusion, FourierHeat as FourierHeat
from ._generators import initial_conditions as initial_conditions
from ._implicit_diffusion import ImplicitDiffusion as ImplicitDiffusion
from ._initial import (
    gaussian_blobs as gaussian_blobs,
    random_fourier as random_fourier,
    random_soft_rectangles as random_soft_rectangles,
    sine as sine,
)
from ._poisson import PoissonRelaxation as PoissonRelaxation
from ._rollout import (
    Repeated as Repeated,
    Rollout as Rollout,
    repeat as repeat,
    rollout as rollout,
    trajectories as trajectories,
)
