"""The compiled training core: the `Trainer`, its results, callbacks and checkpoints."""

from ._callbacks import (
    AbstractHostCallback as AbstractHostCallback,
    AbstractMetric as AbstractMetric,
    Checkpoint as Checkpoint,
    GradNorm as GradNorm,
    KeepStepper as KeepStepper,
    LossMetric as LossMetric,
    SaveStepper as SaveStepper,
    WeightNorm as WeightNorm,
)
from ._curriculum import (
    curriculum as curriculum,
    curriculum_trainers as curriculum_trainers,
)
from ._result import (
    NonFiniteLossError as NonFiniteLossError,
    TrainResult as TrainResult,
    load_result as load_result,
    save_result as save_result,
)
from ._trainer import Trainer as Trainer
