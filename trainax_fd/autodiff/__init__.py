"""Physics-informed training on collocation points: derivatives of a function or network at
points (Jacobian and Hessian entries, gradients, divergence, a Laplacian without the
Hessian, mixed partials by name), domains and their boundaries, point samplers that draw
fresh points inside the compiled training loop, and a physics-informed objective."""

from ..data import Fixed as Fixed
from ._derivatives import (
    derivative as derivative,
    divergence as divergence,
    gradient as gradient,
    hessian as hessian,
    hessian_entry as hessian_entry,
    jacobian as jacobian,
    jacobian_entry as jacobian_entry,
    laplacian as laplacian,
)
from ._domains import (
    AbstractDomain as AbstractDomain,
    Ball as Ball,
    Boundary as Boundary,
    Box as Box,
    Interval as Interval,
    Parallelogram as Parallelogram,
)
from ._pinn import (
    PINN as PINN,
    AbstractCondition as AbstractCondition,
    Condition as Condition,
    Dirichlet as Dirichlet,
    ExactDirichlet as ExactDirichlet,
    Neumann as Neumann,
    Solution as Solution,
)
from ._points import (
    Collocation as Collocation,
    Labelled as Labelled,
    Points as Points,
)
from ._sequences import unit_cube as unit_cube
