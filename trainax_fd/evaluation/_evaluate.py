"""`evaluate`: autoregressive rollouts from test initial conditions, compared level by level."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int

from .._backend import backend_call, wants_canonical
from .._checks import check_int
from ._metrics import DEFAULT_METRICS, AbstractStateMetric, Correlation, check_metrics
from ._table import pandas_frame, text_table

#: The default aggregation window: APEBench's geometric mean over the first 100 steps.
AGGREGATE_STEPS = 100


class Evaluation(eqx.Module):
    """Per-step metrics of rollouts against reference trajectories, and their aggregates.

    Leading `*members` axes appear when `evaluate` is vmapped over an ensemble of steppers
    (`evaluate_ensemble`, or `eqx.filter_vmap(evaluate)`); a single stepper has none. Step `s`
    (`1, ..., steps`) is index `s - 1` of every `steps` axis.

    **Fields:**

    - `names`: the metrics' names, in order (static).
    - `higher_is_better`: per metric, whether it is a similarity (static).
    - `values`: `(*members, metrics, samples, steps)`: every test trajectory's metric.
    - `curves`: `(*members, metrics, steps)`: the mean over the test trajectories (APEBench's
        `mean_*` metrics).
    - `gmean`: `(*members, metrics)`: the geometric mean of `curves` over the first
        `aggregate_steps` steps (APEBench's aggregate of errors; `nan` for a curve with
        negative values).
    - `mean`: `(*members, metrics)`: the arithmetic mean over the same steps (the aggregate
        of similarities such as the correlation).
    - `correlation`: `(*members, steps)`: the mean correlation (always computed).
    - `correlation_time`: `(*members,)`: the first step whose mean correlation is below
        `threshold`; `steps + 1` when it never is.
    - `aggregate_steps`, `threshold`: the aggregation settings (static).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    higher_is_better: tuple[bool, ...] = eqx.field(static=True)
    values: Float[Array, "*members metrics samples steps"]
    curves: Float[Array, "*members metrics steps"]
    gmean: Float[Array, "*members metrics"]
    mean: Float[Array, "*members metrics"]
    correlation: Float[Array, "*members steps"]
    correlation_time: Int[Array, "*members"]
    aggregate_steps: int = eqx.field(static=True)
    threshold: float = eqx.field(static=True)

    @property
    def num_steps(self) -> int:
        return int(self.curves.shape[-1])

    @property
    def member_shape(self) -> tuple[int, ...]:
        """The leading ensemble axes (`()` for one stepper)."""
        return tuple(self.curves.shape[:-2])

    def index(self, name: str) -> int:
        """The position of metric `name`."""
        if name not in self.names:
            raise ValueError(f"`name` must be one of the metrics {self.names}, got {name!r}.")
        return self.names.index(name)

    def curve(self, name: str) -> Float[Array, "*members steps"]:
        """The mean curve of metric `name`, `(*members, steps)`."""
        return self.curves[..., self.index(name), :]

    def summary(self) -> list[dict]:
        """One row per member (flattened over the ensemble axes): `member`, the aggregate of
        every metric over the first `aggregate_steps` steps (`{name}_gmean` for errors,
        `{name}_mean` for similarities) and the `correlation_time`."""
        count = int(np.prod(self.member_shape, dtype=int))
        gmean = np.asarray(self.gmean).reshape(count, -1)
        mean = np.asarray(self.mean).reshape(count, -1)
        time = np.asarray(self.correlation_time).reshape(count)
        rows = []
        for i in range(count):
            row: dict = {"member": i}
            for j, (name, higher) in enumerate(zip(self.names, self.higher_is_better)):
                if higher:
                    row[f"{name}_mean"] = float(mean[i, j])
                else:
                    row[f"{name}_gmean"] = float(gmean[i, j])
            row["correlation_time"] = int(time[i])
            rows.append(row)
        return rows

    def rows(self) -> list[dict]:
        """The curves in long ("tidy") form: one row per member, metric and step, with the
        columns `member`, `metric`, `step` and `value`."""
        count = int(np.prod(self.member_shape, dtype=int))
        curves = np.asarray(self.curves).reshape(count, len(self.names), self.num_steps)
        return [
            {"member": i, "metric": name, "step": s + 1, "value": float(curves[i, j, s])}
            for i in range(count)
            for j, name in enumerate(self.names)
            for s in range(self.num_steps)
        ]

    def spread(self) -> dict[str, dict[str, float]]:
        """Per aggregate column of `summary()`: the `median`, `min` and `max` over members."""
        rows = self.summary()
        return {
            column: {
                "median": float(np.median([r[column] for r in rows])),
                "min": float(np.min([r[column] for r in rows])),
                "max": float(np.max([r[column] for r in rows])),
            }
            for column in rows[0]
            if column != "member"
        }

    def table(self) -> str:
        """`summary()` as an aligned text table, with the spread over members (median, min,
        max) below when there are several."""
        rows = self.summary()
        extra = []
        if len(rows) > 1:
            spread = self.spread()
            for stat in ("median", "min", "max"):
                extra.append({"member": stat, **{c: v[stat] for c, v in spread.items()}})
        return text_table(rows + extra)

    def to_pandas(self, kind: str = "summary"):
        """`summary()` (`kind="summary"`) or `rows()` (`kind="curves"`) as a pandas
        `DataFrame`. **Raises:** `ImportError` when pandas is not installed (`table()` and
        `print(evaluation)` need no pandas)."""
        if kind not in ("summary", "curves"):
            raise ValueError(f"`kind` must be 'summary' or 'curves', got {kind!r}.")
        return pandas_frame(self.summary() if kind == "summary" else self.rows())

    def __str__(self) -> str:
        return self.table()


def _check_trajectories(test_trajectories) -> Array:
    shape = getattr(test_trajectories, "shape", None)
    if shape is None or len(shape) < 4 or shape[1] < 2:
        raise ValueError(
            "`test_trajectories` must be reference trajectories of shape (samples, time, "
            "channels, *spatial) with at least 2 time levels (the first the initial condition), "
            f"got shape {shape}."
        )
    data = jnp.asarray(test_trajectories)
    if not jnp.issubdtype(data.dtype, jnp.floating):
        raise TypeError(
            f"`test_trajectories` must hold floating-point states, got dtype {data.dtype}."
        )
    return data


def _check_stepper(stepper: Callable, u0: Array) -> None:
    if not callable(stepper):
        raise TypeError(f"`stepper` must be callable, got {type(stepper).__name__}.")
    one = jax.ShapeDtypeStruct(u0.shape[1:], u0.dtype)
    out = eqx.filter_eval_shape(stepper, one)
    if getattr(out, "shape", None) != one.shape or getattr(out, "dtype", None) != one.dtype:
        got = (getattr(out, "shape", None), getattr(out, "dtype", None))
        raise ValueError(
            f"`stepper` must map one state {one.shape} of dtype {one.dtype} to a state of the "
            f"same shape and dtype (one sample; batches are vmapped), got {got}."
        )


def _steps(num_steps, aggregate_steps, available: int) -> tuple[int, int]:
    steps = available if num_steps is None else check_int("num_steps", num_steps)
    if steps > available:
        raise ValueError(
            f"`num_steps` must be at most the {available} steps `test_trajectories` holds after "
            f"the initial condition, got {steps}."
        )
    if aggregate_steps is None:
        return steps, min(AGGREGATE_STEPS, steps)
    check_int("aggregate_steps", aggregate_steps)
    if aggregate_steps > steps:
        raise ValueError(
            f"`aggregate_steps` must be at most `num_steps` ({steps}), got {aggregate_steps}."
        )
    return steps, aggregate_steps


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise TypeError(f"`threshold` must be a float, got {type(threshold).__name__}.")
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"`threshold` must be a correlation in [-1, 1], got {threshold}.")
    return float(threshold)


def _run(stepper, data, metrics, steps: int, aggregate: int, threshold: float) -> Evaluation:
    correlation = Correlation()

    def one(p, t):
        return jnp.stack([m(p, t) for m in metrics]), correlation(p, t)

    def body(u, level):
        u = jax.vmap(stepper)(u)
        target = lax.dynamic_index_in_dim(data, level, axis=1, keepdims=False)
        return u, jax.vmap(one)(u, target)

    _, (values, corr) = lax.scan(body, data[:, 0], jnp.arange(1, steps + 1))
    values = jnp.transpose(values, (2, 1, 0))  # (steps, samples, metrics) -> (m, s, t)
    curves = jnp.mean(values, axis=1)
    window = curves[:, :aggregate]
    gmean = jnp.exp(jnp.mean(jnp.log(window), axis=-1))
    corr = jnp.mean(corr, axis=1)
    below = corr < jnp.asarray(threshold, corr.dtype)
    time = jnp.where(jnp.any(below), jnp.argmax(below) + 1, steps + 1).astype(jnp.int32)
    return Evaluation(
        names=tuple(m.name for m in metrics),
        higher_is_better=tuple(bool(m.higher_is_better) for m in metrics),
        values=values,
        curves=curves,
        gmean=gmean,
        mean=jnp.mean(window, axis=-1),
        correlation=corr,
        correlation_time=time,
        aggregate_steps=aggregate,
        threshold=threshold,
    )


def evaluate(
    stepper: Callable,
    test_trajectories: Float[Array, "samples time channels *spatial"],
    *,
    metrics: AbstractStateMetric | Sequence[AbstractStateMetric] = DEFAULT_METRICS,
    num_steps: int | None = None,
    aggregate_steps: int | None = None,
    threshold: float = 0.8,
    canonical_convolutions: bool | None = None,
) -> Evaluation:
    """Roll `stepper` out from the initial conditions of `test_trajectories` and compare every
    step with the reference, as APEBench evaluates an emulator.

    The rollout of all test trajectories runs in one compiled `lax.scan` that computes the
    metrics step by step (the predicted trajectories are never stored). Traceable: vmap it
    over an ensemble of steppers (`evaluate_ensemble`).

    **Arguments:**

    - `stepper`: `u -> u_next` on one sample (a network, a reference or exponax stepper).
    - `test_trajectories`: `(samples, time, channels, *spatial)`, the first time level the
        initial condition.
    - `metrics`: a metric or a sequence of metrics with unique names (default: nRMSE).
    - `num_steps`: rollout steps (default: all `time - 1` the data holds).
    - `aggregate_steps`: the geometric mean covers steps `1..aggregate_steps` (default:
        `min(100, num_steps)`, APEBench's `gmean` over the first 100).
    - `threshold`: the correlation below which `correlation_time` is reached.
    - `canonical_convolutions`: as in `Trainer` (`None`: on CPU when the stepper convolves).

    **Returns:** an `Evaluation` (`print(evaluation)` shows the table).
    """
    data = _check_trajectories(test_trajectories)
    metrics = check_metrics(metrics)
    steps, aggregate = _steps(num_steps, aggregate_steps, data.shape[1] - 1)
    threshold = _check_threshold(threshold)
    if canonical_convolutions not in (None, True, False):
        raise ValueError(
            f"`canonical_convolutions` must be True, False or None, got {canonical_convolutions!r}."
        )
    _check_stepper(stepper, data[:, 0])
    canonical = wants_canonical(canonical_convolutions, stepper, data[0, 0])
    return backend_call(
        _run, stepper, data, metrics, steps, aggregate, threshold, canonical=canonical
    )


def evaluate_ensemble(
    steppers, test_trajectories: Float[Array, "samples time channels *spatial"], **kwargs
) -> Evaluation:
    """`evaluate` vmapped over an ensemble: `steppers` holds every member's arrays stacked on
    a leading axis (a sweep's `result.results.model`, or `eqx.filter_vmap(init)(keys)`).
    Keyword arguments as in `evaluate`.

    **Returns:** an `Evaluation` with one leading `members` axis; `print` shows each member and
    the spread (median, min, max).
    """
    leaves = [x for x in jax.tree_util.tree_leaves(steppers) if eqx.is_array(x)]
    if not leaves or any(x.ndim == 0 for x in leaves):
        raise ValueError(
            "`steppers` must hold the members' arrays stacked on a leading axis (e.g. a "
            "sweep's `result.results.model`), got a PyTree with a scalar or no array leaf."
        )
    count = {x.shape[0] for x in leaves}
    if len(count) != 1:
        raise ValueError(
            f"`steppers` must stack every array on one leading members axis, got leading sizes "
            f"{sorted(count)}."
        )
    data = _check_trajectories(test_trajectories)
    return eqx.filter_vmap(lambda s: evaluate(s, data, **kwargs))(steppers)
