"""trainax's configurations (`tx.configuration.*`): batched, with `ref_stepper`/`residuum_fn`
given at call time, over `trainax_fd.configurations`."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import configurations as native
from ._loss import MSELoss, per_sample

_MSE = MSELoss()


class BaseConfiguration(eqx.Module):
    """A trainax configuration: `config(stepper, data, *, ref_stepper, residuum_fn)` on a batch
    `data` of windows `(batch, time, ...)`. `native` builds the `trainax_fd` configuration."""

    @abc.abstractmethod
    def native(self, ref_stepper=None, residuum_fn=None) -> native.AbstractConfiguration:
        """The equivalent `trainax_fd.configurations` configuration."""

    @property
    @abc.abstractmethod
    def batch_reduction(self):
        """How a batch of per-window level losses is reduced (the loss's `batch_reduction`)."""

    def __call__(self, stepper, data, *, ref_stepper=None, residuum_fn=None):
        config = self.native(ref_stepper, residuum_fn)
        losses = jax.vmap(config.level_losses, in_axes=(None, 0))(stepper, data)
        reduced = jax.vmap(self.batch_reduction, in_axes=1)(losses)
        return jnp.sum(config.weights.astype(reduced.dtype) * reduced)


class BatchOfOne(eqx.Module):
    """Calls a trainax `residuum_fn` (written for batches) on one sample as a batch of one."""

    fn: object

    def __call__(self, u_next, u_prev):
        one = jax.tree_util.tree_map(lambda x: x[None], (u_next, u_prev))
        return jax.tree_util.tree_map(lambda x: x[0], self.fn(*one))


class Supervised(BaseConfiguration):
    """trainax's `Supervised(num_rollout_steps, *, time_level_loss, cut_bptt, cut_bptt_every,
    time_level_weights)`."""

    num_rollout_steps: int = eqx.field(static=True)
    time_level_loss: object
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    time_level_weights: object

    def __init__(
        self,
        num_rollout_steps: int = 1,
        *,
        time_level_loss=_MSE,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        time_level_weights=None,
    ):
        self.num_rollout_steps, self.time_level_loss = num_rollout_steps, time_level_loss
        self.cut_bptt, self.cut_bptt_every = cut_bptt, cut_bptt_every
        self.time_level_weights = time_level_weights

    @property
    def batch_reduction(self):
        return per_sample(self.time_level_loss)[1]

    def native(self, ref_stepper=None, residuum_fn=None):
        return native.Supervised(
            self.num_rollout_steps,
            time_level_loss=per_sample(self.time_level_loss)[0],
            cut_bptt=self.cut_bptt,
            cut_bptt_every=self.cut_bptt_every,
            time_level_weights=self.time_level_weights,
        )


class DivertedChain(BaseConfiguration):
    """trainax's `DivertedChain(num_rollout_steps, num_branch_steps, *, ...)`."""

    num_rollout_steps: int = eqx.field(static=True)
    num_branch_steps: int = eqx.field(static=True)
    time_level_loss: object
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    cut_div_chain: bool = eqx.field(static=True)
    time_level_weights: object
    branch_level_weights: object

    def __init__(
        self,
        num_rollout_steps: int = 1,
        num_branch_steps: int = 1,
        *,
        time_level_loss=_MSE,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_div_chain: bool = False,
        time_level_weights=None,
        branch_level_weights=None,
    ):
        if num_branch_steps > num_rollout_steps:
            raise ValueError(
                f"`num_branch_steps` must be at most `num_rollout_steps` ({num_rollout_steps}), "
                f"got {num_branch_steps}."
            )
        self.num_rollout_steps, self.num_branch_steps = num_rollout_steps, num_branch_steps
        self.time_level_loss = time_level_loss
        self.cut_bptt, self.cut_bptt_every = cut_bptt, cut_bptt_every
        self.cut_div_chain = cut_div_chain
        self.time_level_weights = time_level_weights
        self.branch_level_weights = branch_level_weights

    @property
    def batch_reduction(self):
        return per_sample(self.time_level_loss)[1]

    def native(self, ref_stepper=None, residuum_fn=None):
        weights = self.time_level_weights
        if weights is not None:  # trainax takes `num_rollout_steps` weights, uses one per branch
            weights = jnp.asarray(weights)[: self.num_rollout_steps - self.num_branch_steps + 1]
        return native.DivertedChain(
            ref_stepper,
            self.num_rollout_steps,
            self.num_branch_steps,
            time_level_loss=per_sample(self.time_level_loss)[0],
            cut_bptt=self.cut_bptt,
            cut_bptt_every=self.cut_bptt_every,
            cut_div_chain=self.cut_div_chain,
            time_level_weights=weights,
            branch_level_weights=self.branch_level_weights,
        )


class DivertedChainBranchOne(DivertedChain):
    """trainax's `DivertedChainBranchOne(num_rollout_steps, *, ...)`: branches of one step."""

    def __init__(
        self,
        num_rollout_steps: int = 1,
        *,
        time_level_loss=_MSE,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_div_chain: bool = False,
        time_level_weights=None,
    ):
        super().__init__(
            num_rollout_steps,
            1,
            time_level_loss=time_level_loss,
            cut_bptt=cut_bptt,
            cut_bptt_every=cut_bptt_every,
            cut_div_chain=cut_div_chain,
            time_level_weights=time_level_weights,
        )


class MixChainPostPhysics(BaseConfiguration):
    """trainax's `MixChainPostPhysics(num_rollout_steps, num_post_physics_steps, *, ...)`."""

    num_rollout_steps: int = eqx.field(static=True)
    num_post_physics_steps: int = eqx.field(static=True)
    time_level_loss: object
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    time_level_weights: object

    def __init__(
        self,
        num_rollout_steps: int = 1,
        num_post_physics_steps: int = 1,
        *,
        time_level_loss=_MSE,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        time_level_weights=None,
    ):
        self.num_rollout_steps = num_rollout_steps
        self.num_post_physics_steps = num_post_physics_steps
        self.time_level_loss = time_level_loss
        self.cut_bptt, self.cut_bptt_every = cut_bptt, cut_bptt_every
        self.time_level_weights = time_level_weights

    @property
    def batch_reduction(self):
        return per_sample(self.time_level_loss)[1]

    def native(self, ref_stepper=None, residuum_fn=None):
        return native.MixChain(
            ref_stepper,
            self.num_rollout_steps,
            self.num_post_physics_steps,
            time_level_loss=per_sample(self.time_level_loss)[0],
            cut_bptt=self.cut_bptt,
            cut_bptt_every=self.cut_bptt_every,
            time_level_weights=self.time_level_weights,
        )


class Residuum(BaseConfiguration):
    """trainax's `Residuum(num_rollout_steps, *, ..., cut_prev, cut_next, ...)`."""

    num_rollout_steps: int = eqx.field(static=True)
    time_level_loss: object
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    cut_prev: bool = eqx.field(static=True)
    cut_next: bool = eqx.field(static=True)
    time_level_weights: object

    def __init__(
        self,
        num_rollout_steps: int = 1,
        *,
        time_level_loss=_MSE,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_prev: bool = False,
        cut_next: bool = False,
        time_level_weights=None,
    ):
        self.num_rollout_steps, self.time_level_loss = num_rollout_steps, time_level_loss
        self.cut_bptt, self.cut_bptt_every = cut_bptt, cut_bptt_every
        self.cut_prev, self.cut_next = cut_prev, cut_next
        self.time_level_weights = time_level_weights

    @property
    def batch_reduction(self):
        return per_sample(self.time_level_loss)[1]

    def native(self, ref_stepper=None, residuum_fn=None):
        return native.Residuum(
            None if residuum_fn is None else BatchOfOne(residuum_fn),
            self.num_rollout_steps,
            time_level_loss=per_sample(self.time_level_loss)[0],
            cut_bptt=self.cut_bptt,
            cut_bptt_every=self.cut_bptt_every,
            cut_prev=self.cut_prev,
            cut_next=self.cut_next,
            time_level_weights=self.time_level_weights,
        )


class Composite(BaseConfiguration):
    """trainax's `Composite(configurations, weights)`; the parts must share a batch
    reduction."""

    configurations: tuple
    weights: object

    def __init__(self, configurations, weights):
        self.configurations, self.weights = tuple(configurations), weights
        reductions = {c.batch_reduction for c in self.configurations}
        if len(reductions) > 1:
            raise ValueError(
                "`configurations` of a `Composite` must share one `batch_reduction`, got "
                f"{sorted(map(repr, reductions))}."
            )

    @property
    def batch_reduction(self):
        return self.configurations[0].batch_reduction

    def native(self, ref_stepper=None, residuum_fn=None):
        parts = [c.native(ref_stepper, residuum_fn) for c in self.configurations]
        return native.Composite(parts, self.weights)
