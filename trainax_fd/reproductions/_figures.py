"""Figures of the steady-diffusion study: coarse-to-fine losses and relaxation residuals."""

from collections.abc import Mapping, Sequence

import numpy as np

from ._steady_diffusion import Minimisation


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
    return ax


def plot_levels(levels: Sequence[Minimisation], *, ax=None):
    """The least-squares loss of every step of a coarse-to-fine run, level after level, on a
    log axis; a dot marks each level's loss after interpolation.

    **Arguments:**

    - `levels`: what `coarse_to_fine` returned.
    - `ax`: a matplotlib axes; a new figure if `None`.

    **Returns:** the axes.
    """
    if isinstance(levels, Sequence):
        bad = [type(r).__name__ for r in levels if not isinstance(r, Minimisation)]
        got = f"{type(levels).__name__} holding {bad[0]}" if bad else None
        got = f"an empty {type(levels).__name__}" if not levels else got
    else:
        got = type(levels).__name__
    if got is not None:
        raise TypeError(
            "`levels` must be a non-empty sequence of `Minimisation`s (what `coarse_to_fine` "
            f"returns), got {got}."
        )
    ax = _axes(ax)
    offset = 0
    for r in levels:
        loss = np.asarray(r.loss)
        steps = np.arange(offset + 1, offset + 1 + loss.shape[0])
        (line,) = ax.plot(steps, loss, label="x".join(map(str, r.grid.shape)))
        ax.plot([offset], [r.initial_loss], "o", color=line.get_color())
        offset += loss.shape[0]
    ax.set_yscale("log")
    ax.set_xlabel("step (all levels)")
    ax.set_ylabel("mean(residual²)")
    ax.legend(fontsize=8)
    return ax


def plot_residuals(histories: Mapping[str, np.ndarray], *, ax=None):
    """The root-mean-square residual after each step of each relaxation (the median over the
    samples, shaded between the smallest and the largest), on a log axis.

    **Arguments:**

    - `histories`: `{name: residuals (steps + 1, samples)}` from `residual_history`.
    - `ax`: a matplotlib axes; a new figure if `None`.

    **Returns:** the axes.
    """
    if not isinstance(histories, Mapping) or not histories:
        raise TypeError(
            "`histories` must be a non-empty mapping {name: residuals (steps + 1, samples)}, "
            f"got {type(histories).__name__}."
        )
    ax = _axes(ax)
    for name, r in histories.items():
        r = np.asarray(r)
        steps = np.arange(r.shape[0])
        (line,) = ax.plot(steps, np.median(r, axis=1), label=name)
        ax.fill_between(steps, r.min(axis=1), r.max(axis=1), color=line.get_color(), alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("rms residual")
    ax.legend(fontsize=8)
    return ax
