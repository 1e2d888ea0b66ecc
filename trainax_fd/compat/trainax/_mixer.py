"""trainax's `TrajectorySubStacker` and `PermutationMixer` over `trainax_fd.data`: lazy
windows instead of stacked copies, and the epoch permutations of `TrainaxBatching`."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Int, PyTree

from ..._checks import check_int, check_key, warn
from ...data import TrainaxBatching, Windows


class TrajectorySubStacker(eqx.Module):
    """trainax's windows of `sub_trajectory_len` time levels over `data_trajectories`
    `(samples, time, ...)`, numbered sample-major; `stacker(indices)` is the batch of windows
    `(len(indices), sub_trajectory_len, ...)`.

    Unlike trainax it copies nothing: the windows are a lazy `trainax_fd.data.Windows`
    (`windows`), gathered on demand; `data_sub_trajectories` builds all of them.

    **Arguments:** `data_trajectories`, `sub_trajectory_len`, `do_sub_stacking` (all window
    starts, or the first window of each trajectory only), `only_store_ic` (windows of the
    initial condition alone, `(…, 1, ...)`).
    """

    windows: Windows

    def __init__(
        self,
        data_trajectories: PyTree[Array],
        sub_trajectory_len: int,
        *,
        do_sub_stacking: bool = True,
        only_store_ic: bool = False,
    ):
        starts = "all" if do_sub_stacking else "initial"
        check_int("sub_trajectory_len", sub_trajectory_len)
        times = {
            getattr(x, "shape", (0, 0))[1:2] for x in jax.tree_util.tree_leaves(data_trajectories)
        }
        if any(t and sub_trajectory_len > t[0] for t in times):
            raise ValueError(
                f"`sub_trajectory_len` ({sub_trajectory_len}) must be at most the number of time "
                f"levels of `data_trajectories` ({min(t[0] for t in times if t)})."
            )
        windows = Windows(data_trajectories, sub_trajectory_len, starts=starts)
        if only_store_ic:  # the first level of each window: windows of one level
            last = windows.windows_per_sample
            first = jax.tree_util.tree_map(lambda x: x[:, :last], windows.trajectories)
            windows = Windows(first, 1)
        self.windows = windows

    @property
    def num_total_samples(self) -> int:
        """The number of windows."""
        return self.windows.num_windows

    @property
    def data_sub_trajectories(self) -> PyTree[Array]:
        """All windows, leaves `(num_total_samples, sub_trajectory_len, ...)` (built on access)."""
        return self.windows.gather(np.arange(self.num_total_samples, dtype=np.int32))

    def __call__(self, indices) -> PyTree[Array]:
        """The windows at `indices` (ints, an index array or a `slice`, as NumPy indexes)."""
        if not isinstance(indices, jax.Array):  # host indices: NumPy's rules (slices, negatives)
            indices = np.arange(self.num_total_samples, dtype=np.int32)[indices]
        shape = jnp.shape(indices)
        flat = self.windows.gather(jnp.reshape(indices, (-1,)))
        return jax.tree_util.tree_map(lambda x: x.reshape(*shape, *x.shape[1:]), flat)


@eqx.filter_jit
def _permutations(key, num_samples: int, num_epochs: int) -> Int[Array, "epochs samples"]:
    batching = TrainaxBatching()

    def epoch(epoch_key, e):
        perm = jax.random.permutation(epoch_key, num_samples).astype(jnp.int32)
        return batching.next_epoch_key(key, epoch_key, e + 1), perm

    return lax.scan(epoch, key, jnp.arange(num_epochs))[1]


class PermutationMixer(eqx.Module):
    """trainax's minibatch indices: epoch `e`'s permutation of `num_total_samples` drawn from
    key `e` (`key_(e+1) = split(key_e)[0]`, `TrainaxBatching`'s rule), cut into batches of
    `batch_size`, the last one of an epoch short. `mixer(i)` is the batch of update `i`.

    A `batch_size` above `num_total_samples` trains full-batch, with a warning.
    """

    num_total_samples: int = eqx.field(static=True)
    num_minibatches: int = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    num_minibatches_per_epoch: int = eqx.field(static=True)
    num_epochs: int = eqx.field(static=True)
    permutations: Int[Array, "num_epochs num_total_samples"]

    def __init__(self, num_total_samples: int, num_minibatches: int, batch_size: int, shuffle_key):
        check_int("num_total_samples", num_total_samples)
        check_int("num_minibatches", num_minibatches)
        check_int("batch_size", batch_size)
        check_key(shuffle_key, "shuffle_key")
        if batch_size > num_total_samples:
            warn(
                f"`batch_size` ({batch_size}) is larger than the number of samples "
                f"({num_total_samples}); training full-batch."
            )
            batch_size = num_total_samples
        per_epoch = TrainaxBatching().batches_per_epoch(num_total_samples, batch_size)
        self.num_total_samples, self.num_minibatches = num_total_samples, num_minibatches
        self.batch_size, self.num_minibatches_per_epoch = batch_size, per_epoch
        self.num_epochs = math.ceil(num_minibatches / per_epoch)
        self.permutations = _permutations(shuffle_key, num_total_samples, self.num_epochs)

    def __call__(self, i: int, *, return_info: bool = False):
        """The sample indices of update `i` (`(indices, (epoch, batch))` with `return_info`)."""
        if not 0 <= i < self.num_minibatches:
            raise ValueError(
                f"`i` must lie in [0, {self.num_minibatches}) (num_minibatches), got {i}."
            )
        epoch, batch = divmod(i, self.num_minibatches_per_epoch)
        start = batch * self.batch_size
        stop = min(start + self.batch_size, self.num_total_samples)
        indices = self.permutations[epoch, start:stop]
        return (indices, (epoch, batch)) if return_info else indices
