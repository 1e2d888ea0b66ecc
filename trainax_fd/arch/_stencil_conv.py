"""A linear stencil convolution whose weights read back as `Stencil`s."""

import itertools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from .._custom_types import ConvWeight, State
from ..stencil import BoundarySpec, Grid, Stencil, pad
from ._base import (
    AbstractArchitecture,
    BoundaryPairs,
    check_channels,
    check_dims,
    default_dtype,
    kernel_tuple,
    normalise_boundary,
    sample_grid,
)


class StencilConv(AbstractArchitecture):
    """A linear stencil convolution with boundary padding: one conv layer of every network here.

    Output channel `o` at point `i` is `bias[o] + sum_{c,k} weight[o, c, k] u[c, i + k]` over
    the offsets `k` of the kernel: from `-(K - 1) // 2` to `K // 2` per axis for a kernel of
    `K` points (centred for odd `K`). The ghost points `u[c, i + k]` outside the grid come from
    the boundary conditions via `trainax_fd.stencil.pad`, once per call. A layer of at most
    `SHIFTED_SUM_UP_TO` weights (a learned stencil) is a sum of shifted copies, as the stencil
    core applies its stencils; a larger one runs as one `lax.conv_general_dilated` on the whole
    sample.

    The weights are what the layer applies: a stencil for the `m`-th derivative on a grid of
    spacing `h` appears as its unit-spacing weights times `h^-m` (as in `Stencil.to_kernel`).
    Without a `grid` the layer works on any resolution with unit spacing (cell-centred
    points, so Dirichlet and Neumann conditions sit half a point beyond the ends).

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `in_channels`, `out_channels`: channel counts.
    - `kernel_size`: points per axis, an int for all axes or one per axis.
    - `use_bias`: add a learnable bias per output channel.
    - `boundary`: boundary specification (see `trainax_fd.stencil.boundary_pairs`); periodic
      by default.
    - `grid`: the grid the inputs live on (fixes their shape, the spacing and the placement);
      `None` for any shape with unit spacing.
    - `dtype`: parameter dtype (default: the default float dtype).
    - `key`: a `jax.random.key` for the initial weights, uniform in `±1/sqrt(fan_in)`.

    !!! example
        ```python
        conv = StencilConv.from_stencils([forward(), central(), backward()], grid=grid)
        du = conv(u)  # (3, N): the three differences of u (1, N)
        conv.stencil(out=1, order=1)  # central(), read back
        ```
    """

    weight: ConvWeight
    bias: Float[Array, " out_channels"] | None
    boundary: BoundaryPairs
    grid: Grid | None = eqx.field(static=True)
    num_spatial_dims: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        *,
        use_bias: bool = False,
        boundary: BoundarySpec = "periodic",
        grid: Grid | None = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        d = check_dims(num_spatial_dims, grid)
        check_channels(in_channels=in_channels, out_channels=out_channels)
        kernel = kernel_tuple(kernel_size, d)
        self.boundary = normalise_boundary(boundary, grid, d)
        dtype = default_dtype(dtype)
        limit = 1.0 / math.sqrt(in_channels * math.prod(kernel))
        shape = (out_channels, in_channels, *kernel)
        check_key(key)
        self.weight, self.bias = _initial_parameters(key, shape, use_bias, dtype, limit)
        self.grid, self.num_spatial_dims = grid, d
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel

    @classmethod
    def from_stencils(
        cls,
        stencils: Stencil | Sequence[Stencil] | Sequence[Sequence[Stencil]],
        *,
        axis: int = 0,
        num_spatial_dims: int | None = None,
        use_bias: bool = False,
        boundary: BoundarySpec = "periodic",
        grid: Grid | None = None,
        dtype=None,
    ) -> "StencilConv":
        """A convolution that applies given stencils along one axis (bias zero).

        **Arguments:**

        - `stencils`: one `Stencil` (one channel in and out), a sequence of them (one input
          channel, one output channel each), or a nested sequence `[out][in]`.
        - `axis`: the spatial axis the stencils act along.
        - `num_spatial_dims`: defaults to `grid.ndim`, or 1 without a grid.
        - `use_bias`, `boundary`, `grid`, `dtype`: as in the constructor. With a `grid` the
          weights carry the `h^-order` scaling (as `Stencil.to_kernel(grid, axis)`), so the
          layer reproduces `stencil(u, grid, boundary, axis)`. The stencils' weights must be
          concrete (not traced).

        **Returns:** a `StencilConv` with kernel `2r + 1` along `axis` (`r` the largest
        `|offset|`) and 1 along the others.
        """
        rows = _stencil_rows(stencils)
        if num_spatial_dims is None:
            num_spatial_dims = 1 if grid is None else grid.ndim
        d = check_dims(num_spatial_dims, grid)
        if isinstance(axis, bool) or axis not in range(d):
            raise ValueError(f"`axis` must be a spatial axis in [0, {d - 1}], got {axis!r}.")
        r = max(max(abs(o) for o in s.offsets) for row in rows for s in row)
        shape = [1] * d
        shape[axis] = 2 * r + 1
        h = 1.0 if grid is None else grid.spacing[axis]

        def kernel(s: Stencil) -> np.ndarray:  # as `s.to_kernel(grid, axis)`, padded to 2r + 1
            k = np.zeros(2 * r + 1, np.asarray(s.weights).dtype)
            k[np.asarray(s.offsets) + r] = np.asarray(s.weights) * h**-s.order
            return k.reshape(shape)

        weight = np.stack([np.stack([kernel(s) for s in row]) for row in rows])
        dtype = weight.dtype if dtype is None else jnp.dtype(dtype)
        boundary = normalise_boundary(boundary, grid, d)
        # the constructor's shapes and checks, without drawing (and compiling) random weights
        conv = eqx.filter_eval_shape(
            cls, d, len(rows[0]), len(rows), tuple(shape), use_bias=use_bias, boundary=boundary,
            grid=grid, dtype=dtype, key=jax.random.key(0),
        )  # fmt: skip
        bias = None if conv.bias is None else jax.device_put(np.zeros(len(rows), dtype))
        return eqx.tree_at(
            lambda c: (c.weight, c.bias, c.boundary),
            conv,
            (jnp.asarray(weight, dtype), bias, boundary),
            is_leaf=_is_none,
        )

    @property
    def reach(self) -> tuple[tuple[int, int], ...]:
        """Per axis, how far the kernel looks `(low, high)` (its ghost layers)."""
        return tuple(((k - 1) // 2, k // 2) for k in self.kernel_size)

    @property
    def num_parameters(self) -> int:
        return self.weight.size + (0 if self.bias is None else self.bias.size)

    @property
    def receptive_field(self) -> tuple[int, ...]:
        return self.kernel_size

    def apply(self, u: State) -> State:
        grid = sample_grid(self.grid, u.shape[1:])
        up = pad(u, grid, lax.stop_gradient(self.boundary), self.reach)
        d = self.num_spatial_dims
        weight = self.weight.astype(u.dtype)
        if weight.size <= SHIFTED_SUM_UP_TO:
            out = _shifted_sum(up, weight, u.shape[1:])
        else:
            out = lax.conv_general_dilated(up[None], weight, (1,) * d, "VALID")[0]
        if self.bias is not None:
            out = out + self.bias.astype(u.dtype).reshape((-1,) + (1,) * d)
        return out

    def stencil(self, out: int = 0, in_: int = 0, *, order: int = 0) -> Stencil:
        """The kernel from input channel `in_` to output channel `out` as a `Stencil`.

        The kernel must be longer than one point along at most one axis (the stencil's axis).
        Applying the returned stencil with the layer's grid and boundary reproduces that
        channel pair of the layer (without bias); `order` only sets the scaling in which the
        weights are shown: they are the kernel times `h^order` (unit spacing without a grid).

        **Returns:** a `Stencil` with offsets `-(K - 1) // 2, ..., K // 2`.
        """
        for name, index, count in (("out", out, self.out_channels), ("in_", in_, self.in_channels)):
            if isinstance(index, bool) or index not in range(count):
                raise ValueError(f"`{name}` must be an int in [0, {count - 1}], got {index!r}.")
        long = [a for a, k in enumerate(self.kernel_size) if k > 1]
        if len(long) > 1:
            raise ValueError(
                "Only a kernel longer than one point along at most one axis reads back as a "
                f"`Stencil`; this layer has `kernel_size` {self.kernel_size}."
            )
        axis = long[0] if long else 0
        low, high = self.reach[axis]
        h = 1.0 if self.grid is None else self.grid.spacing[axis]
        weights = self.weight[out, in_].reshape(-1) * h**order
        return Stencil(range(-low, high + 1), weights, order)

    def stencils(self, *, order: int | Sequence[int] = 0) -> tuple[tuple[Stencil, ...], ...]:
        """All kernels as `Stencil`s, `[out][in]`; `order` one int or one per output channel."""
        orders = (order,) * self.out_channels if isinstance(order, int) else tuple(order)
        if len(orders) != self.out_channels:
            raise ValueError(
                f"`order` must be an int or one per output channel ({self.out_channels}), got "
                f"{order!r}."
            )
        return tuple(
            tuple(self.stencil(o, i, order=orders[o]) for i in range(self.in_channels))
            for o in range(self.out_channels)
        )


@eqx.filter_jit  # one program per layer shape, not one per operation
def _initial_parameters(key, shape, use_bias, dtype, limit):
    """Weight `shape` and bias `(shape[0],)` (or `None`), uniform in `±limit`, from the two
    halves of `key`."""
    wkey, bkey = jax.random.split(key)
    weight = jax.random.uniform(wkey, shape, dtype, -limit, limit)
    bias = jax.random.uniform(bkey, shape[:1], dtype, -limit, limit) if use_bias else None
    return weight, bias


#: Layers with at most this many weights (`out * in * prod(kernel)`) are applied as a sum of
#: shifted copies of the padded input (fused elementwise kernels) instead of a convolution:
#: for a few weights a convolution is mostly call and layout overhead, on XLA:CPU in particular.
#: Steppers without convolutions also skip the layout rewrite (`trainax_fd._layout`).
SHIFTED_SUM_UP_TO = 32


def _shifted_sum(up: Array, weight: Array, spatial: tuple[int, ...]) -> Array:
    """`sum_{c,k} weight[:, c, k] * up[c, k : k + spatial]`: the "VALID" convolution of the
    padded sample `up` `(in, *padded)` with `weight` `(out, in, *kernel)`, as shifted products."""
    out = None
    for c in range(weight.shape[1]):
        for offset in itertools.product(*map(range, weight.shape[2:])):
            window = up[(slice(c, c + 1), *(slice(a, a + n) for a, n in zip(offset, spatial)))]
            w = weight[(slice(None), c, *offset)].reshape((-1,) + (1,) * len(spatial))
            out = w * window if out is None else out + w * window
    return out


def _is_none(x) -> bool:
    return x is None


def _stencil_rows(stencils) -> list[list[Stencil]]:
    if isinstance(stencils, Stencil):
        return [[stencils]]
    if isinstance(stencils, Sequence) and stencils:
        if all(isinstance(s, Stencil) for s in stencils):
            return [[s] for s in stencils]
        rows = [list(r) if isinstance(r, Sequence) else None for r in stencils]
        if all(
            r and len(r) == len(rows[0]) and all(isinstance(s, Stencil) for s in r) for r in rows
        ):
            return rows
    raise TypeError(
        "`stencils` must be a `Stencil`, a non-empty sequence of them, or a rectangular nested "
        f"sequence `[out][in]` of them, got {stencils!r}."
    )


def finite_difference_net(
    num_spatial_dims: int = 1,
    in_channels: int = 1,
    out_channels: int = 3,
    kernel_size: int | Sequence[int] = 3,
    *,
    use_bias: bool = False,
    boundary: BoundarySpec = "periodic",
    grid: Grid | None = None,
    dtype=None,
    key: PRNGKeyArray,
) -> StencilConv:
    """The finite-difference net: one convolution, several output channels, no bias.

    Trained on the forward, central and backward differences of random data it learns them,
    one per channel (see `notebooks/learning_stencils.ipynb`); read them back with
    `.stencils()`. Arguments as in `StencilConv`.

    **Returns:** a `StencilConv`, `(in_channels, *spatial) -> (out_channels, *spatial)`.
    """
    return StencilConv(
        num_spatial_dims, in_channels, out_channels, kernel_size, use_bias=use_bias,
        boundary=boundary, grid=grid, dtype=dtype, key=key,
    )  # fmt: skip
