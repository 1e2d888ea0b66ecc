"""The architecture interface, and the checks and padding helpers every architecture shares."""

import abc
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from .._custom_types import State
from ..stencil import AbstractBoundary, BoundarySpec, Dirichlet, Grid, Neumann, boundary_pairs

#: One `(low, high)` pair of boundary conditions per spatial axis.
BoundaryPairs = tuple[tuple[AbstractBoundary, AbstractBoundary], ...]


class AbstractArchitecture(eqx.Module):
    """A neural stepper on one sample: `(in_channels, *spatial) -> (out_channels, *spatial)`.

    Subclasses are final: they set the fields below and implement `apply`,
    `num_parameters` and `receptive_field`. `__call__` checks the sample (batch with
    `jax.vmap`) and runs `apply`. Ghost points come from the stencil core's boundary
    conditions; boundary values (`Dirichlet(value)`, `Neumann(flux)`) are fixed data, applied
    under `stop_gradient` and not counted as parameters.
    """

    num_spatial_dims: eqx.AbstractVar[int]
    in_channels: eqx.AbstractVar[int]
    out_channels: eqx.AbstractVar[int]

    @property
    @abc.abstractmethod
    def num_parameters(self) -> int:
        """Number of trainable scalars (weights, biases, gates)."""

    @property
    @abc.abstractmethod
    def receptive_field(self) -> tuple[int, ...]:
        """Per spatial axis, the grid points of the input one output point can depend on."""

    @abc.abstractmethod
    def apply(self, u: State) -> State:
        """The forward pass on one checked sample (see `__call__`)."""

    def __call__(self, u: State) -> State:
        """Apply to one sample.

        **Arguments:**

        - `u`: one sample, shape `(in_channels, *spatial)`.

        **Returns:** shape `(out_channels, *spatial)`, in `u`'s dtype.
        """
        check_sample(u, self.num_spatial_dims, self.in_channels, type(self).__name__)
        return self.apply(u)


def check_sample(u, num_spatial_dims: int, channels: int, who: str) -> None:
    """A `ValueError` unless `u` is one sample `(channels, *spatial)` of the right rank."""
    shape = getattr(u, "shape", None)
    if shape is None or len(shape) != num_spatial_dims + 1:
        raise ValueError(
            f"`u` must be one sample of shape (channels, *spatial) with {num_spatial_dims} "
            f"spatial axes for this {who}, got shape {shape}. Architectures act on one sample; "
            "batch with `jax.vmap`."
        )
    if shape[0] != channels:
        raise ValueError(f"`u` must have {channels} channel(s) for this {who}, got shape {shape}.")


def check_dims(num_spatial_dims, grid: Grid | None) -> int:
    """`num_spatial_dims` checked (1, 2 or 3) and consistent with `grid`."""
    if isinstance(num_spatial_dims, bool) or num_spatial_dims not in (1, 2, 3):
        raise ValueError(f"`num_spatial_dims` must be 1, 2 or 3, got {num_spatial_dims!r}.")
    if grid is not None:
        if not isinstance(grid, Grid):
            raise TypeError(f"`grid` must be a `Grid` or None, got {type(grid).__name__}.")
        if grid.ndim != num_spatial_dims:
            raise ValueError(
                f"`grid` has {grid.ndim} axes but `num_spatial_dims` is {num_spatial_dims}."
            )
    return int(num_spatial_dims)


def kernel_tuple(kernel_size, num_spatial_dims: int, name: str = "kernel_size") -> tuple:
    """`kernel_size` as one int `>= 1` per spatial axis."""
    if isinstance(kernel_size, (int, np.integer)) and not isinstance(kernel_size, bool):
        kernel_size = (int(kernel_size),) * num_spatial_dims
    if (
        not isinstance(kernel_size, Sequence)
        or len(kernel_size) != num_spatial_dims
        or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1
                   for k in kernel_size)
    ):  # fmt: skip
        raise ValueError(
            f"`{name}` must be an int >= 1 or one per spatial axis ({num_spatial_dims}), got "
            f"{kernel_size!r}."
        )
    return tuple(int(k) for k in kernel_size)


def check_activation(activation) -> Callable:
    if not callable(activation):
        raise TypeError(
            f"`activation` must be callable (e.g. `jax.nn.gelu`), got "
            f"{type(activation).__name__}: {activation!r}."
        )
    return activation


def check_residual(residual, in_channels: int, out_channels: int) -> bool:
    if not isinstance(residual, bool):
        raise TypeError(f"`residual` must be a bool, got {type(residual).__name__}.")
    if residual and in_channels != out_channels:
        raise ValueError(
            "`residual=True` needs `in_channels == out_channels` (the stepper returns "
            f"`u + f(u)`), got in_channels={in_channels} and out_channels={out_channels}."
        )
    return residual


def check_channels(**channels) -> None:
    for name, value in channels.items():
        check_int(name, value, 1)


def normalise_boundary(boundary: BoundarySpec, grid: Grid | None, num_spatial_dims: int):
    """`boundary` as one checked `(low, high)` pair per axis (a cell grid when `grid` is None)."""
    reference = grid if grid is not None else Grid((1,) * num_spatial_dims)
    return boundary_pairs(boundary, reference)


def homogeneous(pairs: BoundaryPairs) -> BoundaryPairs:
    """The same kinds of condition with zero value and flux (for hidden feature channels)."""

    def zero(bc):
        if isinstance(bc, Dirichlet):
            return Dirichlet(0.0)
        if isinstance(bc, Neumann):
            return Neumann(0.0)
        return bc

    return tuple((zero(low), zero(high)) for low, high in pairs)


def sample_grid(grid: Grid | None, spatial: tuple[int, ...]) -> Grid:
    """`grid`, or a cell-centred grid of unit spacing with the sample's shape."""
    if grid is not None:
        return grid
    return Grid(tuple(spatial), extent=tuple(float(n) for n in spatial), placement="cell")


def default_dtype(dtype):
    """`dtype`, or the default float dtype (float64 when x64 is on)."""
    return jnp.dtype(dtype) if dtype is not None else jax.dtypes.canonicalize_dtype(float)


def check_network(
    num_spatial_dims, in_channels, out_channels, width, kernel_size, activation, residual,
    boundary: BoundarySpec, grid: Grid | None,
):  # fmt: skip
    """The checks every network shares; **returns** `(num_spatial_dims, kernel, activation,
    residual, outer boundary pairs, hidden boundary pairs)` (see `homogeneous`)."""
    d = check_dims(num_spatial_dims, grid)
    check_channels(in_channels=in_channels, out_channels=out_channels, width=width)
    kernel = kernel_tuple(kernel_size, d)
    outer = normalise_boundary(boundary, grid, d)
    activation = check_activation(activation)
    residual = check_residual(residual, in_channels, out_channels)
    return d, kernel, activation, residual, outer, homogeneous(outer)
