"""The finite-difference stencil core: grids, boundary conditions, stencils, operators."""

from ._boundary import (
    AbstractBoundary as AbstractBoundary,
    BoundarySpec as BoundarySpec,
    Dirichlet as Dirichlet,
    Neumann as Neumann,
    Periodic as Periodic,
    boundary_pairs as boundary_pairs,
    pad as pad,
)
from ._grid import Grid as Grid
from ._named import (
    backward as backward,
    central as central,
    forward as forward,
    second as second,
    upwind as upwind,
)
from ._operators import (
    derivative as derivative,
    div_k_grad as div_k_grad,
    div_k_grad_diagonal as div_k_grad_diagonal,
    gradient as gradient,
    laplacian as laplacian,
)
from ._stencil import Stencil as Stencil, fornberg_weights as fornberg_weights
