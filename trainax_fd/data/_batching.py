"""Batching strategies: how the examples of a finite data set are cut into batches per epoch."""

import abc
import math

import equinox as eqx
import jax
from jax import lax
from jaxtyping import Array


class AbstractBatching(eqx.Module):
    """How `num_examples` examples become batches of `batch_size`, epoch after epoch.

    Every epoch is a random permutation of the examples drawn from that epoch's key; a
    strategy fixes the number of batches per epoch, the size of the last one and how an
    epoch's key follows from the run's key. Keys are functions of `(key, epoch)` alone, so a
    training resumed at any step draws the same batches.
    """

    @abc.abstractmethod
    def batches_per_epoch(self, num_examples: int, batch_size: int) -> int:
        """Batches in one epoch."""

    @abc.abstractmethod
    def last_batch_size(self, num_examples: int, batch_size: int) -> int:
        """Examples in the last batch of an epoch (`batch_size` unless it is short)."""

    @abc.abstractmethod
    def epoch_key(self, key: Array, epoch) -> Array:
        """The permutation key of epoch `epoch` (traced int) from the run's `key`."""

    @abc.abstractmethod
    def next_epoch_key(self, key: Array, epoch_key: Array, epoch) -> Array:
        """The key of `epoch` given the previous epoch's key (cheaper than `epoch_key`)."""


class DropRemainder(AbstractBatching):
    """Each epoch a fresh permutation from `fold_in(key, epoch)`, cut into
    `num_examples // batch_size` equal batches; the remainder (different examples each epoch)
    is dropped, so every batch has one shape."""

    def batches_per_epoch(self, num_examples, batch_size):
        return num_examples // batch_size

    def last_batch_size(self, num_examples, batch_size):
        return batch_size

    def epoch_key(self, key, epoch):
        return jax.random.fold_in(key, epoch)

    def next_epoch_key(self, key, epoch_key, epoch):
        return jax.random.fold_in(key, epoch)


class TrainaxBatching(AbstractBatching):
    """trainax's batching: epoch `e + 1`'s key is `split(key_e)[0]` and the last batch of an
    epoch is short (`num_examples % batch_size` examples), so a training sees the very batches
    trainax's `PermutationMixer` draws. The short batch runs in its own branch of the compiled
    step (no recompilation)."""

    def batches_per_epoch(self, num_examples, batch_size):
        return math.ceil(num_examples / batch_size)

    def last_batch_size(self, num_examples, batch_size):
        return num_examples - (self.batches_per_epoch(num_examples, batch_size) - 1) * batch_size

    def epoch_key(self, key, epoch):
        return lax.fori_loop(0, epoch, lambda _, k: jax.random.split(k)[0], key)

    def next_epoch_key(self, key, epoch_key, epoch):
        return jax.random.split(epoch_key)[0]


#: The default strategy (a stateless Module, safe to share).
DROP_REMAINDER = DropRemainder()
