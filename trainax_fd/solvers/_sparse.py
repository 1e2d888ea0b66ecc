"""The discrete operator as a `scipy.sparse` matrix (scipy is imported only here)."""

import numpy as np

from .._custom_types import Coefficient
from ..stencil import BoundarySpec, Grid, Periodic, boundary_pairs


def to_sparse(
    grid: Grid,
    bc: BoundarySpec,
    conductivity: Coefficient = 1.0,
    reaction: Coefficient | None = None,
    *,
    channel: int = 0,
):
    """The matrix of `u -> div_k_grad(u, k, grid, bc) - c u` for one channel, as a
    `scipy.sparse.csr_matrix` of shape `(grid.size, grid.size)` (scipy must be installed).

    Points are numbered in C order (`u[channel].ravel()`). The matrix is the linear part:
    boundary values do not enter it (they are the same as zero values here), so that for any
    boundary condition `div_k_grad(u, k, grid, bc)[channel].ravel() == A @ u[channel].ravel()
    + div_k_grad(0, k, grid, bc)[channel].ravel()`. It is the negative of the symmetric
    (semi-)definite matrix multigrid solves, for checks and for solvers of one's own: the
    equation `div(k grad u) - c u + s = 0` reads `A u = -(s + div_k_grad(0, k, grid, bc))`.

    **Arguments:**

    - `grid`, `bc`: the grid and boundary specification.
    - `conductivity`: `k > 0`, scalar or `(1 or channels, *spatial)`.
    - `reaction`: `c`, scalar or `(1 or channels, *spatial)`, or `None`.
    - `channel`: which channel of `k` and `c` (a single-channel field serves every channel).

    **Returns:** a `scipy.sparse.csr_matrix`, float64.
    """
    try:
        import scipy.sparse as sp
    except ImportError:
        raise ImportError("`to_sparse` needs scipy: `pip install scipy`.") from None
    if not isinstance(grid, Grid):
        raise TypeError(f"`grid` must be a `Grid`, got {type(grid).__name__}: {grid!r}.")
    pairs = boundary_pairs(bc, grid)
    k = _pick("conductivity", conductivity, grid, channel)
    c = 0.0 if reaction is None else _pick("reaction", reaction, grid, channel)
    index = np.arange(grid.size).reshape(grid.shape)
    rows, cols, vals = [], [], []
    diagonal = -np.broadcast_to(c, grid.shape).astype(np.float64).copy()
    for axis, (low, high) in enumerate(pairs):
        n, h2 = grid.shape[axis], grid.spacing[axis] ** 2
        periodic = isinstance(low, Periodic)
        kp = np.pad(
            k,
            [(1, 1) if a == axis else (0, 0) for a in range(grid.ndim)],
            mode="wrap" if periodic else "edge",
        )
        lo = np.take(kp, np.arange(n), axis=axis)
        faces = 0.5 * (lo + np.take(kp, np.arange(1, n + 1), axis=axis)) / h2  # left faces
        right = (
            0.5
            * (
                np.take(kp, np.arange(1, n + 1), axis=axis)
                + np.take(kp, np.arange(2, n + 2), axis=axis)
            )
            / h2
        )
        for face, step, side in ((faces, -1, low), (right, 1, high)):
            neighbour = np.take(index, (np.arange(n) + step) % n, axis=axis)
            edge = np.zeros(grid.shape, bool)
            edge[(slice(None),) * axis + (0 if step < 0 else n - 1,)] = not periodic
            inner = ~edge
            rows.append(index[inner])
            cols.append(neighbour[inner])
            vals.append(face[inner])
            diagonal -= np.where(inner, face, 0.0)
            # beyond the edge the ghost is `slope` times the edge point (see `ghost_slope`)
            slope = side.ghost_slope(grid, axis)
            diagonal += np.where(edge, (slope - 1.0) * face, 0.0)
    rows.append(index.ravel())
    cols.append(index.ravel())
    vals.append(diagonal.ravel())
    size = grid.size
    matrix = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size)
    )
    return matrix.tocsr()


def _pick(name: str, value, grid: Grid, channel: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return np.full(grid.shape, float(array))
    if array.ndim != grid.ndim + 1 or array.shape[1:] != grid.shape:
        raise ValueError(
            f"`{name}` must be a scalar or have shape (1 or channels, "
            f"{', '.join(map(str, grid.shape))}), got {array.shape}."
        )
    if array.shape[0] == 1:
        return array[0]
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise TypeError(f"`channel` must be an int, got {type(channel).__name__}: {channel!r}.")
    if not 0 <= channel < array.shape[0]:
        raise ValueError(
            f"`channel` must lie in [0, {array.shape[0] - 1}] for `{name}` with "
            f"{array.shape[0]} channels, got {channel}."
        )
    return array[channel]
