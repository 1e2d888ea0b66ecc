"""The Fourier neural operator (Li et al. 2020), as pdequinox's `ClassicFNO`."""

import itertools
import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_int, check_key
from .._custom_types import State
from ..stencil import BoundarySpec, Periodic
from ._base import AbstractArchitecture, check_network, default_dtype, kernel_tuple
from ._stencil_conv import StencilConv

#: Spectral weights: `(2^(d-1) corners, out_channels, in_channels, *modes)`.
SpectralWeight = Float[Array, "corners out_channels in_channels *modes"]


def _corners(modes: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The blocks of the `rfftn` half spectrum the weights act on: the lowest `m` modes of the
    last axis, and the `m` lowest non-negative and `m` highest (negative) modes of the others."""
    *others, last = modes
    choices = [(slice(0, m), slice(-m, None)) for m in others]
    return [(*c, slice(0, last)) for c in itertools.product(*choices)]


@eqx.filter_jit  # one program per shape, not one per operation
def _spectral_weights(key, shape, dtype):
    real_key, imag_key = jax.random.split(key)
    scale = 1.0 / (shape[1] * shape[2])  # 1 / (in * out), as pdequinox
    return (
        scale * jax.random.normal(real_key, shape, dtype),
        scale * jax.random.normal(imag_key, shape, dtype),
    )


class _SpectralConv(eqx.Module):
    """`irfftn(W * rfftn(x))` on the retained modes, a part of `FNO`."""

    weights_real: SpectralWeight
    weights_imag: SpectralWeight
    num_modes: tuple[int, ...] = eqx.field(static=True)

    def __call__(self, x: State) -> State:
        spatial = x.shape[1:]
        for a, (n, m) in enumerate(zip(spatial, self.num_modes)):
            last = a == len(spatial) - 1
            if (m > n // 2 + 1) if last else (2 * m > n):
                raise ValueError(
                    f"`num_modes` {m} does not fit {n} points on axis {a}: at most "
                    f"{n // 2 + 1 if last else n // 2} modes there."
                )
        axes = tuple(range(1, x.ndim))
        spectrum = jnp.fft.rfftn(x, axes=axes)
        weights = lax.complex(self.weights_real, self.weights_imag).astype(spectrum.dtype)
        out = jnp.zeros((weights.shape[1], *spectrum.shape[1:]), spectrum.dtype)
        for g, corner in enumerate(_corners(self.num_modes)):
            block = spectrum[(slice(None), *corner)]
            out = out.at[(slice(None), *corner)].set(
                jnp.einsum("i...,oi...->o...", block, weights[g])
            )
        return jnp.fft.irfftn(out, s=spatial, axes=axes).astype(x.dtype)


class FNO(AbstractArchitecture):
    """A Fourier neural operator: pdequinox's `ClassicFNO` (Li et al. 2020), with the same
    names and defaults.

    `x = lift(u)` (pointwise, `in -> hidden_channels`); each of `num_blocks` blocks is
    `x = act(spectral(x) + bypass(x))`, `spectral` multiplying the lowest `num_modes` Fourier
    modes per axis (both signs on all but the last axis of the real FFT) by learned complex
    `hidden x hidden` matrices and dropping the rest, `bypass` pointwise; `f(u) = project(x)`
    (pointwise, `hidden_channels -> out`). The stepper is `u + f(u)` when `residual`.

    The spectral convolution is periodic, so the only boundary it takes is periodic (pdequinox
    ignores its `boundary_mode`). Every output point depends on every input point: the
    receptive field is `inf` along every axis. Works on any resolution with at least
    `2 num_modes` points per axis (`num_modes - 1` along the last).

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `in_channels`, `out_channels`: channels of the state and of the output.
    - `hidden_channels`: the width (default 32).
    - `num_modes`: Fourier modes kept per axis, an int or one per axis (default 12).
    - `num_blocks`: spectral blocks, `>= 1` (default 4).
    - `activation`: after every block (default `jax.nn.gelu`).
    - `boundary`: `"periodic"` (the only one).
    - `residual`, `dtype`: as in `ConvNet`.
    - `key`: a `jax.random.key`.
    """

    lift: StencilConv
    spectral: tuple[_SpectralConv, ...]
    bypass: tuple[StencilConv, ...]
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
        num_modes: int | Sequence[int] = 12,
        num_blocks: int = 4,
        activation: Callable = jax.nn.gelu,
        boundary: BoundarySpec = "periodic",
        residual: bool = False,
        dtype=None,
        key: PRNGKeyArray,
    ):
        check_int("hidden_channels", hidden_channels)
        d, _, self.activation, self.residual, outer, _ = check_network(
            num_spatial_dims, in_channels, out_channels, hidden_channels, 1, activation,
            residual, boundary, None,
        )  # fmt: skip
        modes = kernel_tuple(num_modes, d, "num_modes")
        if not all(isinstance(side, Periodic) for pair in outer for side in pair):
            raise ValueError(
                "`boundary` must be periodic for an FNO: its spectral convolutions treat every "
                f"axis as periodic; got {boundary!r}. Use a convolutional architecture "
                "(`ConvNet`, `ResNet`, `DilatedResNet`, `UNet`) for Dirichlet or Neumann walls."
            )
        check_int("num_blocks", num_blocks, 1)
        check_key(key)
        dtype = default_dtype(dtype)
        h = hidden_channels
        keys = iter(jax.random.split(key, 2 + 2 * num_blocks))

        def pointwise(cin, cout):
            return StencilConv(d, cin, cout, 1, use_bias=True, dtype=dtype, key=next(keys))

        self.lift = pointwise(in_channels, h)
        shape = (2 ** (d - 1), h, h, *modes)
        self.spectral = tuple(
            _SpectralConv(*_spectral_weights(next(keys), shape, dtype), modes)
            for _ in range(num_blocks)
        )
        self.bypass = tuple(pointwise(h, h) for _ in range(num_blocks))
        self.project = pointwise(h, out_channels)
        self.num_spatial_dims, self.in_channels, self.out_channels = d, in_channels, out_channels

    @property
    def num_modes(self) -> tuple[int, ...]:
        return self.spectral[0].num_modes

    @property
    def num_parameters(self) -> int:
        count = self.lift.num_parameters + self.project.num_parameters
        count += sum(s.weights_real.size + s.weights_imag.size for s in self.spectral)
        return count + sum(b.num_parameters for b in self.bypass)

    @property
    def receptive_field(self) -> tuple[float, ...]:
        return (math.inf,) * self.num_spatial_dims

    def apply(self, u: State) -> State:
        x = self.lift(u)
        for spectral, bypass in zip(self.spectral, self.bypass):
            x = self.activation(spectral(x) + bypass(x))
        x = self.project(x)
        return u + x if self.residual else x
