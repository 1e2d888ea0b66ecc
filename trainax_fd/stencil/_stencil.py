"""Finite-difference stencils: offsets and weights, Fornberg weights, convolution kernels."""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._custom_types import State
from ._boundary import BoundarySpec, pad
from ._grid import Grid


def fornberg_weights(offsets: Sequence[float], order: int, x0: float = 0.0) -> np.ndarray:
    """Finite-difference weights for the `order`-th derivative at `x0` from points `offsets`.

    Fornberg's recursion (Math. Comp. 51, 1988), in float64; the weights assume unit spacing.

    **Arguments:**

    - `offsets`: distinct sample positions in units of the grid spacing.
    - `order`: derivative order `m >= 0`; needs `len(offsets) > m`.
    - `x0`: where the derivative is taken.

    **Returns:** weights, shape `(len(offsets),)`.
    """
    x = np.asarray(offsets, dtype=np.float64)
    n = len(x)
    if not isinstance(order, (int, np.integer)) or order < 0:
        raise ValueError(f"`order` must be a non-negative int, got {order!r}.")
    if n <= order:
        raise ValueError(
            f"A derivative of order {order} needs more than {order} offsets, got {n}: "
            f"{tuple(offsets)}."
        )
    if len(set(x.tolist())) != n:
        raise ValueError(f"`offsets` must be distinct, got {tuple(offsets)}.")
    c = np.zeros((n, order + 1))
    c[0, 0] = 1.0
    c1, c4 = 1.0, x[0] - x0
    for i in range(1, n):
        mn = min(i, order)
        c2, c5, c4 = 1.0, c4, x[i] - x0
        for j in range(i):
            c3 = x[i] - x[j]
            c2 *= c3
            if j == i - 1:
                for k in range(mn, 0, -1):
                    c[i, k] = c1 * (k * c[i - 1, k - 1] - c5 * c[i - 1, k]) / c2
                c[i, 0] = -c1 * c5 * c[i - 1, 0] / c2
            for k in range(mn, 0, -1):
                c[j, k] = (c4 * c[j, k] - k * c[j, k - 1]) / c3
            c[j, 0] = c4 * c[j, 0] / c3
        c1 = c2
    return c[:, order]


class Stencil(eqx.Module):
    """A linear stencil: `(S u)_i = h^-order * sum_k weights[k] * u[i + offsets[k]]`.

    Weights are stored for unit spacing; applying the stencil on a grid divides by `h^order`.
    `offsets` and `order` are static, `weights` an array leaf (learnable, vmappable).

    **Arguments:**

    - `offsets`: integer shifts, e.g. `(-1, 0, 1)`.
    - `weights`: one weight per offset, shape `(len(offsets),)`.
    - `order`: the derivative order the stencil approximates (sets the `h` scaling).

    !!! example
        ```python
        s = Stencil.from_offsets((-1, 0, 1), order=2)  # weights (1, -2, 1)
        uxx = s(u, grid, bc, axis=0)
        ```
    """

    offsets: tuple[int, ...] = eqx.field(static=True)
    weights: Float[Array, " points"]
    order: int = eqx.field(static=True)

    def __init__(
        self, offsets: Sequence[int], weights: Float[ArrayLike, " points"], order: int = 0
    ):
        offsets = tuple(int(o) for o in offsets)
        if len(offsets) == 0 or len(set(offsets)) != len(offsets):
            raise ValueError(f"`offsets` must be distinct ints, at least one, got {offsets}.")
        weights = jnp.asarray(weights)
        if weights.shape != (len(offsets),):
            raise ValueError(
                f"`weights` must have shape ({len(offsets)},) to match `offsets` {offsets}, "
                f"got {weights.shape}."
            )
        if not isinstance(order, (int, np.integer)) or order < 0:
            raise ValueError(f"`order` must be a non-negative int, got {order!r}.")
        self.offsets, self.weights, self.order = offsets, weights, int(order)

    @classmethod
    def from_offsets(cls, offsets: Sequence[int], order: int) -> "Stencil":
        """The most accurate stencil for the `order`-th derivative on `offsets` (Fornberg)."""
        return cls(offsets, fornberg_weights(offsets, order), order)

    @property
    def reach(self) -> tuple[int, int]:
        """Ghost layers needed `(low, high)`: how far the stencil looks left and right."""
        return max(0, -min(self.offsets)), max(0, max(self.offsets))

    @property
    def accuracy(self) -> int:
        """Order of accuracy: exact on polynomials of degree `order + accuracy - 1`."""
        x = np.asarray(self.offsets, dtype=np.float64)
        w = np.asarray(self.weights, dtype=np.float64)
        scale = np.abs(w).sum() * max(1.0, float(np.abs(x).max())) ** len(x)
        for p in range(len(x) + 2):
            exact = math.factorial(self.order) if p == self.order else 0.0
            if abs(np.dot(w, x**p) - exact) > 1e-9 * scale:
                return p - self.order
        return len(x) + 2 - self.order

    def __call__(self, u: State, grid: Grid, bc: BoundarySpec, axis: int = 0) -> State:
        """Apply along spatial `axis` of one sample `(channels, *spatial)`; same shape back."""
        _check_axis(axis, grid)
        low, high = self.reach
        widths = [(0, 0)] * grid.ndim
        widths[axis] = (low, high)
        up = pad(u, grid, bc, widths)
        n = grid.shape[axis]
        weights = self.weights.astype(u.dtype) * (grid.spacing[axis] ** -self.order)
        # weights known at trace time: skip the zero ones (e.g. the centre of `central()`)
        known = None if isinstance(self.weights, jax.core.Tracer) else np.asarray(self.weights)
        out = jnp.zeros_like(u)
        for k, offset in enumerate(self.offsets):
            if known is not None and known[k] == 0.0:
                continue
            shifted = jax.lax.slice_in_dim(up, low + offset, low + offset + n, axis=axis + 1)
            out = out + weights[k] * shifted
        return out

    def to_kernel(self, grid: Grid | None = None, axis: int = 0) -> Array:
        """The stencil as a centred cross-correlation kernel (what `eqx.nn.Conv` applies).

        **Arguments:**

        - `grid`: if given, weights are scaled by `h^-order` and the kernel gets one axis per
          grid dimension (size 1 except along `axis`).
        - `axis`: the spatial axis the stencil acts along.

        **Returns:** shape `(2r + 1,)` without a grid, with `r = max |offset|`; zeros fill offsets
        the stencil does not use.
        """
        r = max(abs(o) for o in self.offsets)
        kernel = jnp.zeros(2 * r + 1, dtype=self.weights.dtype)
        kernel = kernel.at[jnp.asarray(self.offsets) + r].set(self.weights)
        if grid is None:
            return kernel
        _check_axis(axis, grid)
        shape = [1] * grid.ndim
        shape[axis] = 2 * r + 1
        return (kernel * grid.spacing[axis] ** -self.order).reshape(shape)

    @classmethod
    def from_kernel(
        cls, kernel: Float[ArrayLike, "..."], order: int = 0, spacing: float = 1.0
    ) -> "Stencil":
        """Read a centred cross-correlation kernel as a stencil (inverse of `to_kernel`).

        **Arguments:**

        - `kernel`: odd length along one axis, size 1 along any other (e.g. a learned
          `eqx.nn.Conv1d` weight `conv.weight[0, 0]`).
        - `order`: the derivative order to attach (sets the `h` scaling).
        - `spacing`: the grid spacing the kernel was trained with; weights become
          `kernel * spacing^order` so that they are comparable with unit-spacing stencils.
        """
        kernel = jnp.asarray(kernel)
        long_axes = [a for a, n in enumerate(kernel.shape) if n != 1]
        if len(long_axes) > 1 or (kernel.size % 2 == 0):
            raise ValueError(
                "`kernel` must have odd length along one axis and size 1 along the others, "
                f"got shape {kernel.shape}."
            )
        weights = kernel.reshape(-1) * spacing**order
        r = kernel.size // 2
        return cls(tuple(range(-r, r + 1)), weights, order)


def _check_axis(axis: int, grid: Grid) -> None:
    if not isinstance(axis, (int, np.integer)) or not 0 <= axis < grid.ndim:
        raise ValueError(
            f"`axis` must be a spatial axis in [0, {grid.ndim - 1}] (channels are not counted), "
            f"got {axis!r}."
        )
