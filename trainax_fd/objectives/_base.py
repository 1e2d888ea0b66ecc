"""The objective interface: a batch and a model to a scalar loss, in one implementation."""

import abc
from typing import ClassVar

import equinox as eqx
import jax
from jaxtyping import Array, PyTree

from .._custom_types import Scalar


class AbstractObjective(eqx.Module):
    """What training minimises: `objective(model, batch) -> scalar`.

    An objective computes per-example **terms** (`terms`, leaves with a leading `batch` axis)
    and **reduces** them to the loss (`reduce`); the loss of a batch is
    `reduce(terms(model, batch))`. The one split serves everything: a training step, in-loop
    metrics, `full_loss` over a whole data set (terms computed chunk by chunk, reduced once),
    landscapes and sweeps. An objective whose loss does not split into per-example terms sets
    `decomposable = False`; its full loss is taken on all examples as one batch.

    Models with Equinox state (`eqx.nn.State`, e.g. batch norm) receive and return it: the
    training loop passes `state` (else `None`) and keeps what comes back.
    """

    decomposable: ClassVar[bool] = True

    @abc.abstractmethod
    def terms(
        self, model, batch: PyTree[Array], state: PyTree | None = None
    ) -> tuple[PyTree[Array], PyTree | None]:
        """`(terms, new_state)`: the per-example terms of `batch` (leading `batch` axis) and the
        model state after the batch (`state` unchanged for stateless models)."""

    @abc.abstractmethod
    def reduce(self, terms: PyTree[Array]) -> Scalar:
        """The scalar loss of a batch's (or a whole data set's) terms."""

    def __call__(self, model, batch: PyTree[Array], state: PyTree | None = None) -> Scalar:
        """The loss of `batch`: `reduce(terms(model, batch, state)[0])`.

        **Arguments:**

        - `model`: the Equinox model (a stepper, a network).
        - `batch`: a batch as the data source builds it, leaves `(batch, ...)`.
        - `state`: the model's `eqx.nn.State`, or `None`.

        **Returns:** a scalar.
        """
        return self.reduce(self.terms(model, batch, state)[0])


def refuse_state(state, who: str) -> None:
    if state is not None:
        raise ValueError(
            f"`{who}` trains models without `eqx.nn.State`; got a state. Use "
            "`InputTarget` or `BatchLoss` (which pass the state through) for stateful models."
        )


def vmap_terms(fn, model, batch):
    """`fn(model, example)` for every example of `batch`."""
    return jax.vmap(fn, in_axes=(None, 0))(model, batch)
