"""trainax's configurations (`tx.configuration.*`): batched, with `ref_stepper`/`residuum_fn`
given at call time, over `trainax_fd.configurations` and `trainax_fd.objectives`."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ... import configurations as native
from ..._checks import check_int
from ...configurations._base import level_weights
from ...objectives import AbstractObjective, BatchLoss, WindowObjective
from ._loss import MSELoss, per_sample

_MSE = MSELoss()


class BaseConfiguration(eqx.Module):
    """A trainax configuration: `config(stepper, data, *, ref_stepper, residuum_fn)`, the loss
    of a batch `data` of windows `(batch, time, ...)`.

    Subclass it and implement `__call__` for a configuration of your own, as in trainax: the
    trainers then train on it as a batch loss (`objective`).
    """

    @abc.abstractmethod
    def __call__(self, stepper, data, *, ref_stepper=None, residuum_fn=None):
        """The loss of the batch of windows `data`."""

    def objective(self, ref_stepper=None, residuum_fn=None) -> AbstractObjective:
        """The `trainax_fd.objectives` objective the trainers train on: here the configuration
        as a batch loss (its full loss takes all windows as one batch)."""
        return BatchLoss(_Bound(self, ref_stepper, residuum_fn))


class _Bound(eqx.Module):
    configuration: BaseConfiguration
    ref_stepper: object
    residuum_fn: object

    def __call__(self, stepper, batch):
        return self.configuration(
            stepper, batch, ref_stepper=self.ref_stepper, residuum_fn=self.residuum_fn
        )


class _Compiled(BaseConfiguration):
    """The layer's configurations: an objective over `trainax_fd`'s own, evaluated compiled
    when called (a second call with the same shapes does not compile again)."""

    @abc.abstractmethod
    def objective(self, ref_stepper=None, residuum_fn=None) -> AbstractObjective:
        """The equivalent objective over batches of windows (per-window terms, reduced)."""

    def __call__(self, stepper, data, *, ref_stepper=None, residuum_fn=None):
        return _loss(self, stepper, data, ref_stepper, residuum_fn)


@eqx.filter_jit
def _loss(configuration, stepper, data, ref_stepper, residuum_fn):
    return configuration.objective(ref_stepper, residuum_fn)(stepper, data)


class _Windowed(_Compiled):
    """A configuration with a `trainax_fd.configurations` equivalent (`native`)."""

    time_level_loss: eqx.AbstractVar[object]

    @abc.abstractmethod
    def native(self, ref_stepper=None, residuum_fn=None) -> native.AbstractConfiguration:
        """The equivalent `trainax_fd.configurations` configuration (one window)."""

    def objective(self, ref_stepper=None, residuum_fn=None):
        reduction = per_sample(self.time_level_loss)[1]
        return WindowObjective(self.native(ref_stepper, residuum_fn), reduction)


class BatchOfOne(eqx.Module):
    """Calls a trainax `residuum_fn` (written for batches) on one sample as a batch of one."""

    fn: object

    def __call__(self, u_next, u_prev):
        one = jax.tree_util.tree_map(lambda x: x[None], (u_next, u_prev))
        return jax.tree_util.tree_map(lambda x: x[0], self.fn(*one))


class Supervised(_Windowed):
    """trainax's `Supervised(num_rollout_steps, *, time_level_loss, cut_bptt, cut_bptt_every,
    time_level_weights)` (`trainax_fd.configurations.Supervised`)."""

    num_rollout_steps: int = eqx.field(static=True)
    time_level_loss: object
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    time_level_weights: Float[Array, "num_rollout_steps"]

    def __init__(
        self,
        num_rollout_steps: int = 1,
        *,
        time_level_loss=_MSE,
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        time_level_weights=None,
    ):
        self.num_rollout_steps = check_int("num_rollout_steps", num_rollout_steps)
        self.time_level_loss = time_level_loss
        self.cut_bptt, self.cut_bptt_every = cut_bptt, cut_bptt_every
        self.time_level_weights = level_weights(
            time_level_weights, num_rollout_steps, "time_level_weights", "num_rollout_steps"
        )

    def native(self, ref_stepper=None, residuum_fn=None):
        return native.Supervised(
            self.num_rollout_steps,
            time_level_loss=per_sample(self.time_level_loss)[0],
            cut_bptt=self.cut_bptt,
            cut_bptt_every=self.cut_bptt_every,
            time_level_weights=self.time_level_weights,
        )


class DivertedChain(_Windowed):
    """trainax's `DivertedChain(num_rollout_steps, num_branch_steps, *, ...)`
    (`trainax_fd.configurations.DivertedChain`). As in trainax, `time_level_weights` has one
    weight per rollout step, of which the first `num_rollout_steps - num_branch_steps + 1`
    (one per branch) are used."""

    num_rollout_steps: int = eqx.field(static=True)
    num_branch_steps: int = eqx.field(static=True)
    time_level_loss: object
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    cut_div_chain: bool = eqx.field(static=True)
    time_level_weights: Float[Array, "num_rollout_steps"]
    branch_level_weights: Float[Array, "num_branch_steps"]

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
        n = check_int("num_rollout_steps", num_rollout_steps)
        m = check_int("num_branch_steps", num_branch_steps)
        if m > n:
            raise ValueError(
                f"`num_branch_steps` must be at most `num_rollout_steps` ({n}), got {m}."
            )
        self.num_rollout_steps, self.num_branch_steps = n, m
        self.time_level_loss = time_level_loss
        self.cut_bptt, self.cut_bptt_every = cut_bptt, cut_bptt_every
        self.cut_div_chain = cut_div_chain
        self.time_level_weights = level_weights(
            time_level_weights, n, "time_level_weights", "num_rollout_steps"
        )
        self.branch_level_weights = level_weights(
            branch_level_weights, m, "branch_level_weights", "num_branch_steps"
        )

    def native(self, ref_stepper=None, residuum_fn=None):
        branches = self.num_rollout_steps - self.num_branch_steps + 1
        return native.DivertedChain(
            ref_stepper,
            self.num_rollout_steps,
            self.num_branch_steps,
            time_level_loss=per_sample(self.time_level_loss)[0],
            cut_bptt=self.cut_bptt,
            cut_bptt_every=self.cut_bptt_every,
            cut_div_chain=self.cut_div_chain,
            time_level_weights=self.time_level_weights[:branches],
            branch_level_weights=self.branch_level_weights,
        )


def DivertedChainBranchOne(
    num_rollout_steps: int = 1,
    *,
    time_level_loss=_MSE,
    cut_bptt: bool = False,
    cut_bptt_every: int = 1,
    cut_div_chain: bool = False,
    time_level_weights=None,
) -> DivertedChain:
    """trainax's `DivertedChainBranchOne(num_rollout_steps, *, ...)`: a `DivertedChain` with
    branches of one step."""
    return DivertedChain(
        num_rollout_steps,
        1,
        time_level_loss=time_level_loss,
        cut_bptt=cut_bptt,
        cut_bptt_every=cut_bptt_every,
        cut_div_chain=cut_div_chain,
        time_level_weights=time_level_weights,
    )


class MixChainPostPhysics(_Windowed):
    """trainax's `MixChainPostPhysics(num_rollout_steps, num_post_physics_steps, *, ...)`
    (`trainax_fd.configurations.MixChain`)."""

    num_rollout_steps: int = eqx.field(static=True)
    num_post_physics_steps: int = eqx.field(static=True)
    time_level_loss: object
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    time_level_weights: Float[Array, "levels"]  # noqa: F821

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
        self.num_rollout_steps = check_int("num_rollout_steps", num_rollout_steps)
        self.num_post_physics_steps = check_int("num_post_physics_steps", num_post_physics_steps)
        self.time_level_loss = time_level_loss
        self.cut_bptt, self.cut_bptt_every = cut_bptt, cut_bptt_every
        self.time_level_weights = level_weights(
            time_level_weights,
            num_rollout_steps + num_post_physics_steps,
            "time_level_weights",
            "num_rollout_steps + num_post_physics_steps",
        )

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


class Residuum(_Windowed):
    """trainax's `Residuum(num_rollout_steps, *, ..., cut_prev, cut_next, ...)`
    (`trainax_fd.configurations.Residuum`; `residuum_fn` is called on batches, as in
    trainax)."""

    num_rollout_steps: int = eqx.field(static=True)
    time_level_loss: object
    cut_bptt: bool = eqx.field(static=True)
    cut_bptt_every: int = eqx.field(static=True)
    cut_prev: bool = eqx.field(static=True)
    cut_next: bool = eqx.field(static=True)
    time_level_weights: Float[Array, "num_rollout_steps"]

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
        self.num_rollout_steps = check_int("num_rollout_steps", num_rollout_steps)
        self.time_level_loss = time_level_loss
        self.cut_bptt, self.cut_bptt_every = cut_bptt, cut_bptt_every
        self.cut_prev, self.cut_next = cut_prev, cut_next
        self.time_level_weights = level_weights(
            time_level_weights, num_rollout_steps, "time_level_weights", "num_rollout_steps"
        )

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


class _Weighted(AbstractObjective):
    """`sum_i weights[i] * parts[i](model, batch)`: each part reduced over the batch its own
    way, as trainax's `Composite` does."""

    parts: tuple[AbstractObjective, ...]
    weights: Float[Array, "parts"]  # noqa: F821

    @property
    def decomposable(self) -> bool:
        return all(p.decomposable for p in self.parts)

    def terms(self, model, batch, state=None):
        return tuple(p.terms(model, batch, state)[0] for p in self.parts), state

    def reduce(self, terms):
        reduced = jnp.stack([p.reduce(t) for p, t in zip(self.parts, terms)])
        return jnp.sum(self.weights.astype(reduced.dtype) * reduced)


class Composite(_Compiled):
    """trainax's `Composite(configurations, weights)`: `sum_i weights[i] * configurations[i]`."""

    configurations: list[BaseConfiguration]
    weights: Float[Array, "parts"]  # noqa: F821

    def __init__(self, configurations, weights):
        configurations = list(configurations)
        for c in configurations:
            if not isinstance(c, BaseConfiguration):
                raise TypeError(
                    "`configurations` must hold trainax configurations (`tx.configuration.*`), "
                    f"got {type(c).__name__}."
                )
        weights = jnp.asarray(weights)
        if weights.shape != (len(configurations),):
            raise ValueError(
                f"`weights` must have shape ({len(configurations)},), one weight per "
                f"configuration, got shape {weights.shape}."
            )
        self.configurations, self.weights = configurations, weights

    def objective(self, ref_stepper=None, residuum_fn=None):
        parts = tuple(c.objective(ref_stepper, residuum_fn) for c in self.configurations)
        return _Weighted(parts, self.weights)
