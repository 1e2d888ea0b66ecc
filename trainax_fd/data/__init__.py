"""Data sources for the training loop: lazy rollout windows over trajectories, input→target
pairs, and samplers that draw fresh data at every step; batching strategies."""

from ._batching import (
    AbstractBatching as AbstractBatching,
    DropRemainder as DropRemainder,
    TrainaxBatching as TrainaxBatching,
)
from ._dataset import AbstractDataset as AbstractDataset
from ._pairs import Pairs as Pairs
from ._sources import (
    AbstractDataSource as AbstractDataSource,
    Fixed as Fixed,
    Sampler as Sampler,
    Shuffled as Shuffled,
)
from ._windows import Windows as Windows, epoch_batches as epoch_batches
