"""A plain convolutional stepper: a stack of padded convolutions with activations between."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
from jaxtyping import PRNGKeyArray

from .._checks import check_int, check_key
from .._custom_types import State
from ..stencil import BoundarySpec, Grid
from ._base import AbstractArchitecture, check_network
from ._stencil_conv import StencilConv


class ConvNet(AbstractArchitecture):
    """`depth` convolutions, `in -> width -> ... -> width -> out`, an activation between each.

    The stepper is `u + f(u)` when `residual`, else `f(u)`. Every convolution pads its input
    once with ghost points from the boundary conditions: the first one with `boundary` as
    given (the physical field), the hidden ones with the homogeneous conditions of the same
    kinds (`Dirichlet(0)`, `Neumann(0)`, periodic), since a boundary value of the field means
    nothing for a feature channel.

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `in_channels`, `out_channels`: channels of the state and of the output.
    - `width`: hidden channels.
    - `depth`: number of convolutions, `>= 1` (1 is a single linear convolution).
    - `kernel_size`: points per axis, an int or one per axis.
    - `activation`: elementwise nonlinearity between convolutions (default `jax.nn.gelu`).
    - `boundary`: boundary specification (periodic by default).
    - `residual`: return `u + f(u)` (needs `in_channels == out_channels`).
    - `use_bias`: biases in every convolution.
    - `grid`, `dtype`: as in `StencilConv`.
    - `key`: a `jax.random.key`.
    """

    layers: tuple[StencilConv, ...]
    activation: Callable = eqx.field(static=True)
    residual: bool = eqx.field(static=True)
    num_spatial_dims: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        width: int = 32,
        depth: int = 4,
        kernel_size: int | Sequence[int] = 3,
        activation: Callable = jax.nn.gelu,
        boundary: BoundarySpec = "periodic",
        residual: bool = False,
        use_bias: bool = True,
        grid: Grid | None = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        d, kernel, self.activation, self.residual, outer, hidden = check_network(
            num_spatial_dims, in_channels, out_channels, width, kernel_size, activation,
            residual, boundary, grid,
        )  # fmt: skip
        check_int("depth", depth, 1)
        check_key(key)
        channels = [in_channels] + [width] * (depth - 1) + [out_channels]
        self.layers = tuple(
            StencilConv(
                d,
                channels[i],
                channels[i + 1],
                kernel,
                use_bias=use_bias,
                boundary=outer if i == 0 else hidden,
                grid=grid,
                dtype=dtype,
                key=k,
            )
            for i, k in enumerate(jax.random.split(key, depth))
        )
        self.num_spatial_dims, self.in_channels, self.out_channels = d, in_channels, out_channels

    @property
    def num_parameters(self) -> int:
        return sum(layer.num_parameters for layer in self.layers)

    @property
    def receptive_field(self) -> tuple[int, ...]:
        return tuple(
            1 + sum(layer.kernel_size[a] - 1 for layer in self.layers)
            for a in range(self.num_spatial_dims)
        )

    def apply(self, u: State) -> State:
        x = self.layers[0](u)
        for layer in self.layers[1:]:
            x = layer(self.activation(x))
        return u + x if self.residual else x
