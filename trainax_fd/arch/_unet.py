"""A U-Net stepper: average pooling down, nearest upsampling up, skip connections."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from .._checks import check_int, check_key
from .._custom_types import State
from ..stencil import BoundarySpec, Grid
from ._base import AbstractArchitecture, check_network
from ._stencil_conv import StencilConv

Block = tuple[StencilConv, StencilConv]


class UNet(AbstractArchitecture):
    """A U-Net with `levels` halvings of the resolution.

    Level `l` has `width * channel_multipliers[l]` channels `c_l` on a grid `2^l` times
    coarser. With `block(x) = act(conv_2(act(conv_1(x))))`:

    - encoder: `x_0 = block_0(u)`; `x_l = block_l(pool(x_{l-1}))` for `l = 1, ..., levels`
      (`pool`: the mean over `2^d` children);
    - decoder: `y_levels = x_levels`;
      `y_l = block'_l(concat(act(up_l(upsample(y_{l+1}))), x_l))` (`upsample`: nearest
      neighbour, `up_l`: a `c_{l+1} -> c_l` convolution);
    - `f(u) = project(y_0)` (kernel 1); the stepper is `u + f(u)` when `residual`, else `f(u)`.

    Spatial sizes must be divisible by `2**levels`. The first convolution pads with
    `boundary` as given, every other one with the homogeneous conditions of the same kinds
    (see `ConvNet`); with a `grid`, level `l` pads on the grid coarsened `2^l` times.

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `in_channels`, `out_channels`: channels of the state and of the output.
    - `width`: channels at the finest level (times `channel_multipliers[0]`).
    - `levels`: number of halvings, `>= 1`.
    - `channel_multipliers`: `levels + 1` ints `>= 1`; default `(1, 2, 4, ...)`.
    - `kernel_size`, `activation`, `boundary`, `residual`, `use_bias`, `grid`, `dtype`: as in
      `ConvNet`.
    - `key`: a `jax.random.key`.
    """

    encoder: tuple[Block, ...]
    ups: tuple[StencilConv, ...]
    decoder: tuple[Block, ...]
    project: StencilConv
    levels: int = eqx.field(static=True)
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
        width: int = 16,
        levels: int = 2,
        channel_multipliers: Sequence[int] | None = None,
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
        check_int("levels", levels, 1)
        mult = tuple(2**n for n in range(levels + 1)) if channel_multipliers is None else None
        if mult is None:
            mult = tuple(channel_multipliers)
            if len(mult) != levels + 1 or not all(
                isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in mult
            ):
                raise ValueError(
                    f"`channel_multipliers` must hold levels + 1 = {levels + 1} ints >= 1, got "
                    f"{channel_multipliers!r}."
                )
        if grid is not None:
            _check_divisible(grid.shape, levels, "grid.shape")
        c = [width * m for m in mult]
        check_key(key)
        keys = iter(jax.random.split(key, 5 * levels + 3))

        def conv(cin, cout, level, k=kernel, bc=hidden):
            g = None if grid is None else _coarse(grid, level)
            return StencilConv(d, cin, cout, k, use_bias=use_bias, boundary=bc, grid=g,
                               dtype=dtype, key=next(keys))  # fmt: skip

        self.encoder = (
            (conv(in_channels, c[0], 0, bc=outer), conv(c[0], c[0], 0)),
            *((conv(c[n - 1], c[n], n), conv(c[n], c[n], n)) for n in range(1, levels + 1)),
        )
        self.ups = tuple(conv(c[n + 1], c[n], n) for n in range(levels))
        self.decoder = tuple((conv(2 * c[n], c[n], n), conv(c[n], c[n], n)) for n in range(levels))
        self.project = conv(c[0], out_channels, 0, k=1)
        self.levels = levels
        self.num_spatial_dims, self.in_channels, self.out_channels = d, in_channels, out_channels

    def _convs(self) -> list[StencilConv]:
        blocks = self.encoder + self.decoder
        return [*(c for b in blocks for c in b), *self.ups, self.project]

    @property
    def num_parameters(self) -> int:
        return sum(c.num_parameters for c in self._convs())

    @property
    def receptive_field(self) -> tuple[int, ...]:
        # Follow the interval of inputs one output point depends on backwards through the
        # network, for every position of the point relative to the coarsest grid.
        def conv(c, a, lo, hi):
            low, high = c.reach[a]
            return lo - low, hi + high

        def block(b, a, lo, hi):
            return conv(b[0], a, *conv(b[1], a, lo, hi))

        def encoder(level, a, lo, hi):  # interval at the output of x_level
            lo, hi = block(self.encoder[level], a, lo, hi)
            return (lo, hi) if level == 0 else encoder(level - 1, a, 2 * lo, 2 * hi + 1)

        def decoder(level, a, lo, hi):  # interval at the output of y_level
            if level == self.levels:
                return encoder(level, a, lo, hi)
            lo, hi = block(self.decoder[level], a, lo, hi)
            ulo, uhi = conv(self.ups[level], a, lo, hi)
            ulo, uhi = decoder(level + 1, a, ulo // 2, uhi // 2)
            slo, shi = encoder(level, a, lo, hi)
            return min(ulo, slo), max(uhi, shi)

        def width(a, p):
            lo, hi = decoder(0, a, *conv(self.project, a, p, p))
            return hi - lo + 1

        return tuple(
            max(width(a, p) for p in range(2**self.levels)) for a in range(self.num_spatial_dims)
        )

    def apply(self, u: State) -> State:
        _check_divisible(u.shape[1:], self.levels, "the spatial shape of `u`")
        act = self.activation

        def block(b, x):
            return act(b[1](act(b[0](x))))

        skips = [block(self.encoder[0], u)]
        for level in range(1, self.levels + 1):
            skips.append(block(self.encoder[level], _pool(skips[-1])))
        y = skips[-1]
        for level in reversed(range(self.levels)):
            up = act(self.ups[level](_upsample(y)))
            y = block(self.decoder[level], jnp.concatenate([up, skips[level]], axis=0))
        out = self.project(y)
        return u + out if self.residual else out


def _check_divisible(shape: tuple[int, ...], levels: int, name: str) -> None:
    if any(n % 2**levels for n in shape):
        raise ValueError(
            f"A UNet with levels={levels} needs spatial sizes divisible by 2**levels = "
            f"{2**levels}; {name} is {tuple(shape)}."
        )


def _coarse(grid: Grid, level: int) -> Grid:
    shape = tuple(n // 2**level for n in grid.shape)
    return Grid(shape, extent=grid.extent, placement=grid.placement)


def _pool(x):
    """Mean over each `2 x ... x 2` block of one sample `(channels, *spatial)`."""
    shape = [x.shape[0]]
    for n in x.shape[1:]:
        shape += [n // 2, 2]
    return x.reshape(shape).mean(axis=tuple(range(2, 2 * x.ndim, 2)))


def _upsample(x):
    """Nearest-neighbour upsampling by 2 along every spatial axis."""
    for axis in range(1, x.ndim):
        x = jnp.repeat(x, 2, axis=axis)
    return x
