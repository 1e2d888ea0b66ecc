"""trainax 0.0.2's public surface as a thin layer over `trainax_fd`'s own API.

`import trainax_fd.compat.trainax as tx` is the only change trainax code needs: the same
configurations, losses, callbacks and trainers (`tx.trainer.SupervisedTrainer(...)(stepper,
key)`), trained compiled by `trainax_fd.trainers.Trainer` on trainax's very batches.
"""

from . import (
    callback as callback,
    configuration as configuration,
    loss as loss,
    sample_data as sample_data,
    trainer as trainer,
)
from ._mixer import (
    PermutationMixer as PermutationMixer,
    TrajectorySubStacker as TrajectorySubStacker,
)
from ._trainer import GeneralTrainer as GeneralTrainer
