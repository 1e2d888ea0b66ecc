"""Figures of rollout evaluations: error against rollout step (emulators and their seed
spread), and reference / prediction / difference panels of one trajectory."""

from collections.abc import Mapping, Sequence

import numpy as np

from ..evaluation import Evaluation
from ..stencil import Grid
from ._fields import _image, spacetime


def _evaluations(evaluations, labels) -> list[tuple[str, Evaluation]]:
    if isinstance(evaluations, Evaluation):
        evaluations = [evaluations]
    if isinstance(evaluations, Mapping):
        items = [(str(k), v) for k, v in evaluations.items()]
    elif isinstance(evaluations, Sequence) and evaluations:
        if labels is not None and len(labels) != len(evaluations):
            raise ValueError(
                f"`labels` must hold {len(evaluations)} labels, one per evaluation, got "
                f"{len(labels)}."
            )
        names = labels if labels is not None else [f"emulator {i}" for i in range(len(evaluations))]
        items = list(zip(map(str, names), evaluations))
    else:
        raise ValueError(
            "`evaluations` must be an `Evaluation`, a non-empty sequence of them or a mapping "
            f"`{{label: evaluation}}`, got {evaluations!r}."
        )
    for label, e in items:
        if not isinstance(e, Evaluation):
            raise TypeError(
                f"`evaluations` must hold `Evaluation`s (from `trainax_fd.evaluation.evaluate`), "
                f"got {type(e).__name__} for {label!r}."
            )
    return items


def error_curves(
    evaluations,
    metric: str = "nRMSE",
    *,
    labels: Sequence[str] | None = None,
    spread: bool = True,
    log: bool = True,
    ax=None,
):
    """Draw a metric against the rollout step, one line per emulator.

    An evaluation of an ensemble (`evaluate_ensemble`, e.g. the seeds of a sweep) is drawn as
    the median over its members with the band from the smallest to the largest member.

    **Arguments:**

    - `evaluations`: an `Evaluation`, a sequence of them, or a mapping `{label: evaluation}`.
    - `metric`: the metric's name (`"nRMSE"`, `"correlation"`, ...).
    - `labels`: one label per evaluation of a sequence.
    - `spread`: shade the members' min-max band.
    - `log`: a logarithmic metric axis.
    - `ax`: a matplotlib axes to draw into; a new figure if `None`.

    **Returns:** the matplotlib `Figure`.
    """
    items = _evaluations(evaluations, labels)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5.5, 3.5), layout="constrained")
    for label, e in items:
        curves = np.asarray(e.curve(metric)).reshape(-1, e.num_steps)  # (members, steps)
        steps = np.arange(1, e.num_steps + 1)
        (line,) = ax.plot(steps, np.median(curves, axis=0), label=label)
        if spread and curves.shape[0] > 1:
            low, high = curves.min(axis=0), curves.max(axis=0)
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("rollout step")
    ax.set_ylabel(metric)
    ax.legend()
    return ax.figure


def _as_prediction(prediction, reference: np.ndarray) -> np.ndarray:
    if callable(prediction) and not hasattr(prediction, "shape"):
        from ..reference import rollout

        trajectory = rollout(prediction, reference.shape[0] - 1, include_init=True)(reference[0])
        return np.asarray(trajectory)
    predicted = np.asarray(prediction)
    if predicted.shape != reference.shape:
        raise ValueError(
            f"`prediction` must have the shape of `reference` {reference.shape}, got "
            f"{predicted.shape}."
        )
    return predicted


def rollout_panels(
    reference,
    prediction,
    grid: Grid | None = None,
    *,
    channel: int = 0,
    dt: float = 1.0,
    times: Sequence[int] | None = None,
    titles: Sequence[str] = ("reference", "prediction", "difference"),
):
    """Reference, prediction and their difference side by side, for one trajectory.

    1D states are drawn as space-time images (space across, time upwards); 2D states as
    snapshots, one row per time level in `times`.

    **Arguments:**

    - `reference`: one trajectory `(time, channels, *spatial)`, starting at the initial state.
    - `prediction`: the predicted trajectory of the same shape, or a stepper (callable) that
        is rolled out from `reference[0]`.
    - `grid`: the grid of the states (sets the extent); default: unit spacing.
    - `channel`: the channel drawn.
    - `dt`: the time between stored levels (1D).
    - `times`: the time levels drawn for 2D states (default: three, evenly spaced).
    - `titles`: the titles of the three columns.

    **Returns:** the matplotlib `Figure`.
    """
    import matplotlib.pyplot as plt

    ref = np.asarray(reference)
    if ref.ndim not in (3, 4):
        raise ValueError(
            "`reference` must be one 1D or 2D trajectory (time, channels, *spatial), got shape "
            f"{ref.shape}."
        )
    pred = _as_prediction(prediction, ref)
    spatial = ref.shape[2:]
    if grid is None:
        grid = Grid(spatial, extent=tuple(float(n) for n in spatial), placement="cell")
    fields = (ref, pred, pred - ref)
    if ref.ndim == 3:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.5), layout="constrained", sharey=True)
        for ax, field, title in zip(axes, fields, titles):
            image = spacetime(field, grid, dt, channel=channel, ax=ax, title=title)
            fig.colorbar(image, ax=ax)
        return fig
    if times is None:
        times = np.linspace(0, ref.shape[0] - 1, 3, dtype=int)
    levels = [int(t) for t in times]
    fig, axes = plt.subplots(len(levels), 3, figsize=(10, 3 * len(levels)), layout="constrained",
                             squeeze=False)  # fmt: skip
    extent = (0.0, grid.extent[0], 0.0, grid.extent[1])
    for row, t in zip(axes, levels):
        for ax, field, title in zip(row, fields, titles):
            image = _image(ax, field[t, channel].T, extent, ("x", "y"), f"{title}, t={t}",
                           "RdBu_r", aspect="equal")  # fmt: skip
            fig.colorbar(image, ax=ax)
    return fig
