"""Rollout-length curricula in one call: every stage continues the last stage's result."""

from collections.abc import Callable, Sequence

import optax

from .._checks import check_int
from ..configurations import AbstractConfiguration, Supervised
from ._result import TrainResult
from ._trainer import Trainer


def _stage_steps(num_steps, stages: int) -> tuple[int, ...]:
    if isinstance(num_steps, int) and not isinstance(num_steps, bool):
        return (check_int("num_steps", num_steps),) * stages
    steps = tuple(num_steps) if isinstance(num_steps, Sequence) else ()
    if len(steps) != stages:
        raise ValueError(
            f"`num_steps` must be an int (steps of every stage) or one int per stage ({stages}), "
            f"got {num_steps!r}."
        )
    return tuple(check_int("num_steps", n) for n in steps)


def curriculum_trainers(
    data,
    optimizer: optax.GradientTransformation,
    *,
    rollout_steps: Sequence[int],
    num_steps: int | Sequence[int],
    configuration: Callable[[int], AbstractConfiguration] = Supervised,
    done: int = 0,
    **trainer_kwargs,
) -> tuple[Trainer, ...]:
    """The `Trainer` of every stage of `curriculum` (arguments as there; `done`: steps taken
    before the first stage). Stage `i` trains with `configuration(rollout_steps[i])` up to
    `done + sum(num_steps[:i + 1])` steps."""
    lengths = tuple(rollout_steps) if isinstance(rollout_steps, Sequence) else ()
    if not lengths:
        raise ValueError(
            f"`rollout_steps` must be a non-empty sequence of ints >= 1 (e.g. `range(1, 6)`), "
            f"got {rollout_steps!r}."
        )
    for n in lengths:
        check_int("rollout_steps", n)
    if not callable(configuration):
        raise TypeError(
            "`configuration` must be a function `num_rollout_steps -> configuration` (e.g. "
            f"`Supervised`), got {type(configuration).__name__}."
        )
    steps = _stage_steps(num_steps, len(lengths))
    trainers, stop = [], done
    for n, count in zip(lengths, steps):
        stop += count
        stage = configuration(n)
        if not isinstance(stage, AbstractConfiguration):
            raise TypeError(
                f"`configuration({n})` must return a configuration (e.g. `Supervised({n})`), "
                f"got {type(stage).__name__}."
            )
        trainers.append(Trainer(data, stage, optimizer, num_steps=stop, **trainer_kwargs))
    return tuple(trainers)


def curriculum(
    data,
    optimizer: optax.GradientTransformation,
    model,
    *,
    rollout_steps: Sequence[int],
    num_steps: int | Sequence[int],
    key=None,
    configuration: Callable[[int], AbstractConfiguration] = Supervised,
    state=None,
    progress: bool = True,
    **trainer_kwargs,
) -> TrainResult:
    """Train with growing rollouts (`1 -> 2 -> ... -> K` steps) in one call.

    Stage `i` trains `num_steps[i]` steps with `configuration(rollout_steps[i])`, continuing
    the previous stage's `TrainResult` (the model, the optimizer state, the data key and the
    histories carry over: the core's continuation, `Trainer(...)(result)`). Each stage is its
    own compiled program.

    **Arguments:**

    - `data`, `optimizer`: as in `Trainer` (one optimizer for every stage).
    - `model`: the model to train, or a `TrainResult` to continue (then no `key`/`state`).
    - `rollout_steps`: the rollout length of each stage, e.g. `range(1, 6)`.
    - `num_steps`: optimizer steps of every stage (an int), or one int per stage.
    - `key`: the run's `jax.random` key (keyword-only; `None` when continuing).
    - `configuration`: `num_rollout_steps -> configuration` (default `Supervised`; e.g.
        `functools.partial(DivertedChain, reference_stepper)`).
    - `state`: the model's `eqx.nn.State`, or `None`.
    - `progress`: a progress bar per stage.
    - `trainer_kwargs`: any other `Trainer` argument (`batch_size`, `callbacks`,
        `trainable`, ...), the same for every stage.

    **Returns:** the `TrainResult` after the last stage; its `loss_history` holds every stage's
    steps in order.

    !!! example
        ```python
        result = curriculum(data, optax.adam(1e-3), model, key=key, rollout_steps=range(1, 4),
                            num_steps=1000, batch_size=32)  # 1000 steps each of rollout 1, 2, 3
        ```
    """
    done = int(model.step) if isinstance(model, TrainResult) else 0
    trainers = curriculum_trainers(
        data, optimizer, rollout_steps=rollout_steps, num_steps=num_steps,
        configuration=configuration, done=done, **trainer_kwargs,
    )  # fmt: skip
    result = trainers[0](model, key=key, state=state, progress=progress)
    for trainer in trainers[1:]:
        result = trainer(result, progress=progress)
    return result
