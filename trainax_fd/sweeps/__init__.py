"""Many trainings in one compiled run: seeds, optimizer hyperparameters, configurations."""

from ._sweep import SweepResult as SweepResult, sweep as sweep
