"""Figures of trajectories: space-time diagrams (1D) and snapshots (2D)."""

import numpy as np

from .._custom_types import State, Trajectory
from ..stencil import Grid


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    return ax


def spacetime(
    trajectory: Trajectory,
    grid: Grid,
    dt: float = 1.0,
    *,
    channel: int = 0,
    ax=None,
    title: str | None = None,
    cmap: str = "RdBu_r",
):
    """Draw a 1D trajectory as an image: space across, time upwards.

    **Arguments:**

    - `trajectory`: shape `(time, channels, N)`.
    - `grid`: the 1D grid (sets the x extent).
    - `dt`: time between stored states (sets the t extent).
    - `channel`: which channel to draw.
    - `ax`: a matplotlib axes; a new figure if `None`.

    **Returns:** the `AxesImage`, so a colour bar can be attached.
    """
    data = np.asarray(trajectory)
    if grid.ndim != 1 or data.ndim != 3 or data.shape[2] != grid.shape[0]:
        raise ValueError(
            f"`trajectory` must have shape (time, channels, {grid.shape[0]}) on a 1D grid, got "
            f"{data.shape} on a {grid.ndim}D grid."
        )
    extent = (0.0, grid.extent[0], 0.0, dt * (data.shape[0] - 1))
    return _image(ax, data[:, channel], extent, ("x", "t"), title, cmap, aspect="auto")


def snapshot(
    u: State, grid: Grid, *, channel: int = 0, ax=None, title: str | None = None, cmap="RdBu_r"
):
    """Draw one 2D state `(channels, Nx, Ny)` with x across and y upwards.

    **Returns:** the `AxesImage`.
    """
    data = np.asarray(u)
    if grid.ndim != 2 or data.shape[1:] != grid.shape:
        raise ValueError(
            f"`u` must have shape (channels, {grid.shape[0]}, {grid.shape[-1]}) on a 2D grid, got "
            f"{data.shape} on a {grid.ndim}D grid."
        )
    extent = (0.0, grid.extent[0], 0.0, grid.extent[1])
    return _image(ax, data[channel].T, extent, ("x", "y"), title, cmap, aspect="equal")


def _image(ax, image, extent, labels, title, cmap, aspect):
    """A symmetric-colour-range image with axis labels; **returns** the `AxesImage`."""
    ax = _axes(ax)
    limit = float(np.max(np.abs(image))) or 1.0
    drawn = ax.imshow(
        image,
        origin="lower",
        aspect=aspect,
        cmap=cmap,
        vmin=-limit,
        vmax=limit,
        extent=extent,
        interpolation="nearest",
    )
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    if title:
        ax.set_title(title)
    return drawn
