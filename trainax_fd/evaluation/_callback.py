"""A validation rollout recorded inside the compiled training loop."""

from collections.abc import Sequence

import equinox as eqx
from jaxtyping import Array, Float

from .._checks import check_int
from ..trainers import AbstractMetric
from ._evaluate import _check_threshold, _check_trajectories, _run, _steps
from ._metrics import DEFAULT_METRICS, AbstractStateMetric, check_metrics, check_name


class ValidationRollout(AbstractMetric):
    """`evaluate` on validation trajectories every `every` steps, inside the compiled loop.

    Records `{"gmean": (metrics,), "curves": (metrics, steps), "correlation_time": ()}` of the
    model before the step's update; read them from `result.metrics[name]`, each with a leading
    records axis (record `r` is taken before step `r * every`). The rollout runs under the
    trainer's backend settings, in the chunk's program. A model with `eqx.nn.State` rolls out
    in inference mode, `model(u, state)[0]` a step.

    **Arguments:**

    - `test_trajectories`: `(samples, time, channels, *spatial)` validation data (kept as
        array leaves of the metric: passed to the compiled chunk, never baked into it).
    - `every`: record every `every` steps, an int `>= 1`.
    - `metrics`, `num_steps`, `aggregate_steps`, `threshold`: as in `evaluate`.
    - `name`: the key in `result.metrics` (default `"validation"`).
    """

    data: Float[Array, "samples time channels *spatial"]
    metrics: tuple[AbstractStateMetric, ...]
    every: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    aggregate_steps: int = eqx.field(static=True)
    threshold: float = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(
        self,
        test_trajectories: Float[Array, "samples time channels *spatial"],
        every: int,
        *,
        metrics: AbstractStateMetric | Sequence[AbstractStateMetric] = DEFAULT_METRICS,
        num_steps: int | None = None,
        aggregate_steps: int | None = None,
        threshold: float = 0.8,
        name: str = "validation",
    ):
        self.data = _check_trajectories(test_trajectories)
        self.every = check_int("every", every)
        self.metrics = check_metrics(metrics)
        self.num_steps, self.aggregate_steps = _steps(
            num_steps, aggregate_steps, self.data.shape[1] - 1
        )
        self.threshold = _check_threshold(threshold)
        self.name = check_name(name)

    def __call__(self, step, stepper, batch, trainer, state=None):
        if state is not None:  # batch norm: the running statistics, as at evaluation
            model = eqx.nn.inference_mode(stepper)

            def stepper(u):
                return model(u, state)[0]

        result = _run(
            stepper, self.data, self.metrics, self.num_steps, self.aggregate_steps,
            self.threshold,
        )  # fmt: skip
        return {
            "gmean": result.gmean,
            "curves": result.curves,
            "correlation_time": result.correlation_time,
        }
