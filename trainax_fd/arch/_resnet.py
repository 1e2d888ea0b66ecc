"""A residual-block stepper: a lifting convolution, blocks of two convolutions, a projection."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
from jaxtyping import PRNGKeyArray

from .._checks import check_int, check_key
from .._custom_types import State
from ..stencil import BoundarySpec, Grid
from ._base import AbstractArchitecture, check_network
from ._stencil_conv import StencilConv


class ResNet(AbstractArchitecture):
    """A lifting convolution, `num_blocks` residual blocks, a pointwise projection.

    `x = lift(u)` (`in -> width`, `kernel_size`); each block is
    `x = act(x + conv_2(act(conv_1(x))))` with two `width -> width` convolutions of
    `kernel_size`; `f(u) = project(x)` (`width -> out`, kernel 1). The stepper is `u + f(u)`
    when `residual`, else `f(u)`. The lifting pads with `boundary` as given, the block
    convolutions with the homogeneous conditions of the same kinds (see `ConvNet`).

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `in_channels`, `out_channels`: channels of the state and of the output.
    - `width`: channels inside the blocks.
    - `num_blocks`: residual blocks, `>= 1`.
    - `kernel_size`: points per axis of the block convolutions.
    - `activation`, `boundary`, `residual`, `use_bias`, `grid`, `dtype`: as in `ConvNet`.
    - `key`: a `jax.random.key`.
    """

    lift: StencilConv
    blocks: tuple[tuple[StencilConv, StencilConv], ...]
    project: StencilConv
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
        num_blocks: int = 2,
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
        check_int("num_blocks", num_blocks, 1)
        check_key(key)
        keys = iter(jax.random.split(key, 2 * num_blocks + 2))

        def conv(cin, cout, k, bc):
            return StencilConv(d, cin, cout, k, use_bias=use_bias, boundary=bc, grid=grid,
                               dtype=dtype, key=next(keys))  # fmt: skip

        self.lift = conv(in_channels, width, kernel, outer)
        self.blocks = tuple(
            (conv(width, width, kernel, hidden), conv(width, width, kernel, hidden))
            for _ in range(num_blocks)
        )
        self.project = conv(width, out_channels, 1, hidden)
        self.num_spatial_dims, self.in_channels, self.out_channels = d, in_channels, out_channels

    @property
    def num_parameters(self) -> int:
        convs = [self.lift, self.project, *(c for block in self.blocks for c in block)]
        return sum(c.num_parameters for c in convs)

    @property
    def receptive_field(self) -> tuple[int, ...]:
        convs = [self.lift, *(c for block in self.blocks for c in block)]
        return tuple(
            1 + sum(c.kernel_size[a] - 1 for c in convs) for a in range(self.num_spatial_dims)
        )

    def apply(self, u: State) -> State:
        x = self.lift(u)
        for first, second in self.blocks:
            x = self.activation(x + second(self.activation(first(x))))
        x = self.project(x)
        return u + x if self.residual else x
