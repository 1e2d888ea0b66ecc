"""Figures of loss landscapes (log-scaled filled contours, slices) and loss histories."""

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..landscape import Landscape

#: The style of each extra mark, in order (the centre is a red cross); hollow markers leave
#: the marks under them visible.
_MARKS = (
    {"marker": "+", "color": "white", "markersize": 14, "markeredgewidth": 2},
    {"marker": "o", "markerfacecolor": "none", "markeredgecolor": "orange", "markersize": 10},
    {"marker": "^", "markerfacecolor": "none", "markeredgecolor": "cyan", "markersize": 9},
    {"marker": "s", "markerfacecolor": "none", "markeredgecolor": "magenta", "markersize": 9},
    {"marker": "D", "markerfacecolor": "none", "markeredgecolor": "white", "markersize": 8},
)


def _check(landscape, ndim: int, instead: str) -> Landscape:
    if not isinstance(landscape, Landscape):
        raise TypeError(
            "`landscape` must be a `Landscape` (from `trainax_fd.landscape.loss_landscape`), "
            f"got {type(landscape).__name__}."
        )
    if landscape.ndim != ndim:
        raise ValueError(
            f"`landscape` must have {ndim} axes here, got a landscape with {landscape.ndim} "
            f"({', '.join(landscape.names)}); use `{instead}`."
        )
    if ndim == 2 and min(landscape.grid_shape) < 2:
        raise ValueError(
            "`landscape` needs at least 2 points per axis for contours, got a grid of shape "
            f"{landscape.grid_shape}."
        )
    return landscape


def _stacked(landscape: Landscape) -> np.ndarray:
    """The losses as a NumPy array `(losses, *grid)`."""
    return np.asarray(landscape.loss, dtype=float)


def _levels(panels: np.ndarray, levels) -> np.ndarray:
    """Contour levels: `levels` log-spaced between the smallest positive and the largest
    finite loss of all panels, or the given increasing positive levels."""
    if isinstance(levels, int) and not isinstance(levels, bool):
        if levels < 2:
            raise ValueError(f"`levels` must be an int >= 2 or an array of levels, got {levels}.")
        values = panels[np.isfinite(panels) & (panels > 0)]
        if values.size == 0:
            raise ValueError("`landscape` has no finite positive loss to draw on a log scale.")
        low, high = float(values.min()), float(values.max())
        if high <= low:
            low, high = low / 10, high * 10
        return np.geomspace(low, high, levels)
    array = np.asarray(levels, dtype=float)
    if array.ndim != 1 or array.size < 2 or np.any(array <= 0) or np.any(np.diff(array) <= 0):
        raise ValueError(
            "`levels` must be an int >= 2 or a 1D array of at least 2 increasing positive "
            f"levels, got {levels!r}."
        )
    return array


def _marks(marks, panels: int) -> list[tuple[str, np.ndarray]]:
    """Each mark as `(label, points)` with points of shape `(panels, 2)`."""
    out = []
    for label, points in (marks or {}).items():
        array = np.asarray(points, dtype=float)
        if array.shape == (2,):
            array = np.broadcast_to(array, (panels, 2))
        if array.shape != (panels, 2):
            raise ValueError(
                f"`marks[{label!r}]` must be one point `(2,)` or one per panel `({panels}, 2)`, "
                f"got shape {array.shape}."
            )
        out.append((str(label), array))
    return out


def _colorbar(fig, drawn, ax, levels: np.ndarray):
    """A log colour bar ticked at powers of ten (and at 2 and 5 times them when the levels span
    less than two decades)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator

    narrow = levels[-1] < 100 * levels[0]
    locator = LogLocator(subs=(1.0, 2.0, 5.0) if narrow else (1.0,))
    formatter = LogFormatterSciNotation(labelOnlyBase=False)
    return fig.colorbar(drawn, ax=ax, label="loss", ticks=locator, format=formatter)


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _panel(ax, landscape, panel, levels, marks, k, centre, cmap, legend):
    from matplotlib.colors import LogNorm

    floor = levels[0]
    z = np.ma.masked_invalid(np.maximum(panel, floor))  # zeros drawn as the lowest level
    x, y = (np.asarray(v) for v in landscape.values)
    drawn = ax.contourf(
        x, y, z.T, levels=levels, norm=LogNorm(vmin=levels[0], vmax=levels[-1]), cmap=cmap
    )
    point = np.asarray(landscape.centre)
    if centre is not None and np.all(np.isfinite(point)):
        ax.plot(*point, "x", color="red", markersize=9, markeredgewidth=2, label=centre)
    for (label, points), style in zip(marks, itertools.cycle(_MARKS)):
        ax.plot(*points[k], linestyle="none", label=label, **{"markeredgewidth": 2, **style})
    ax.set_xlabel(landscape.names[0])
    ax.set_ylabel(landscape.names[1])
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    return drawn


def landscape(
    landscape: Landscape,
    *,
    index: int | None = None,
    ax=None,
    levels=20,
    marks: Mapping[str, object] | None = None,
    centre: str | None = "centre",
    cmap: str = "viridis",
    title: str | None = None,
):
    """Draw one 2D landscape as log-scaled filled contours with a colour bar.

    **Arguments:**

    - `landscape`: a 2D `Landscape`.
    - `index`: which loss of a landscape of several losses (required unless it has one).
    - `ax`: a matplotlib axes to draw into; a new figure if `None`.
    - `levels`: the number of log-spaced contour levels, or the levels themselves.
    - `marks`: `{label: point}` drawn on top, a point `(2,)` in axis coordinates (or one per
        loss, `(losses, 2)`, of which `index` is drawn), e.g. the exact optimum.
    - `centre`: the label of the base stepper's mark (a red cross; the trained optimum when
        the landscape was taken around the trained stepper); `None` draws none.
    - `cmap`, `title`: colour map and title (default: the loss label).

    **Returns:** the matplotlib `Figure`.
    """
    _check(landscape, 2, "landscape_slice")
    panels = _stacked(landscape)
    if index is None:
        if len(panels) != 1:
            raise ValueError(
                f"`index` must say which of the {len(panels)} losses to draw (0 to "
                f"{len(panels) - 1}), got None; or draw them all with `landscape_grid`."
            )
        index = 0
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(panels):
        raise ValueError(
            f"`index` must be an int in [0, {len(panels)}) (one per loss), got {index!r}."
        )
    levels = _levels(panels[index], levels)
    marks = _marks(marks, len(panels))
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(5.0, 4.0), layout="constrained")
    fig = ax.figure
    drawn = _panel(ax, landscape, panels[index], levels, marks, index, centre, cmap, True)
    ax.set_title(landscape.labels[index] if title is None else title)
    _colorbar(fig, drawn, ax, levels)
    return fig


def landscape_grid(
    landscape: Landscape,
    *,
    cols: int | None = None,
    levels=20,
    marks: Mapping[str, object] | None = None,
    centre: str | None = "centre",
    cmap: str = "viridis",
    size: tuple[float, float] = (4.0, 3.4),
):
    """Draw every loss of a 2D landscape as a panel, with one colour bar for all.

    The contour levels are log-spaced over all panels, so panels compare by colour.

    **Arguments:**

    - `landscape`: a 2D `Landscape` (of one or several losses).
    - `cols`: panels per row (default: 2 for up to 4 losses, else 3).
    - `levels`, `centre`, `cmap`: as in `landscape`.
    - `marks`: `{label: points}`, a point `(2,)` for every panel or one per panel
        `(losses, 2)` (e.g. each rollout's trained weights); the legend is in the first panel.
    - `size`: the size of one panel in inches.

    **Returns:** the matplotlib `Figure`: one axes per loss and one colour bar.
    """
    _check(landscape, 2, "landscape_slice")
    panels = _stacked(landscape)
    count = len(panels)
    if cols is None:
        cols = min(count, 2 if count <= 4 else 3)
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise ValueError(f"`cols` must be an int >= 1, got {cols!r}.")
    cols = min(cols, count)
    rows = math.ceil(count / cols)
    levels = _levels(panels, levels)
    marks = _marks(marks, count)
    fig, axes = _pyplot().subplots(
        rows,
        cols,
        figsize=(size[0] * cols + 1.0, size[1] * rows),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    used = list(axes.flat[:count])
    for ax in axes.flat[count:]:
        ax.remove()
    for k, ax in enumerate(used):
        drawn = _panel(ax, landscape, panels[k], levels, marks, k, centre, cmap, k == 0)
        ax.set_title(landscape.labels[k])
    _colorbar(fig, drawn, used, levels)
    return fig


def landscape_slice(
    landscape: Landscape,
    *,
    ax=None,
    centre: str | None = "centre",
    title: str | None = None,
):
    """Draw a 1D landscape: one line per loss on a log axis.

    **Arguments:**

    - `landscape`: a 1D `Landscape`.
    - `ax`: a matplotlib axes to draw into; a new figure if `None`.
    - `centre`: the label of a dashed line at the base stepper's coordinate; `None` for none.
    - `title`: the axes title.

    **Returns:** the matplotlib `Figure`.
    """
    _check(landscape, 1, "landscape` or `landscape_grid")
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(5.0, 3.5), layout="constrained")
    x = np.asarray(landscape.values[0])
    for label, line in zip(landscape.labels, _stacked(landscape)):
        ax.plot(x, line, label=label)
    ax.set_yscale("log", nonpositive="mask")
    point = float(np.asarray(landscape.centre)[0])
    if centre is not None and math.isfinite(point):
        ax.axvline(point, color="gray", linestyle="--", label=centre)
    ax.set_xlabel(landscape.names[0])
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax.figure


def _history(value, where: str) -> np.ndarray:
    history = getattr(value, "loss_history", value)  # a `TrainResult` or an array
    try:
        array = np.asarray(history, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`{where}` must be a `TrainResult` or an array of losses, got {type(value).__name__}."
        ) from error
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        raise ValueError(
            f"`{where}` must hold losses of shape (steps,) or (members, steps), got shape "
            f"{array.shape}."
        )
    return array


def loss_history(
    histories,
    *,
    labels: Sequence[str] | None = None,
    ax=None,
    xlabel: str = "step",
    ylabel: str = "training loss",
):
    """Draw loss histories on a log axis.

    **Arguments:**

    - `histories`: a `TrainResult` or an array of losses `(steps,)` (or `(members, steps)`,
        one line per member, e.g. a sweep), a sequence of those, or a mapping
        `{label: history}`. Steps not run (`nan`) are left out.
    - `labels`: one label per history of a sequence (ignored for a mapping).
    - `ax`: a matplotlib axes to draw into; a new figure if `None`.
    - `xlabel`, `ylabel`: the axis labels.

    **Returns:** the matplotlib `Figure`.
    """
    if isinstance(histories, Mapping):
        items = [(str(k), _history(v, f"histories[{k!r}]")) for k, v in histories.items()]
    else:
        single = not isinstance(histories, list | tuple)
        values = [histories] if single else list(histories)
        if not values:
            raise ValueError("`histories` must hold at least one history, got none.")
        if labels is not None and len(labels) != len(values):
            raise ValueError(
                f"`labels` must hold {len(values)} labels, one per history, got {len(labels)}."
            )
        names = list(labels) if labels is not None else [None] * len(values)
        where = ["histories"] if single else [f"histories[{i}]" for i in range(len(values))]
        items = [(n, _history(v, w)) for n, v, w in zip(names, values, where)]
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6.0, 4.0), layout="constrained")
    for label, array in items:
        rows = array[None] if array.ndim == 1 else array
        for i, row in enumerate(rows):
            ax.plot(np.arange(row.shape[0]), row, label=label if i == 0 else None)
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if any(label is not None for label, _ in items):
        ax.legend(fontsize=8)
    return ax.figure
