"""trainax's trainers (`tx.GeneralTrainer`, `tx.trainer.*`) over `trainax_fd.trainers.Trainer`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ... import trainers
from ..._checks import check_int
from ...data import TrainaxBatching
from ._callback import aux_history, flat
from ._configuration import BaseConfiguration, DivertedChainBranchOne, Residuum, Supervised
from ._loss import MSELoss
from ._mixer import TrajectorySubStacker

_MSE = MSELoss()


class GeneralTrainer(eqx.Module):
    """trainax's trainer: `GeneralTrainer(trajectory_sub_stacker, loss_configuration, *,
    ref_stepper, residuum_fn, optimizer, num_minibatches, batch_size, callback_fn)`;
    `trainer(stepper, key)` returns `(stepper, loss_history)` (plus the auxiliary history with
    a callback), as trainax 0.0.2.

    It trains compiled: `native` is the `trainax_fd.trainers.Trainer` it runs (built here,
    with `TrainaxBatching`, so it sees trainax's very batches); call `native` for a full
    `TrainResult`. Unlike trainax, a non-finite loss stops training with a
    `trainax_fd.trainers.NonFiniteLossError`, and callbacks run inside the compiled loop (they
    must be traceable and return arrays).
    """

    trajectory_sub_stacker: TrajectorySubStacker
    loss_configuration: BaseConfiguration
    ref_stepper: object
    residuum_fn: object
    optimizer: optax.GradientTransformation
    num_minibatches: int = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    callback_fn: object
    native: trainers.Trainer

    def __init__(
        self,
        trajectory_sub_stacker: TrajectorySubStacker,
        loss_configuration: BaseConfiguration,
        *,
        ref_stepper=None,
        residuum_fn=None,
        optimizer: optax.GradientTransformation,
        num_minibatches: int,
        batch_size: int,
        callback_fn=None,
    ):
        if not isinstance(trajectory_sub_stacker, TrajectorySubStacker):
            raise TypeError(
                "`trajectory_sub_stacker` must be a `tx.TrajectorySubStacker`, got "
                f"{type(trajectory_sub_stacker).__name__}."
            )
        check_int("num_minibatches", num_minibatches)
        check_int("batch_size", batch_size)
        if not isinstance(loss_configuration, BaseConfiguration):
            raise TypeError(
                "`loss_configuration` must be a trainax configuration (`tx.configuration.*`), "
                f"got {type(loss_configuration).__name__}."
            )
        self.native = trainers.Trainer(
            trajectory_sub_stacker.windows,
            loss_configuration.objective(ref_stepper, residuum_fn),
            optimizer,
            num_steps=num_minibatches,
            batch_size=batch_size,
            batching=TrainaxBatching(),
            callbacks=[m for c in flat(callback_fn) for m in c.to_native()],
        )
        self.trajectory_sub_stacker = trajectory_sub_stacker
        self.loss_configuration = loss_configuration
        self.ref_stepper, self.residuum_fn = ref_stepper, residuum_fn
        self.optimizer = optimizer
        self.num_minibatches, self.batch_size = num_minibatches, batch_size
        self.callback_fn = callback_fn

    def full_loss(self, stepper):
        """The loss over all windows, as one batch (compiled; evaluated in chunks of windows;
        `eqx.filter_vmap` it over a batch of steppers)."""
        return self.native.full_loss(stepper)

    def step_fn(self, stepper, opt_state, data):
        """One update on the batch `data`: `(stepper, opt_state, loss)`."""
        loss, grad = eqx.filter_value_and_grad(
            lambda s: self.loss_configuration(
                s, data, ref_stepper=self.ref_stepper, residuum_fn=self.residuum_fn
            )
        )(stepper)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and counts
            updates, opt_state = self.optimizer.update(
                grad, opt_state, eqx.filter(stepper, eqx.is_array)
            )
        return eqx.apply_updates(stepper, updates), opt_state, loss

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
        """Train; returns as trainax: `stepper`, then `loss_history` (every
        `record_loss_every`-th loss) unless `return_loss_history=False`, then the auxiliary
        history (one dict per update) when there is a callback."""
        result = self.native.init(stepper, key=key)
        if opt_state is not None:
            result = eqx.tree_at(lambda r: r.opt_state, result, opt_state)
        result = self.native(result, progress=spawn_tqdm)
        out = [result.model]
        if return_loss_history:
            out.append(jnp.asarray(result.loss_history[::record_loss_every]))
        if self.callback_fn is not None:
            out.append(aux_history(self.callback_fn, result, self.num_minibatches))
        return out[0] if len(out) == 1 else tuple(out)


def _trainer(data, config, ic_only, do_sub_stacking, **kwargs) -> GeneralTrainer:
    """The trainer functions' common body; errors name trainax's arguments."""
    check_int("num_training_steps", kwargs["num_minibatches"])
    check_int("batch_size", kwargs["batch_size"])
    window_length = config.num_rollout_steps + 1
    times = [x.shape[1] for x in jax.tree_util.tree_leaves(data) if getattr(x, "ndim", 0) >= 2]
    if times and window_length > min(times):
        raise ValueError(
            f"`num_rollout_steps` ({config.num_rollout_steps}) needs windows of {window_length} "
            f"time levels, but `data_trajectories` has {min(times)}."
        )
    stacker = TrajectorySubStacker(
        data, window_length, do_sub_stacking=do_sub_stacking, only_store_ic=ic_only
    )
    return GeneralTrainer(stacker, config, **kwargs)


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
    return _trainer(
        data_trajectories, config, False, do_sub_stacking, ref_stepper=ref_stepper,
        residuum_fn=residuum_fn, optimizer=optimizer, num_minibatches=num_training_steps,
        batch_size=batch_size, callback_fn=callback_fn,
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
    """trainax's diverted-chain trainer with branches of one step (needs `ref_stepper`; only
    the initial conditions of the windows are kept)."""
    config = DivertedChainBranchOne(
        num_rollout_steps,
        time_level_loss=time_level_loss,
        cut_bptt=cut_bptt,
        cut_bptt_every=cut_bptt_every,
        cut_div_chain=cut_div_chain,
        time_level_weights=time_level_weights,
    )
    return _trainer(
        data_trajectories, config, True, do_sub_stacking, ref_stepper=ref_stepper,
        residuum_fn=residuum_fn, optimizer=optimizer, num_minibatches=num_training_steps,
        batch_size=batch_size, callback_fn=callback_fn,
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
    return _trainer(
        data_trajectories, config, False, do_sub_stacking, ref_stepper=ref_stepper,
        residuum_fn=residuum_fn, optimizer=optimizer, num_minibatches=num_training_steps,
        batch_size=batch_size, callback_fn=callback_fn,
    )  # fmt: skip
