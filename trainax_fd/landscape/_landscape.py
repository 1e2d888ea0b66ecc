"""Loss landscapes: full losses over a 1D or 2D grid of steppers, vmapped and chunked."""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from .._backend import backend_call, wants_canonical
from .._checks import check_int
from ._axes import AbstractAxis, Parameter

#: Default bytes of intermediates one chunk of the grid may hold.
MEMORY = 2**26


class Landscape(eqx.Module):
    """Losses on a grid of steppers: a 1D slice or a 2D plane, for one loss or several.

    **Fields:**

    - `loss`: the losses, shape `(losses, *grid)` (also for one loss: `losses = 1`); `grid`
        is `(a,)` for a slice and `(a, b)` for a plane, so `loss[k, i, j]` is loss `k` at
        `values[0][i]`, `values[1][j]`.
    - `values`: the coordinates of each axis, a tuple of arrays `(a,)` (and `(b,)`).
    - `centre`: the coordinates of the base stepper, shape `(axes,)`; `nan` on an axis where
        it has none (a `Custom` axis without `centre`).
    - `names`: the axis labels, one per axis.
    - `labels`: the loss labels, one per loss (e.g. `"rollout 2"`).
    """

    loss: Float[Array, "losses *grid"]  # noqa: F821
    values: tuple[Float[Array, "points"], ...]  # noqa: F821
    centre: Float[Array, "axes"]  # noqa: F821
    names: tuple[str, ...] = eqx.field(static=True)
    labels: tuple[str, ...] = eqx.field(static=True)

    @property
    def ndim(self) -> int:
        """The number of axes: 1 for a slice, 2 for a plane."""
        return len(self.values)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """`(a,)` or `(a, b)`."""
        return tuple(v.shape[0] for v in self.values)

    def argmin(self) -> np.ndarray:
        """The coordinates of each loss's smallest value on the grid (ignoring `nan`), a NumPy
        array `(losses, axes)`."""
        points = []
        for panel in np.asarray(self.loss):
            index = np.unravel_index(np.nanargmin(panel), panel.shape)
            points.append([float(np.asarray(v)[i]) for v, i in zip(self.values, index)])
        return np.array(points, dtype=float)


def _intermediate_bytes(jaxpr) -> int:
    """Bytes of every value a jaxpr computes, its sub-jaxprs counted once (an upper bound on
    what one evaluation keeps alive)."""
    total = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            shape, dtype = getattr(var.aval, "shape", None), getattr(var.aval, "dtype", None)
            if shape is not None and dtype is not None:
                total += math.prod(shape) * getattr(dtype, "itemsize", 0)
        for sub in jex.core.jaxprs_in_params(eqn.params):
            total += _intermediate_bytes(sub)
    return total


def _loss_bytes(loss, stepper, window_chunk: int) -> int:
    params, static = eqx.partition(stepper, eqx.is_inexact_array)
    jaxpr = jax.make_jaxpr(
        lambda p: loss.full_loss(eqx.combine(p, static), chunk_size=window_chunk)
    )(params)
    return _intermediate_bytes(jaxpr.jaxpr)


def _chunk_sizes(losses, stepper, points, chunk_size, window_chunk_size, memory):
    """Steppers per chunk and windows per chunk (one per loss), from the bytes one
    evaluation of one window needs (traced, not compiled) and the `memory` budget."""
    if chunk_size is not None and window_chunk_size is not None:
        return chunk_size, (window_chunk_size,) * len(losses)
    param_bytes = sum(
        x.nbytes for x in jax.tree_util.tree_leaves(eqx.filter(stepper, eqx.is_array))
    )
    windows, per_stepper = [], 0
    for loss in losses:
        one, two = _loss_bytes(loss, stepper, 1), _loss_bytes(loss, stepper, 2)
        per_window = max(two - one, 1)  # what one more window in a chunk costs
        fixed = max(one - per_window, 0)
        count = loss.num_examples  # windows, for trajectories
        w = window_chunk_size or min(count, max(1, memory // per_window))
        windows.append(w)
        per_stepper = max(per_stepper, fixed + w * per_window)
    per_stepper += 3 * param_bytes  # the stepper, its change and the changed stepper
    k = chunk_size or min(points, max(1, memory // per_stepper))
    return k, tuple(windows)


def _evaluate(losses, stepper, axes, chunk_size: int, window_chunks: tuple[int, ...]):
    grids = jnp.meshgrid(*[axis.values for axis in axes], indexing="ij")
    shape = grids[0].shape
    coords = jnp.stack([g.ravel() for g in grids], axis=-1)  # (points, axes)
    points = coords.shape[0]
    chunks = -(-points // chunk_size)
    index = jnp.minimum(jnp.arange(chunks * chunk_size), points - 1)  # pad with the last point
    coords = coords[index].reshape(chunks, chunk_size, len(axes))

    def point(c):
        s = stepper
        for i, axis in enumerate(axes):
            s = axis.apply(s, c[i])
        values = [loss.full_loss(s, chunk_size=w) for loss, w in zip(losses, window_chunks)]
        return jnp.stack([v.astype(values[0].dtype) for v in values])

    out = lax.map(eqx.filter_vmap(point), coords)  # (chunks, chunk_size, losses)
    out = out.reshape(chunks * chunk_size, len(losses))[:points]
    out = jnp.moveaxis(out, -1, 0).reshape(len(losses), *shape)
    return out


def _label(loss, i: int) -> str:
    steps = getattr(getattr(loss, "configuration", None), "num_rollout_steps", None)
    return f"rollout {steps}" if isinstance(steps, int) else f"loss {i}"


def loss_landscape(
    losses,
    stepper,
    axes: AbstractAxis | Sequence[AbstractAxis],
    *,
    labels: Sequence[str] | None = None,
    chunk_size: int | None = None,
    window_chunk_size: int | None = None,
    memory: int = MEMORY,
) -> Landscape:
    """The full loss of one or several configurations on a 1D or 2D grid of steppers.

    Every grid point is a stepper: the base `stepper` changed by each axis in turn (a
    `Parameter` sets weights, a `Direction` adds a multiple of a direction, a `Custom` axis
    calls a function). The grid is evaluated `chunk_size` steppers at a time (`vmap` inside
    `lax.map`), each loss `window_chunk_size` windows at a time (`full_loss`), all in one
    compiled program; a second call with the same shapes, the same losses' configurations and
    the same axis functions (`where`, `fn`: define them once) does not recompile.

    Several losses (e.g. one per rollout length) are evaluated in the same program. Each uses
    its own windows: a `Trainer` or `FullLoss` of rollout `n` has windows of `n + 1` levels
    by default, so the values equal `Trainer(...).full_loss` of that rollout. For the same
    windows across rollouts, build them all with the `window_length` of the longest.

    **Arguments:**

    - `losses`: a `Trainer` or `FullLoss` (anything with `full_loss(stepper, *, chunk_size)`
        and `num_examples`), or a sequence of them.
    - `stepper`: the base stepper; the centre of `Direction` axes, the source of every weight
        no axis sets.
    - `axes`: one axis (a slice) or a pair of axes (a plane): `Parameter`, `Direction`,
        `Custom`.
    - `labels`: one label per loss (default `"rollout n"` from the configuration, else
        `"loss i"`).
    - `chunk_size`: steppers per chunk; default: as many as fit in `memory`.
    - `window_chunk_size`: windows per chunk of each loss; default: as many as fit in
        `memory` for one stepper.
    - `memory`: bytes of intermediates a chunk may hold when the chunk sizes are chosen. The
        bytes one window costs are estimated from the traced program (every intermediate
        counted, none reused), an upper bound: XLA's buffers come out a few times smaller.

    **Returns:** a `Landscape` whose `loss` has shape `(losses, *grid)` whether one loss or a
    sequence was given (then `losses = 1`), `grid` being `(a,)` or `(a, b)`.

    !!! example

        ```python
        axes = (Parameter(lambda s: s.w[0], np.linspace(0.3, 0.9, 50), name="w_centre"),
                Parameter(lambda s: s.w[1], np.linspace(0.1, 0.7, 50), name="w_right"))
        landscape = loss_landscape([trainer_1, trainer_2], stepper, axes)  # loss (2, 50, 50)
        ```
    """
    losses = tuple(losses) if isinstance(losses, list | tuple) else (losses,)
    if not losses:
        raise ValueError("`losses` must hold at least one loss, got an empty sequence.")
    for loss in losses:
        if not (hasattr(loss, "full_loss") and hasattr(loss, "num_examples")):
            raise TypeError(
                "`losses` must be a `Trainer` or a `FullLoss` (with `full_loss` and "
                f"`num_examples`), or a sequence of them, got {type(loss).__name__}."
            )
    axes = (axes,) if isinstance(axes, AbstractAxis) else axes
    if not isinstance(axes, list | tuple) or not 1 <= len(axes) <= 2:
        raise ValueError(
            "`axes` must be one axis (a slice) or a pair of axes (a plane), got "
            f"{type(axes).__name__}"
            + (f" of length {len(axes)}." if isinstance(axes, list | tuple) else ".")
        )
    axes = tuple(axes)
    for axis in axes:
        if not isinstance(axis, AbstractAxis):
            raise TypeError(
                "`axes` must hold `Parameter`, `Direction` or `Custom` axes, got "
                f"{type(axis).__name__}."
            )
    centre = tuple(axis.coordinate(stepper) for axis in axes)
    if len(axes) == 2 and all(isinstance(axis, Parameter) for axis in axes):
        first, second = (axis.mask(stepper) for axis in axes)
        overlap = jax.tree_util.tree_leaves(
            jax.tree_util.tree_map(lambda a, b: jnp.any((a != 0) & (b != 0)), first, second)
        )
        if any(bool(o) for o in overlap):
            raise ValueError(
                "`axes` must select different parameters, got two `Parameter` axes whose `where` "
                "select overlapping entries."
            )
    if labels is None:
        labels = tuple(_label(loss, i) for i, loss in enumerate(losses))
    else:
        labels = tuple(labels)
        if len(labels) != len(losses) or not all(isinstance(x, str) for x in labels):
            raise ValueError(
                f"`labels` must be {len(losses)} strings, one per loss, got {labels!r}."
            )
    if chunk_size is not None:
        check_int("chunk_size", chunk_size)
    if window_chunk_size is not None:
        check_int("window_chunk_size", window_chunk_size)
    check_int("memory", memory)
    points = math.prod(axis.values.shape[0] for axis in axes)
    k, windows = _chunk_sizes(losses, stepper, points, chunk_size, window_chunk_size, memory)
    canonical = wants_canonical(
        getattr(losses[0], "canonical_convolutions", None),
        lambda s: losses[0].full_loss(s, chunk_size=1),
        stepper,
    )  # the grid's losses run inside loops: convolutions in the fast layout on CPU
    loss = backend_call(_evaluate, losses, stepper, axes, k, windows, canonical=canonical)
    names = tuple(axis.name or f"axis {i}" for i, axis in enumerate(axes))
    return Landscape(
        loss=loss,
        values=tuple(axis.values for axis in axes),
        centre=jax.device_put(np.array(centre, dtype=float)),
        names=names,
        labels=labels,
    )
