"""The U-Net of the SIP experiments: max-pool down, bilinear up, batch statistics."""

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_int, check_key
from .._custom_types import ConvWeight, State
from ..stencil import pad
from ._base import (
    AbstractArchitecture,
    check_activation,
    check_channels,
    check_dims,
    default_dtype,
    kernel_tuple,
    sample_grid,
)
from ._stencil_conv import _initial_parameters

Padding = Literal["zeros", "periodic"]


class _Conv(eqx.Module):
    """One convolution layer with a bias, "same" output size (odd kernels)."""

    weight: ConvWeight
    bias: Float[Array, " out_channels"]

    def __call__(self, x: State, padding: Padding) -> State:
        d = x.ndim - 1
        weight = self.weight.astype(x.dtype)
        reach = tuple(((k - 1) // 2, k // 2) for k in weight.shape[2:])
        if padding == "periodic":  # ghost cells from the stencil core's periodic condition
            x = pad(x, sample_grid(None, x.shape[1:]), "periodic", reach)
            out = lax.conv_general_dilated(x[None], weight, (1,) * d, "VALID")[0]
        else:  # zeros beyond the edge, as PyTorch's `padding_mode="zeros"`
            out = lax.conv_general_dilated(x[None], weight, (1,) * d, reach)[0]
        return out + self.bias.astype(x.dtype).reshape((-1,) + (1,) * d)


class _Norm(eqx.Module):
    """Batch normalisation with the statistics of the batch it is called on (no running
    statistics): what PyTorch's `BatchNorm` computes in training mode."""

    weight: Float[Array, " channels"]
    bias: Float[Array, " channels"]

    def __call__(self, x: State, axis_name: Hashable, eps: float) -> State:
        spatial = tuple(range(1, x.ndim))
        shape = (-1,) + (1,) * (x.ndim - 1)
        mean = lax.pmean(jnp.mean(x, axis=spatial), axis_name).reshape(shape)
        var = lax.pmean(jnp.mean(jnp.square(x - mean), axis=spatial), axis_name).reshape(shape)
        scale = self.weight.astype(x.dtype).reshape(shape) * lax.rsqrt(var + eps)
        return (x - mean) * scale + self.bias.astype(x.dtype).reshape(shape)


class _Block(eqx.Module):
    """`(convolution -> [batch norm] -> activation) x 2`."""

    convs: tuple[_Conv, _Conv]
    norms: tuple[_Norm, _Norm] | None


class SIPUNet(AbstractArchitecture):
    """The U-Net of Holl, Koltun & Thuerey's SIP experiments (PhiFlow's `u_net`): `levels`
    resolutions, double convolutions with batch normalisation, max-pooling down, bilinear
    upsampling and concatenation up.

    With `block(x) = act(bn(conv(act(bn(conv(x))))))` and `c` channels per level:

    - encoder: `x_0 = block_0(u)`; `x_l = block_l(maxpool(x_{l-1}))`, `l = 1, ..., levels - 1`
      (`maxpool`: the maximum over `2^d` children);
    - decoder: `y_{levels-1} = x_{levels-1}`; `y_l = block'_l(concat(x_l, up(y_{l+1})))`
      (`up`: bilinear upsampling by 2, half-pixel centres, as PyTorch's
      `Upsample(mode="bilinear")`);
    - `f(u) = project(y_0)` (kernel 1, no normalisation or activation).

    With the defaults (2D, 1 -> 1 channels, 4 levels, 16 filters) it has 37,697 parameters, as
    PhiFlow's `u_net(1, 1)`: weights and biases of every convolution and the scale and shift of
    every batch normalisation.

    **Batch statistics.** Batch normalisation uses the mean and variance of the batch it is
    called on, over the batch and spatial axes (biased variance, `eps` added), as PyTorch's
    `BatchNorm` in training mode, where the SIP experiments keep it. It keeps no running
    statistics, so the network has no `eqx.nn.State`: call it on a batch as
    `jax.vmap(net, axis_name=net.axis_name)(batch)` (a `NameError` otherwise). With
    `batch_norm=False` it acts on one sample anywhere.

    **Padding.** `"zeros"` pads every convolution with zeros and clamps the bilinear
    upsampling at the edges, as the original; `"periodic"` takes the ghost cells from the
    stencil core's `Periodic` condition and upsamples periodically too, so the network
    commutes with shifts by multiples of `2^(levels - 1)` cells.

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `in_channels`, `out_channels`: channels of the input and of the output.
    - `levels`: resolutions, `>= 1` (`levels - 1` poolings); spatial sizes must be divisible
        by `2^(levels - 1)`.
    - `filters`: channels per level, an int for all or one per level.
    - `batch_norm`: normalise after every convolution of a block.
    - `activation`: default `jax.nn.relu`.
    - `kernel_size`: odd, an int for all axes or one per axis (3).
    - `padding`: `"zeros"` (default, as the original) or `"periodic"`.
    - `axis_name`: the `jax.vmap` axis name the batch statistics are taken over (`"batch"`).
    - `eps`: added to the variance (`1e-5`, PyTorch's).
    - `dtype`: parameter dtype (default: the default float dtype; the SIP experiments train a
        float32 network beside float64 physics).
    - `key`: a `jax.random.key`.

    Weights and biases are drawn uniform in `±1/sqrt(fan_in)` (PyTorch's default); batch
    normalisation starts as the identity (scale 1, shift 0).
    """

    inc: _Block
    downs: tuple[_Block, ...]
    ups: tuple[_Block, ...]
    project: _Conv
    activation: Callable = eqx.field(static=True)
    padding: Padding = eqx.field(static=True)
    axis_name: Hashable = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    levels: int = eqx.field(static=True)
    num_spatial_dims: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        levels: int = 4,
        filters: int | Sequence[int] = 16,
        batch_norm: bool = True,
        activation: Callable = jax.nn.relu,
        kernel_size: int | Sequence[int] = 3,
        padding: Padding = "zeros",
        axis_name: Hashable = "batch",
        eps: float = 1e-5,
        dtype=None,
        key: PRNGKeyArray,
    ):
        d = check_dims(num_spatial_dims, None)
        check_channels(in_channels=in_channels, out_channels=out_channels)
        check_int("levels", levels, 1)
        if isinstance(filters, int) and not isinstance(filters, bool):
            filters = (filters,) * levels
        filters = tuple(filters) if isinstance(filters, Sequence) else filters
        if (
            not isinstance(filters, tuple)
            or len(filters) != levels
            or not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in filters)
        ):
            raise ValueError(
                f"`filters` must be an int >= 1 or {levels} (`levels`) ints >= 1, got {filters!r}."
            )
        kernel = kernel_tuple(kernel_size, d)
        if any(k % 2 == 0 for k in kernel):
            raise ValueError(f"`kernel_size` must be odd along every axis, got {kernel_size!r}.")
        if padding not in ("zeros", "periodic"):
            raise ValueError(f"`padding` must be 'zeros' or 'periodic', got {padding!r}.")
        if not isinstance(batch_norm, bool):
            raise TypeError(f"`batch_norm` must be a bool, got {type(batch_norm).__name__}.")
        if not (isinstance(eps, float | int) and eps > 0):
            raise ValueError(f"`eps` must be a positive number, got {eps!r}.")
        check_key(key)
        dtype = default_dtype(dtype)
        keys = iter(jax.random.split(key, 4 * levels + 1))

        def conv(cin, cout, k=kernel):
            limit = 1.0 / math.sqrt(cin * math.prod(k))
            w, b = _initial_parameters(next(keys), (cout, cin, *k), True, dtype, limit)
            return _Conv(w, b)

        def norm(c):
            return _Norm(jnp.ones(c, dtype), jnp.zeros(c, dtype)) if batch_norm else None

        def block(cin, cout, mid):
            norms = (norm(mid), norm(cout)) if batch_norm else None
            return _Block((conv(cin, mid), conv(mid, cout)), norms)

        f = filters
        self.inc = block(in_channels, f[0], f[0])
        self.downs = tuple(block(f[i - 1], f[i], f[i]) for i in range(1, levels))
        # up block i joins level l = levels - 1 - i (skip first, as the original concatenates)
        self.ups = tuple(
            block(f[l] + f[l + 1], f[l], (f[l] + f[l + 1]) // 2)
            for l in reversed(range(levels - 1))  # noqa: E741
        )
        self.project = conv(f[0], out_channels, (1,) * d)
        self.activation = check_activation(activation)
        self.padding, self.axis_name, self.eps = padding, axis_name, float(eps)
        self.levels, self.num_spatial_dims = levels, d
        self.in_channels, self.out_channels = in_channels, out_channels

    @property
    def batch_norm(self) -> bool:
        return self.inc.norms is not None

    def _blocks(self) -> list[_Block]:
        return [self.inc, *self.downs, *self.ups]

    @property
    def num_parameters(self) -> int:
        leaves = jax.tree_util.tree_leaves(eqx.filter(self, eqx.is_inexact_array))
        return sum(int(x.size) for x in leaves)

    @property
    def receptive_field(self) -> tuple[int, ...]:
        """The convolutions' receptive field per axis; batch normalisation's statistics reach
        every point of every sample of the batch besides."""

        # Follow the interval of inputs one output point depends on backwards, for every
        # position of the point relative to the coarsest grid.
        def conv(c, a, lo, hi):
            k = c.weight.shape[2 + a]
            return lo - (k - 1) // 2, hi + k // 2

        def block(b, a, lo, hi):
            return conv(b.convs[0], a, *conv(b.convs[1], a, lo, hi))

        def encoder(level, a, lo, hi):  # interval at the output of x_level, in input points
            lo, hi = block(self._blocks()[level], a, lo, hi)
            return (lo, hi) if level == 0 else encoder(level - 1, a, 2 * lo, 2 * hi + 1)

        def decoder(level, a, lo, hi):  # interval at the output of y_level
            if level == self.levels - 1:
                return encoder(level, a, lo, hi)
            lo, hi = block(self.ups[self.levels - 2 - level], a, lo, hi)
            ulo, uhi = decoder(level + 1, a, (lo - 1) // 2, (hi + 1) // 2)
            slo, shi = encoder(level, a, lo, hi)
            return min(ulo, slo), max(uhi, shi)

        def width(a, p):
            lo, hi = decoder(0, a, p, p)
            return hi - lo + 1

        cells = 2 ** (self.levels - 1)
        return tuple(max(width(a, p) for p in range(cells)) for a in range(self.num_spatial_dims))

    def _block(self, b: _Block, x: State) -> State:
        for i, c in enumerate(b.convs):
            x = c(x, self.padding)
            if b.norms is not None:
                x = b.norms[i](x, self.axis_name, self.eps)
            x = self.activation(x)
        return x

    def apply(self, u: State) -> State:
        cells = 2 ** (self.levels - 1)
        if any(n % cells for n in u.shape[1:]):
            raise ValueError(
                f"A SIPUNet with levels={self.levels} needs spatial sizes divisible by "
                f"2**(levels - 1) = {cells}; the spatial shape of `u` is {tuple(u.shape[1:])}."
            )
        x = self._block(self.inc, u)
        skips = [x]
        for b in self.downs:
            x = self._block(b, _max_pool(x))
            skips.append(x)
        for b, skip in zip(self.ups, reversed(skips[:-1])):
            x = self._block(b, jnp.concatenate([skip, _upsample(x, self.padding)], axis=0))
        return self.project(x, self.padding)


def _max_pool(x: State) -> State:
    """Maximum over each `2 x ... x 2` block of one sample `(channels, *spatial)`."""
    shape = [x.shape[0]]
    for n in x.shape[1:]:
        shape += [n // 2, 2]
    return x.reshape(shape).max(axis=tuple(range(2, 2 * x.ndim, 2)))


def _upsample(x: State, padding: Padding) -> State:
    """Bilinear (linear per axis) upsampling by 2 with half-pixel centres: fine point `2i`
    is `3/4 x[i] + 1/4 x[i - 1]`, `2i + 1` is `3/4 x[i] + 1/4 x[i + 1]`; beyond the edge the
    edge value ("zeros" padding, as PyTorch) or the periodic image."""
    for axis in range(1, x.ndim):
        if padding == "periodic":
            before, after = jnp.roll(x, 1, axis), jnp.roll(x, -1, axis)
        else:
            n = x.shape[axis]
            first = lax.slice_in_dim(x, 0, 1, axis=axis)
            last = lax.slice_in_dim(x, n - 1, n, axis=axis)
            before = jnp.concatenate([first, lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis)
            after = jnp.concatenate([lax.slice_in_dim(x, 1, n, axis=axis), last], axis)
        even = 0.75 * x + 0.25 * before
        odd = 0.75 * x + 0.25 * after
        x = jnp.stack([even, odd], axis=axis + 1)
        shape = list(x.shape)
        x = x.reshape([*shape[:axis], shape[axis] * 2, *shape[axis + 2 :]])
    return x
