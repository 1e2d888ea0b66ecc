"""Reproductions of published studies on the package's stencil core, steppers and trainer,
each a command line (`python -m trainax_fd.reproductions.<name>`, small by default, `--full`
at the study's sizes) and a notebook:

- `steady_diffusion`: `div(k grad T) + s = 0` solved as an optimisation (least squares on
  the residual, the energy), coarse to fine, by multigrid, and a relaxation learned from
  Jacobi sweeps;
- `heat_inversion`: a U-Net learns to invert heat diffusion with SIP updates and with Adam;
- `pinn`: derivatives at points and physics-informed networks on a square and a disk;
- `apebench_baseline`: APEBench's 1D advection baseline, one-step, rollout and diverted-chain
  training of several seeds, evaluated as APEBench does.
"""

from ._figures import plot_levels as plot_levels, plot_residuals as plot_residuals
from ._relaxation import (
    LearnedRelaxation as LearnedRelaxation,
    reduction_table as reduction_table,
    reference_relaxations as reference_relaxations,
    relaxation_sampler as relaxation_sampler,
    residual_history as residual_history,
)
from ._steady_diffusion import (
    Minimisation as Minimisation,
    SteadyDiffusion as SteadyDiffusion,
    average_pool as average_pool,
    coarse_to_fine as coarse_to_fine,
    condition_number as condition_number,
    level_table as level_table,
    minimise as minimise,
    refine as refine,
)
