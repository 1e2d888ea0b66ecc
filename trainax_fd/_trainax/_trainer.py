"""trainax's trainers (`tx.trainer.*`) over `trainax_fd.trainers.Trainer`."""

import equinox as eqx
import jax.numpy as jnp

from .. import trainers
from ._callback import aux_history, flat
from ._configuration import (
    BaseConfiguration,
    DivertedChainBranchOne,
    Residuum,
    Supervised,
)
from ._loss import MSELoss

_MSE = MSELoss()


class GeneralTrainer(eqx.Module):
    """A trainax trainer: `trainer(stepper, key)` returns `(stepper, loss_history)` (plus the
    auxiliary history with a callback), as trainax 0.0.2, and runs compiled
    (`trainax_fd.trainers.Trainer` with trainax's batching, so results agree with trainax).

    `trainer.native` is the underlying `Trainer`: call it to get a full `TrainResult`.
    """

    native: trainers.Trainer
    loss_configuration: BaseConfiguration
    ref_stepper: object
    residuum_fn: object
    callback_fn: object
    num_minibatches: int = eqx.field(static=True)

    def __init__(
        self,
        data_trajectories,
        loss_configuration: BaseConfiguration,
        *,
        window_length: int,
        do_sub_stacking: bool = True,
        ref_stepper=None,
        residuum_fn=None,
        optimizer,
        num_minibatches: int,
        batch_size: int,
        callback_fn=None,
    ):
        config = loss_configuration.native(ref_stepper, residuum_fn)
        callbacks = [m for c in flat(callback_fn) for m in c.to_native(ref_stepper, residuum_fn)]
        self.native = trainers.Trainer(
            data_trajectories,
            config,
            optimizer,
            num_steps=num_minibatches,
            batch_size=batch_size,
            starts="all" if do_sub_stacking else "initial",
            window_length=window_length,
            callbacks=callbacks,
            batching="trainax",
            reduction=loss_configuration.batch_reduction,
        )
        self.loss_configuration, self.callback_fn = loss_configuration, callback_fn
        self.ref_stepper, self.residuum_fn = ref_stepper, residuum_fn
        self.num_minibatches = num_minibatches

    def full_loss(self, stepper):
        """The loss over all windows (evaluated in chunks)."""
        return self.native.full_loss(stepper)

    def __call__(
        self,
        stepper,
        key,
        opt_state=None,
        *,
        return_loss_history: bool = True,
        record_loss_every: int = 1,
        spawn_tqdm: bool = True,
    ):
        """Train; returns as trainax: `(stepper, loss_history[, aux_history])`, or without the
        loss history when `return_loss_history=False`."""
        result = self.native.init(stepper, key=key)
        if opt_state is not None:
            result = eqx.tree_at(lambda r: r.opt_state, result, opt_state)
        result = self.native(result, progress=spawn_tqdm)
        out = [result.stepper]
        if return_loss_history:
            out.append(jnp.asarray(result.loss_history[::record_loss_every]))
        if self.callback_fn is not None:
            out.append(aux_history(self.callback_fn, result, self.num_minibatches))
        return out[0] if len(out) == 1 else tuple(out)


def SupervisedTrainer(
    data_trajectories,
    *,
    ref_stepper=None,
    residuum_fn=None,
    optimizer,
    callback_fn=None,
    num_training_steps: int,
    batch_size: int,
    num_rollout_steps: int = 1,
    time_level_loss=_MSE,
    cut_bptt: bool = False,
    cut_bptt_every: int = 1,
    time_level_weights=None,
    do_sub_stacking: bool = True,
) -> GeneralTrainer:
    """trainax's supervised rollout trainer (`num_rollout_steps=1`: one-step training)."""
    config = Supervised(
        num_rollout_steps,
        time_level_loss=time_level_loss,
        cut_bptt=cut_bptt,
        cut_bptt_every=cut_bptt_every,
        time_level_weights=time_level_weights,
    )
    return GeneralTrainer(
        data_trajectories, config, window_length=num_rollout_steps + 1,
        do_sub_stacking=do_sub_stacking, ref_stepper=ref_stepper, residuum_fn=residuum_fn,
        optimizer=optimizer, num_minibatches=num_training_steps, batch_size=batch_size,
        callback_fn=callback_fn,
    )  # fmt: skip


def DivertedChainBranchOneTrainer(
    data_trajectories,
    *,
    ref_stepper,
    residuum_fn=None,
    optimizer,
    callback_fn=None,
    num_training_steps: int,
    batch_size: int,
    num_rollout_steps: int = 1,
    time_level_loss=_MSE,
    cut_bptt: bool = False,
    cut_bptt_every: int = 1,
    cut_div_chain: bool = False,
    time_level_weights=None,
    do_sub_stacking: bool = True,
) -> GeneralTrainer:
    """trainax's diverted-chain trainer with branches of one step (needs `ref_stepper`)."""
    config = DivertedChainBranchOne(
        num_rollout_steps,
        time_level_loss=time_level_loss,
        cut_bptt=cut_bptt,
        cut_bptt_every=cut_bptt_every,
        cut_div_chain=cut_div_chain,
        time_level_weights=time_level_weights,
    )
    return GeneralTrainer(
        data_trajectories, config, window_length=num_rollout_steps + 1,
        do_sub_stacking=do_sub_stacking, ref_stepper=ref_stepper, residuum_fn=residuum_fn,
        optimizer=optimizer, num_minibatches=num_training_steps, batch_size=batch_size,
        callback_fn=callback_fn,
    )  # fmt: skip


def ResiduumTrainer(
    data_trajectories,
    *,
    ref_stepper=None,
    residuum_fn,
    optimizer,
    callback_fn=None,
    num_training_steps: int,
    batch_size: int,
    num_rollout_steps: int = 1,
    time_level_loss=_MSE,
    cut_bptt: bool = False,
    cut_bptt_every: int = 1,
    cut_prev: bool = False,
    cut_next: bool = False,
    time_level_weights=None,
    do_sub_stacking: bool = True,
) -> GeneralTrainer:
    """trainax's residuum trainer (needs `residuum_fn(u_next, u_prev)`)."""
    config = Residuum(
        num_rollout_steps,
        time_level_loss=time_level_loss,
        cut_bptt=cut_bptt,
        cut_bptt_every=cut_bptt_every,
        cut_prev=cut_prev,
        cut_next=cut_next,
        time_level_weights=time_level_weights,
    )
    return GeneralTrainer(
        data_trajectories, config, window_length=num_rollout_steps + 1,
        do_sub_stacking=do_sub_stacking, ref_stepper=ref_stepper, residuum_fn=residuum_fn,
        optimizer=optimizer, num_minibatches=num_training_steps, batch_size=batch_size,
        callback_fn=callback_fn,
    )  # fmt: skip
