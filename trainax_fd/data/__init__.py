"""Lazy rollout windows over PyTree trajectories and epoch permutations with fixed batch
shapes."""

from ._windows import Windows as Windows, epoch_batches as epoch_batches
