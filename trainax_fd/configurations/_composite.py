"""A weighted sum of configurations."""

from collections.abc import Callable, Sequence

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import check_finite
from ._base import AbstractConfiguration


class Composite(AbstractConfiguration):
    """`sum_i weights[i] * configurations[i](stepper, window)`.

    Its levels are those of the parts, concatenated; windows are as long as the longest part
    needs.

    **Arguments:**

    - `configurations`: a non-empty sequence of configurations.
    - `weights`: one weight per configuration, shape `(parts,)`, finite; an array leaf.
    """

    configurations: tuple[AbstractConfiguration, ...]
    part_weights: Float[Array, "parts"]  # noqa: F821

    def __init__(self, configurations: Sequence[AbstractConfiguration], weights):
        configurations = tuple(configurations)
        if not configurations:
            raise ValueError("`configurations` must hold at least one configuration, got none.")
        for c in configurations:
            if not isinstance(c, AbstractConfiguration):
                raise TypeError(
                    "`configurations` must hold `AbstractConfiguration` instances, got "
                    f"{type(c).__name__}."
                )
        weights = jnp.asarray(weights)
        if weights.shape != (len(configurations),):
            raise ValueError(
                f"`weights` must have shape ({len(configurations)},), one weight per "
                f"configuration, got shape {weights.shape}."
            )
        self.configurations = configurations
        self.part_weights = check_finite(weights, "weights")

    @property
    def window_length(self) -> int:
        return max(c.window_length for c in self.configurations)

    @property
    def ic_only(self) -> bool:
        return all(c.ic_only for c in self.configurations)

    @property
    def weights(self):
        return jnp.concatenate(
            [w * c.weights for w, c in zip(self.part_weights, self.configurations)]
        )

    def level_losses(self, stepper: Callable, window):
        return jnp.concatenate([c.level_losses(stepper, window) for c in self.configurations])
