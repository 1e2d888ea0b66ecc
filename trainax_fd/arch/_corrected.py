"""A correction network around a fixed physics stepper (APEBench's correction setups)."""

from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
from jax import lax

from .._custom_types import State

Mode = Literal["parallel", "sequential", "sequential_with_bypass"]
_MODES = ("parallel", "sequential", "sequential_with_bypass")


class Corrected(eqx.Module):
    """A learned correction of a fixed physics stepper, as APEBench's `CorrectedStepper`:

    - `"parallel"`: `physics(u) + network(u)`;
    - `"sequential"`: `network(physics(u))`;
    - `"sequential_with_bypass"`: `physics(u) + network(physics(u))`.

    The physics (a reference stepper, an exponax stepper with its complex spectral
    coefficients, ...) stays fixed: it is applied under `lax.stop_gradient`, and
    `trainable` is the filter spec that keeps it out of training and out of the optimizer
    state (`Trainer(..., trainable=model.trainable)`). A `Trainer` trains every inexact array
    by default, complex ones included, since a model's own complex weights are parameters; a
    physics stepper inside a model is masked by this spec, not by its dtype.

    **Arguments:**

    - `physics`: `u -> u_next` on one sample (fixed).
    - `network`: the correction, `(channels, *spatial) -> (channels, *spatial)`.
    - `mode`: `"parallel"` (default), `"sequential"` or `"sequential_with_bypass"`.
    """

    physics: Callable
    network: Callable
    mode: Mode = eqx.field(static=True)

    def __init__(self, physics: Callable, network: Callable, mode: Mode = "parallel"):
        for name, value in (("physics", physics), ("network", network)):
            if not callable(value):
                raise TypeError(f"`{name}` must be callable, got {type(value).__name__}.")
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}, got {mode!r}.")
        self.physics, self.network, self.mode = physics, network, mode

    @property
    def trainable(self):
        """The filter spec training the network only: `False` over the physics, the default
        (every inexact array) over the network."""
        frozen = jax.tree_util.tree_map(lambda _: False, self)
        network = jax.tree_util.tree_map(eqx.is_inexact_array, self.network)
        return eqx.tree_at(lambda m: m.network, frozen, network)

    @property
    def num_parameters(self) -> int:
        """The network's trainable scalars (the physics has none)."""
        count = getattr(self.network, "num_parameters", None)
        if count is not None:
            return count
        leaves = jax.tree_util.tree_leaves(eqx.filter(self.network, eqx.is_inexact_array))
        return sum(x.size for x in leaves)

    def __call__(self, u: State) -> State:
        arrays, rest = eqx.partition(self.physics, eqx.is_array)
        physics = eqx.combine(lax.stop_gradient(arrays), rest)
        if self.mode == "parallel":
            return physics(u) + self.network(u)
        coarse = physics(u)
        corrected = self.network(coarse)
        return coarse + corrected if self.mode == "sequential_with_bypass" else corrected
