"""A multilayer perceptron on the flattened state, as pdequinox's `MLP`."""

import math
from collections.abc import Callable

import equinox as eqx
import jax
from jaxtyping import PRNGKeyArray

from .._checks import check_int, check_key
from .._custom_types import State
from ._base import (
    AbstractArchitecture,
    check_activation,
    check_channels,
    check_dims,
    check_residual,
    default_dtype,
)


def _identity(x):
    return x


@eqx.filter_jit  # every layer's draws in one program, not one per operation
def _mlp(key, in_size, out_size, width_size, depth, activation, final_activation, use_bias,
         use_final_bias, dtype):  # fmt: skip
    return eqx.nn.MLP(
        in_size, out_size, width_size, depth, activation=activation,
        final_activation=final_activation, use_bias=use_bias, use_final_bias=use_final_bias,
        dtype=dtype, key=key,
    )  # fmt: skip


class MLP(AbstractArchitecture):
    """An MLP on the flattened state: pdequinox's `MLP`, with the same names and defaults.

    The state `(in_channels, num_points, ..., num_points)` is flattened, passed through
    `depth + 1` affine layers (`width_size` wide, `activation` between them,
    `final_activation` after the last) and reshaped to `(out_channels, num_points, ...)`. It is
    tied to one resolution, needs no padding (every output point sees the whole state, so
    boundary conditions are whatever the data teach it) and its receptive field is
    `num_points` along every axis. The stepper is `u + f(u)` when `residual`.

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `in_channels`, `out_channels`: channels of the state and of the output.
    - `num_points`: points per spatial axis (keyword-only, required).
    - `width_size`: hidden width (default 64).
    - `depth`: hidden layers (default 3; `depth + 1` affine layers).
    - `activation`, `final_activation`: default `jax.nn.relu` and the identity.
    - `use_bias`, `use_final_bias`: biases in the hidden and the last layer.
    - `residual`, `dtype`: as in `ConvNet`.
    - `key`: a `jax.random.key`.
    """

    mlp: eqx.nn.MLP
    num_points: int = eqx.field(static=True)
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
        num_points: int,
        width_size: int = 64,
        depth: int = 3,
        activation: Callable = jax.nn.relu,
        final_activation: Callable = _identity,
        use_bias: bool = True,
        use_final_bias: bool = True,
        residual: bool = False,
        dtype=None,
        key: PRNGKeyArray,
    ):
        d = check_dims(num_spatial_dims, None)
        check_channels(in_channels=in_channels, out_channels=out_channels, width_size=width_size)
        check_int("num_points", num_points)
        check_int("depth", depth, 0)
        check_activation(activation)
        if not callable(final_activation):
            raise TypeError(
                f"`final_activation` must be callable, got {type(final_activation).__name__}."
            )
        self.residual = check_residual(residual, in_channels, out_channels)
        check_key(key)
        points = num_points**d
        self.mlp = _mlp(
            key, in_channels * points, out_channels * points, width_size, depth, activation,
            final_activation, bool(use_bias), bool(use_final_bias), default_dtype(dtype),
        )  # fmt: skip
        self.num_points = num_points
        self.num_spatial_dims, self.in_channels, self.out_channels = d, in_channels, out_channels

    @property
    def num_parameters(self) -> int:
        return sum(
            math.prod(layer.weight.shape) + (0 if layer.bias is None else layer.bias.shape[0])
            for layer in self.mlp.layers
        )

    @property
    def receptive_field(self) -> tuple[int, ...]:
        return (self.num_points,) * self.num_spatial_dims

    def apply(self, u: State) -> State:
        expected = (self.in_channels,) + (self.num_points,) * self.num_spatial_dims
        if u.shape != expected:
            raise ValueError(
                f"`u` must have shape {expected} for this MLP (it is tied to `num_points`="
                f"{self.num_points}), got {u.shape}. Architectures act on one sample; batch "
                "with `jax.vmap`."
            )
        out = self.mlp(u.reshape(-1).astype(self.mlp.layers[0].weight.dtype)).astype(u.dtype)
        out = out.reshape((self.out_channels, *u.shape[1:]))
        return u + out if self.residual else out
