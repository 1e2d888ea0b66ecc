"""A dilated ResNet (Stachenfeld et al. 2021, as pdequinox's `DilatedResNet`), its
dilated convolutions padded by the stencil core's boundary conditions."""

import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_int, check_key
from .._custom_types import ConvWeight, State
from ..stencil import BoundarySpec, Grid, pad
from ._base import (
    AbstractArchitecture,
    BoundaryPairs,
    check_network,
    default_dtype,
    sample_grid,
)
from ._stencil_conv import StencilConv, _initial_parameters

#: `eps` of the group normalisation, as `equinox.nn.GroupNorm`'s.
NORM_EPS = 1e-5


class _DilatedConv(eqx.Module):
    """A convolution with kernel `K` and dilation `r` per axis: output point `i` reads
    `u[i + r k]` for the offsets `k` of the kernel (centred for odd `K`); ghosts from the
    boundary conditions. A part of `DilatedResNet`."""

    weight: ConvWeight
    bias: Float[Array, " out_channels"]
    boundary: BoundaryPairs
    grid: Grid | None = eqx.field(static=True)
    kernel_size: tuple[int, ...] = eqx.field(static=True)
    dilation: int = eqx.field(static=True)

    @property
    def reach(self) -> tuple[tuple[int, int], ...]:
        return tuple(
            (self.dilation * ((k - 1) // 2), self.dilation * (k // 2)) for k in self.kernel_size
        )

    def pad(self, x: State) -> State:
        grid = sample_grid(self.grid, x.shape[1:])
        return pad(x, grid, lax.stop_gradient(self.boundary), self.reach)

    def valid(self, padded: State) -> State:
        """The convolution of an input already padded by `reach`."""
        d = len(self.kernel_size)
        weight = self.weight.astype(padded.dtype)
        out = lax.conv_general_dilated(
            padded[None], weight, (1,) * d, "VALID", rhs_dilation=(self.dilation,) * d
        )[0]
        return out + self.bias.astype(padded.dtype).reshape((-1,) + (1,) * d)


def _pointwise(conv: StencilConv, x: State) -> State:
    """A kernel-1 `conv` applied to `x` of any spatial shape (padded ones included)."""
    d = x.ndim - 1
    weight = conv.weight.astype(x.dtype).reshape(conv.weight.shape[:2])
    out = jnp.tensordot(weight, x, axes=([1], [0]))
    return out + conv.bias.astype(x.dtype).reshape((-1,) + (1,) * d)


def _group_norm(x: State, weight: Array, bias: Array, interior: tuple[slice, ...]) -> State:
    """One group over all channels: `(x - mean) / sqrt(var + eps) * weight + bias`, the
    statistics taken over `x[interior]` (ghost layers are transformed, not counted)."""
    inside = x[interior]
    mean = jnp.mean(inside)
    var = jnp.mean(jnp.square(inside - mean))
    scale = lax.rsqrt(var + jnp.asarray(NORM_EPS, x.dtype))
    shape = (-1,) + (1,) * (x.ndim - 1)
    return (x - mean) * scale * weight.astype(x.dtype).reshape(shape) + bias.astype(
        x.dtype
    ).reshape(shape)


class DilatedResNet(AbstractArchitecture):
    """A ResNet whose blocks stack convolutions of growing, then shrinking dilation: pdequinox's
    `DilatedResNet` (Stachenfeld et al. 2021), with the same names and defaults.

    `x = lift(u)` (pointwise, `in -> hidden_channels`); each of `num_blocks` blocks is
    `x = x + g(x)` with `g` the chain `y = act(conv_r(norm(y)))` over `dilation_rates` (a
    kernel of `kernel_size` points per axis, dilated by `r`; `norm` a group normalisation with
    one group and a per-channel affine map when `use_norm`); `f(u) = project(x)` (pointwise,
    `hidden_channels -> out`). The stepper is `u + f(u)` when `residual`, else `f(u)`.

    Boundaries: every dilated convolution pads with ghost points from the stencil core's
    conditions. The first one of the first block reads the lifted field whose ghost points
    are the lifted ghost points of `u` under `boundary` as given (the lift is pointwise, so
    the field's boundary values reach the network); every other one pads its feature channels
    with the homogeneous conditions of the same kinds (see `ConvNet`). pdequinox instead pads
    with zeros (`"dirichlet"`) or mirrors (`"neumann"`) every layer.

    `receptive_field` counts the convolutions (`1 + num_blocks sum_r r (kernel_size - 1)` per
    axis, 89 by default), as pdequinox's; with `use_norm`, the normalisation's statistics
    (mean and variance over the whole state) couple every point to every other one.

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `in_channels`, `out_channels`: channels of the state and of the output.
    - `hidden_channels`: channels inside the blocks (default 32, as pdequinox).
    - `num_blocks`: residual blocks, `>= 1` (default 2).
    - `dilation_rates`: the dilations of one block's convolutions (default
        `(1, 2, 4, 8, 4, 2, 1)`).
    - `use_norm`: group normalisation before every convolution (default `True`).
    - `activation`: after every convolution (default `jax.nn.relu`).
    - `kernel_size`: points per axis of the convolutions (default 3).
    - `boundary`: boundary specification (periodic by default; `"dirichlet"`, `"neumann"` or
        condition instances, mixed per axis and side).
    - `residual`, `grid`, `dtype`: as in `ConvNet`.
    - `key`: a `jax.random.key`.
    """

    lift: StencilConv
    convs: tuple[tuple[_DilatedConv, ...], ...]
    norms: tuple[tuple[tuple[Array, Array], ...], ...] | None
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
        hidden_channels: int = 32,
        num_blocks: int = 2,
        dilation_rates: Sequence[int] = (1, 2, 4, 8, 4, 2, 1),
        use_norm: bool = True,
        activation: Callable = jax.nn.relu,
        kernel_size: int | Sequence[int] = 3,
        boundary: BoundarySpec = "periodic",
        residual: bool = False,
        grid: Grid | None = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        check_int("hidden_channels", hidden_channels)
        d, kernel, self.activation, self.residual, outer, hidden = check_network(
            num_spatial_dims, in_channels, out_channels, hidden_channels, kernel_size,
            activation, residual, boundary, grid,
        )  # fmt: skip
        check_int("num_blocks", num_blocks, 1)
        rates = tuple(dilation_rates) if isinstance(dilation_rates, Sequence) else ()
        if not rates or not all(
            isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in rates
        ):
            raise ValueError(
                f"`dilation_rates` must be a non-empty sequence of ints >= 1, got "
                f"{dilation_rates!r}."
            )
        if not isinstance(use_norm, bool):
            raise TypeError(f"`use_norm` must be a bool, got {type(use_norm).__name__}.")
        check_key(key)
        dtype = default_dtype(dtype)
        h = hidden_channels
        keys = iter(jax.random.split(key, 2 + num_blocks * len(rates)))
        self.lift = StencilConv(d, in_channels, h, 1, use_bias=True, boundary=outer, grid=grid,
                                dtype=dtype, key=next(keys))  # fmt: skip
        limit = 1.0 / math.sqrt(h * math.prod(kernel))

        def conv(rate, bc):
            weight, bias = _initial_parameters(next(keys), (h, h, *kernel), True, dtype, limit)
            return _DilatedConv(weight, bias, bc, grid, kernel, rate)

        self.convs = tuple(
            tuple(conv(r, outer if (b, i) == (0, 0) else hidden) for i, r in enumerate(rates))
            for b in range(num_blocks)
        )
        ones, zeros = jnp.ones(h, dtype), jnp.zeros(h, dtype)
        self.norms = (
            tuple(tuple((ones, zeros) for _ in rates) for _ in range(num_blocks))
            if use_norm
            else None
        )
        self.project = StencilConv(d, h, out_channels, 1, use_bias=True, boundary=hidden,
                                   grid=grid, dtype=dtype, key=next(keys))  # fmt: skip
        self.num_spatial_dims, self.in_channels, self.out_channels = d, in_channels, out_channels

    @property
    def num_parameters(self) -> int:
        count = self.lift.num_parameters + self.project.num_parameters
        count += sum(c.weight.size + c.bias.size for block in self.convs for c in block)
        if self.norms is not None:
            count += sum(w.size + b.size for block in self.norms for w, b in block)
        return count

    @property
    def receptive_field(self) -> tuple[int, ...]:
        return tuple(
            1 + sum(c.dilation * (c.kernel_size[a] - 1) for block in self.convs for c in block)
            for a in range(self.num_spatial_dims)
        )

    def _norm(self, b: int, i: int, x: State, interior: tuple[slice, ...]) -> State:
        if self.norms is None:
            return x
        weight, bias = self.norms[b][i]
        return _group_norm(x, weight, bias, interior)

    def apply(self, u: State) -> State:
        everything = (slice(None),) * u.ndim
        first = self.convs[0][0]
        # The lift is pointwise: lifting the padded field gives the lifted field's ghosts.
        padded = _pointwise(self.lift, first.pad(u))
        inside = (slice(low, low + n) for (low, _), n in zip(first.reach, u.shape[1:]))
        interior = (slice(None), *inside)
        x = padded[interior]
        for b, block in enumerate(self.convs):
            y = x
            for i, conv in enumerate(block):
                if (b, i) == (0, 0):
                    y = conv.valid(self._norm(b, i, padded, interior))
                else:
                    y = conv.valid(conv.pad(self._norm(b, i, y, everything)))
                y = self.activation(y)
            x = x + y
        x = self.project(x)
        return u + x if self.residual else x
