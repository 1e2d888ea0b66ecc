"""Metrics that compare one predicted state with its reference state, built on the losses.

A metric here is what APEBench and exponax report at every rollout step: a quantity per channel
(the channel's own normalisation), summed over the channels. The per-channel quantity is a
`trainax_fd.losses` loss evaluated on the difference, the prediction and the target, so a
metric and the loss of the same name are one implementation: `nRMSE` of a one-channel state is
`sqrt(NormalizedMSE()(prediction, target))`.
"""

import abc
import sys
from collections.abc import Sequence
from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp

from .._custom_types import Scalar, State
from ..losses import MAE as _MAE, MSE as _MSE, AbstractLoss, FourierBand, Sobolev
from ..stencil import BoundarySpec, Grid

Mode = Literal["absolute", "normalized", "symmetric"]
_MODES = ("absolute", "normalized", "symmetric")


def check_pair(prediction, target, who: str) -> None:
    """A `ValueError` unless `prediction` and `target` are arrays of one shape with a channel
    axis and at least one spatial axis."""
    p, t = getattr(prediction, "shape", None), getattr(target, "shape", None)
    if p is None or t is None or p != t or len(p) < 2:
        raise ValueError(
            f"`prediction` and `target` must be one sample each, arrays of the same shape "
            f"(channels, *spatial), for {who}, got shapes {p} and {t}. Metrics act on one "
            "sample; batch with `jax.vmap`."
        )


class AbstractStateMetric(eqx.Module):
    """Compares one predicted state with its reference: `metric(prediction, target) -> scalar`.

    Both are one sample `(channels, *spatial)`; batch with `jax.vmap`. `name` labels the
    metric in tables and plots; `higher_is_better` is `True` for similarities (correlation),
    `False` for errors.
    """

    name: eqx.AbstractVar[str]
    higher_is_better: ClassVar[bool]

    @abc.abstractmethod
    def __call__(self, prediction: State, target: State) -> Scalar:
        """The metric of one sample. **Returns:** a scalar."""


class Error(AbstractStateMetric):
    """An error per channel from a loss, summed over the channels.

    With `e = base(prediction_c - target_c)`, `r = base(target_c)`, `q = base(prediction_c)`
    (each `base.leaf_loss` on channel `c` alone) and `f = sqrt` when `root` (identity
    otherwise), channel `c` contributes `f(e)` (`"absolute"`), `f(e) / f(r)` (`"normalized"`)
    or `2 f(e) / (f(q) + f(r))` (`"symmetric"`, bounded by 2 per channel). These are
    exponax's metrics (`nRMSE`: `base=MSE()`, `"normalized"`, `root=True`) with a unit
    domain; a normalised metric of a channel whose reference is zero is `inf` or `nan`.

    **Arguments:**

    - `base`: a `trainax_fd.losses` loss evaluated on one channel (`MSE()`, `MAE()`,
        `FourierBand(low, high)`, `Sobolev(grid, bc)`, ...).
    - `mode`: `"absolute"`, `"normalized"` or `"symmetric"`.
    - `root`: take the square root of every `base` value (RMSE from MSE).
    - `name`: the label in tables and plots.
    """

    base: AbstractLoss
    mode: Mode = eqx.field(static=True)
    root: bool = eqx.field(static=True)
    name: str = eqx.field(static=True)
    higher_is_better: ClassVar[bool] = False

    def __init__(self, base: AbstractLoss, mode: Mode = "normalized", *, root: bool, name: str):
        if not isinstance(base, AbstractLoss):
            raise TypeError(
                f"`base` must be a `trainax_fd.losses` loss (e.g. `MSE()`), got "
                f"{type(base).__name__}."
            )
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}, got {mode!r}.")
        if not isinstance(root, bool):
            raise TypeError(f"`root` must be a bool, got {type(root).__name__}.")
        self.base, self.mode, self.root, self.name = base, mode, root, check_name(name)

    def __call__(self, prediction, target):
        check_pair(prediction, target, self.name)
        f = jnp.sqrt if self.root else (lambda x: x)
        total = None
        for c in range(prediction.shape[0]):
            p, t = prediction[c : c + 1], target[c : c + 1]
            error = f(self.base.leaf_loss(p, t))
            if self.mode == "normalized":
                error = error / f(self.base.leaf_loss(t, None))
            elif self.mode == "symmetric":
                norms = f(self.base.leaf_loss(p, None)) + f(self.base.leaf_loss(t, None))
                error = 2 * error / norms
            total = error if total is None else total + error
        return total


class Correlation(AbstractStateMetric):
    """The correlation `<p_c, t_c> / (|p_c| |t_c|)` of every channel (not mean-centred, as
    exponax's), averaged over the channels; 1 for a perfect prediction.

    **Arguments:** `name` (default `"correlation"`).
    """

    name: str = eqx.field(static=True)
    higher_is_better: ClassVar[bool] = True

    def __init__(self, name: str = "correlation"):
        self.name = check_name(name)

    def __call__(self, prediction, target):
        check_pair(prediction, target, self.name)
        axes = tuple(range(1, prediction.ndim))
        inner = jnp.sum(prediction * target, axis=axes)
        norms = jnp.sqrt(jnp.sum(jnp.square(prediction), axis=axes))
        norms = norms * jnp.sqrt(jnp.sum(jnp.square(target), axis=axes))
        return jnp.mean(inner / norms)


def _public_name(cls: type) -> str:
    """`package.Name` without private modules: `trainax_fd.losses.MSE`, not `MSE` alone
    (the evaluation metrics have losses' names)."""
    public = [part for part in cls.__module__.split(".") if not part.startswith("_")]
    return ".".join([*public, cls.__qualname__])


def check_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
    return name


def MSE() -> Error:
    """Mean squared error, summed over channels."""
    return Error(_MSE(), "absolute", root=False, name="MSE")


def nMSE() -> Error:
    """Normalised MSE, `MSE(p - t) / MSE(t)` per channel, summed over channels."""
    return Error(_MSE(), "normalized", root=False, name="nMSE")


def sMSE() -> Error:
    """Symmetric MSE, `2 MSE(p - t) / (MSE(p) + MSE(t))` per channel, summed."""
    return Error(_MSE(), "symmetric", root=False, name="sMSE")


def RMSE() -> Error:
    """Root mean squared error per channel, summed over channels."""
    return Error(_MSE(), "absolute", root=True, name="RMSE")


def nRMSE() -> Error:
    """Normalised RMSE, `|p - t| / |t|` (2-norms) per channel, summed over channels: the
    default metric of APEBench."""
    return Error(_MSE(), "normalized", root=True, name="nRMSE")


def sRMSE() -> Error:
    """Symmetric RMSE, `2 |p - t| / (|p| + |t|)` per channel, summed over channels."""
    return Error(_MSE(), "symmetric", root=True, name="sRMSE")


def MAE() -> Error:
    """Mean absolute error per channel, summed over channels."""
    return Error(_MAE(), "absolute", root=False, name="MAE")


def nMAE() -> Error:
    """Normalised MAE, `MAE(p - t) / MAE(t)` per channel, summed over channels."""
    return Error(_MAE(), "normalized", root=False, name="nMAE")


def sMAE() -> Error:
    """Symmetric MAE, `2 MAE(p - t) / (MAE(p) + MAE(t))` per channel, summed over channels."""
    return Error(_MAE(), "symmetric", root=False, name="sMAE")


def correlation() -> Correlation:
    """The channel-averaged correlation (see `Correlation`)."""
    return Correlation()


#: Larger than any wavenumber: a band without an upper end.
_NO_END = sys.maxsize


def fourier_nRMSE(
    low: int, high: int | None = None, *, derivative: int = 0, mode: Mode = "normalized",
    name: str | None = None,
) -> Error:  # fmt: skip
    """The nRMSE of the Fourier modes with `low <= max_a |k_a| <= high` (`high=None`: up to the
    highest), optionally of the `derivative`-th spectral derivative (`FourierBand`); periodic
    data. Normalised by the reference's power in the same band (`mode="absolute"` for a band
    where the reference may carry none).

    **Returns:** an `Error` named `fourier_nRMSE[low,high]` (with `d{derivative}`) unless
    `name` is given.
    """
    band = FourierBand(low, _NO_END if high is None else high, derivative)
    if name is None:
        prefix = {"normalized": "n", "symmetric": "s", "absolute": ""}.get(mode, "")
        end = "inf" if high is None else str(high)
        name = f"fourier_{prefix}RMSE[{low},{end}]" + (f"d{derivative}" if derivative else "")
    return Error(band, mode, root=True, name=name)


#: Low, mid and high modes by the largest wavenumber magnitude over the axes.
BANDS = {"low": (0, 4), "mid": (5, 12), "high": (13, None)}


def fourier_bands(*, derivative: int = 0, mode: Mode = "normalized") -> tuple[Error, ...]:
    """The Fourier-band nRMSE of the low (`|k| <= 4`), mid (`5..12`) and high (`>= 13`) modes
    (`|k|` the largest magnitude over the axes), named `fourier_nRMSE_low`, `..._mid`,
    `..._high`."""
    prefix = {"normalized": "n", "symmetric": "s", "absolute": ""}.get(mode, "")
    suffix = f"_d{derivative}" if derivative else ""
    return tuple(
        fourier_nRMSE(
            lo, hi, derivative=derivative, mode=mode, name=f"fourier_{prefix}RMSE_{band}{suffix}"
        )
        for band, (lo, hi) in BANDS.items()
    )


def H1_nRMSE(grid: Grid, bc: BoundarySpec = "periodic", *, name: str = "H1_nRMSE") -> Error:
    """The nRMSE in the H1 norm, `sqrt(Sobolev(p - t) / Sobolev(t))` per channel: values and
    first derivatives (second-order central differences on `grid`, ghosts from `bc`, as the
    `Sobolev` loss), summed over channels. Works for every boundary condition of the grid."""
    return Error(Sobolev(grid, bc), "normalized", root=True, name=name)


#: The default metrics of `evaluate`: APEBench's nRMSE.
DEFAULT_METRICS = (nRMSE(),)


def check_metrics(metrics) -> tuple[AbstractStateMetric, ...]:
    """`metrics` as a non-empty tuple of metrics with unique names."""
    if isinstance(metrics, AbstractStateMetric):
        metrics = (metrics,)
    if not isinstance(metrics, Sequence) or not metrics:
        raise ValueError(
            "`metrics` must be a metric or a non-empty sequence of metrics (e.g. "
            f"`(nRMSE(), correlation())`), got {metrics!r}."
        )
    for m in metrics:
        if not isinstance(m, AbstractStateMetric):
            raise TypeError(
                "`metrics` must hold `trainax_fd.evaluation` metrics (`nRMSE()`, `Error(...)`, "
                f"...), got {_public_name(type(m))}."
            )
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ValueError(f"`metrics` must have unique names, got {names}.")
    return tuple(metrics)
