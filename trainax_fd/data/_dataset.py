"""The interface of finite data sets: examples addressed by a flat index."""

import abc

import equinox as eqx
import jax
from jaxtyping import Array, Int, PyTree


def leaves_with_paths(tree) -> list[tuple[str, Array]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(path) or "<root>", leaf) for path, leaf in flat]


class AbstractDataset(eqx.Module):
    """A finite set of examples, `0, ..., num_examples - 1`, gathered by index inside `jit`.

    `trainax_fd.data.Shuffled` cuts one into batches; `full_loss` walks all of them.
    """

    @property
    @abc.abstractmethod
    def num_examples(self) -> int:
        """The number of examples (static)."""

    @abc.abstractmethod
    def examples(self, index: Int[Array, "batch"]) -> PyTree[Array]:  # noqa: F821
        """The examples at the flat indices `index` `(batch,)`, unchecked (indices built in
        range); leaves `(batch, ...)`."""
