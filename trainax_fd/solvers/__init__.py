"""Elliptic solves on the stencil core: geometric multigrid, multigrid-preconditioned
conjugate gradients, implicit derivatives and sparse export."""

from ._report import SolveReport as SolveReport
from ._solve import solve as solve
from ._sparse import to_sparse as to_sparse
