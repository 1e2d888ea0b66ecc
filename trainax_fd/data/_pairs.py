"""Input→target pairs: a finite data set of examples addressed by index."""

import jax
from jaxtyping import Array, PyTree

from .._checks import as_arrays, check_data
from ._dataset import AbstractDataset, leaves_with_paths


class Pairs(AbstractDataset):
    """Input→target pairs `(inputs[i], targets[i])`, e.g. states and their derivatives.

    **Arguments:**

    - `inputs`: a PyTree of floating-point arrays with a leading `examples` axis.
    - `targets`: a PyTree of floating-point arrays with the same leading `examples` axis.

    None may be empty, and all must be finite: NaN or inf is refused here, naming the first
    bad example (checked once, on concrete data; traced data is not checked).

    A batch is the tuple `(inputs[index], targets[index])`, leaves `(batch, ...)`; pair it with
    `trainax_fd.objectives.InputTarget`.
    """

    inputs: PyTree[Array]
    targets: PyTree[Array]

    def __init__(self, inputs: PyTree[Array], targets: PyTree[Array]):
        inputs = as_arrays(inputs, "inputs", "with a leading examples axis")
        targets = as_arrays(targets, "targets", "with a leading examples axis")
        sizes = {}
        for name, tree in (("inputs", inputs), ("targets", targets)):
            leaves = leaves_with_paths(tree)
            if not leaves:
                raise ValueError(f"`{name}` must hold at least one array, got {tree!r}.")
            for path, leaf in leaves:
                if leaf.ndim < 1:
                    raise ValueError(
                        f"`{name}` leaves must have a leading examples axis, got shape "
                        f"{leaf.shape} at {path}."
                    )
                sizes[f"{name}{path if path != '<root>' else ''}"] = leaf.shape[0]
            check_data(tree, name, ("example",), "(examples, ...)")
        if len(set(sizes.values())) != 1:
            raise ValueError(
                f"`inputs` and `targets` must have one number of examples (leading axis), got "
                f"{sizes}."
            )
        self.inputs, self.targets = inputs, targets

    @property
    def num_examples(self) -> int:
        return jax.tree_util.tree_leaves(self.inputs)[0].shape[0]

    def examples(self, index):
        take = lambda tree: jax.tree_util.tree_map(lambda x: x[index], tree)  # noqa: E731
        return take(self.inputs), take(self.targets)
