"""trainax's callbacks (`tx.callback.*`), recorded inside the compiled loop."""

from ._callback import (
    BaseCallback as BaseCallback,
    CompositeCallback as CompositeCallback,
    GetNetwork as GetNetwork,
    GradNorm as GradNorm,
    Loss as Loss,
    SaveNetwork as SaveNetwork,
    WeightNorm as WeightNorm,
)
