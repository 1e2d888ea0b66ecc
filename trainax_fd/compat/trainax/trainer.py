"""trainax's trainers (`tx.trainer.*`) over `trainax_fd.trainers.Trainer`."""

from ._trainer import (
    DivertedChainBranchOneTrainer as DivertedChainBranchOneTrainer,
    ResiduumTrainer as ResiduumTrainer,
    SupervisedTrainer as SupervisedTrainer,
)
