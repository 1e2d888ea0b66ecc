"""The upwind net: two stencil channels switched per point by steep learned gates."""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._custom_types import State
from ..stencil import BoundarySpec, Grid, Stencil
from ._base import AbstractArchitecture, check_channels, check_dims, default_dtype
from ._stencil_conv import StencilConv


class UpwindNet(AbstractArchitecture):
    """Two stencil channels, each switched on and off per point by its own learned gate.

    For each channel `c` of `u` (`C` channels), with `A u` and `B u` the outputs `c` and
    `C + c` of a stencil convolution `C -> 2C` (no bias),

    `out_c = g_{0,c} (A u)_c + g_{1,c} (B u)_c`,
    `g_{k,c} = sigmoid(steepness (a_{k,c} u_c + b_{k,c}))`

    with learned gate weights `a` and biases `b`, shape `(2, channels)`, initially
    `a = (1, -1)`, `b = 0`: then `g_1 = 1 - g_0` and `A` acts where `u > 0`, `B` where
    `u < 0`. A large `steepness` makes each gate a near switch that stays differentiable.
    With `hard=True` the gates are the switches themselves, `g_{k,c} = 1` where
    `a_{k,c} u_c + b_{k,c} > 0`, else 0 (no gradient to `a`, `b`). With `A` the backward and `B`
    the forward difference and the initial gates, the hard net is the stencil core's
    `upwind(u, velocity=u, ...)` (except where `u == 0` exactly, where both gates are off).

    The gates are independent, so besides the upwind pair (backward where `u > 0`, forward
    where `u < 0`, or mirrored) the net can also fit the upwind difference as one stencil
    that is always on plus the second difference switched by the sign of `u`
    (`backward = forward - second`; see `notebooks/learning_stencils.ipynb`).

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `channels`: channels in and out.
    - `kernel_size`: points per axis of the two stencils (e.g. `(3, 1)` acts along axis 0).
    - `steepness`: the gates' slope factor (default 10).
    - `hard`: use the switches instead of the sigmoids.
    - `boundary`, `grid`, `dtype`: as in `StencilConv`.
    - `key`: a `jax.random.key` for the stencil weights.
    """

    conv: StencilConv
    gate_weight: Float[Array, "2 channels"]
    gate_bias: Float[Array, "2 channels"]
    steepness: float = eqx.field(static=True)
    hard: bool = eqx.field(static=True)
    num_spatial_dims: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int = 1,
        channels: int = 1,
        kernel_size: int | Sequence[int] = 3,
        *,
        steepness: float = 10.0,
        hard: bool = False,
        boundary: BoundarySpec = "periodic",
        grid: Grid | None = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        d = check_dims(num_spatial_dims, grid)
        check_channels(channels=channels)
        if isinstance(steepness, bool) or not isinstance(steepness, (int, float)):
            raise TypeError(f"`steepness` must be a float, got {type(steepness).__name__}.")
        if not steepness > 0:
            raise ValueError(f"`steepness` must be positive, got {steepness!r}.")
        if not isinstance(hard, bool):
            raise TypeError(f"`hard` must be a bool, got {type(hard).__name__}.")
        dtype = default_dtype(dtype)
        self.conv = StencilConv(
            d, channels, 2 * channels, kernel_size, boundary=boundary, grid=grid, dtype=dtype,
            key=key,
        )  # fmt: skip
        self.gate_weight, self.gate_bias = _gates(channels, dtype)
        self.steepness, self.hard = float(steepness), hard
        self.num_spatial_dims, self.in_channels, self.out_channels = d, channels, channels

    @classmethod
    def from_stencils(
        cls,
        first: Stencil,
        second: Stencil,
        *,
        axis: int = 0,
        num_spatial_dims: int | None = None,
        channels: int = 1,
        steepness: float = 10.0,
        hard: bool = False,
        boundary: BoundarySpec = "periodic",
        grid: Grid | None = None,
        dtype=None,
    ) -> "UpwindNet":
        """An upwind net whose stencils `A`, `B` are `first`, `second` along `axis`, per channel.

        Channels do not mix: `A` and `B` act on each channel alone. Other arguments as in the
        constructor and `StencilConv.from_stencils`.
        """
        check_channels(channels=channels)
        zero = Stencil((0,), np.zeros(1, np.asarray(first.weights).dtype))
        rows = [
            [s if c == i else zero for i in range(channels)]
            for s in (first, second)
            for c in range(channels)
        ]
        conv = StencilConv.from_stencils(
            rows, axis=axis, num_spatial_dims=num_spatial_dims, boundary=boundary, grid=grid,
            dtype=dtype,
        )  # fmt: skip
        net = eqx.filter_eval_shape(  # shapes and checks, no random weights drawn
            cls, conv.num_spatial_dims, channels, conv.kernel_size, steepness=steepness,
            hard=hard, boundary=boundary, grid=grid, dtype=conv.weight.dtype,
            key=jax.random.key(0),
        )  # fmt: skip
        gates = _gates(channels, conv.weight.dtype)
        return eqx.tree_at(lambda n: (n.conv, n.gate_weight, n.gate_bias), net, (conv, *gates))

    @property
    def num_parameters(self) -> int:
        return self.conv.num_parameters + self.gate_weight.size + self.gate_bias.size

    @property
    def receptive_field(self) -> tuple[int, ...]:
        return self.conv.receptive_field  # the gate looks at the point itself only

    def apply(self, u: State) -> State:
        both = self.conv(u)
        c = self.in_channels
        shape = (2, c) + (1,) * self.num_spatial_dims
        z = self.gate_weight.astype(u.dtype).reshape(shape) * u[None]
        z = z + self.gate_bias.astype(u.dtype).reshape(shape)  # (2, channels, *spatial)
        stencils = both.reshape(2, c, *u.shape[1:])
        if self.hard:
            return jnp.where(z > 0, stencils, 0).sum(axis=0)
        gates = jax.nn.sigmoid(self.steepness * z)
        return gates[0] * stencils[0] + gates[1] * stencils[1]


def _gates(channels: int, dtype) -> tuple[Array, Array]:
    """The initial gates: weights `(1, -1)`, biases 0 (built in NumPy: nothing to compile)."""
    weight = np.stack([np.ones(channels, dtype), -np.ones(channels, dtype)])
    return jax.device_put(weight), jax.device_put(np.zeros((2, channels), dtype))
