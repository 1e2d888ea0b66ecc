"""The result of a training, atomic checkpoints, and the error of a diverging run."""

import os
import tempfile

import equinox as eqx
from jaxtyping import Array, Float, Int, PyTree, UInt


class TrainResult(eqx.Module):
    """Everything a training produced and everything needed to continue it.

    Its structure never depends on options: pass it back to the same `Trainer` to continue
    (bit for bit as if uninterrupted), save it with `save_result`.

    **Fields:**

    - `model`: the trained model (a stepper, a network); also readable as `stepper`.
    - `model_state`: the model's `eqx.nn.State` (batch-norm statistics), or `None`.
    - `opt_state`: the optimizer state (of the trainable leaves).
    - `step`: completed optimizer steps, an int array `()`.
    - `key`: the data-shuffling key as raw key data (`jax.random.key_data`), fixed for a run.
    - `loss_history`: training loss of each step, shape `(num_steps,)`; `nan` where not run.
    - `metrics`: `{name: PyTree}` of in-loop callback records, leaves `(records, ...)`,
        record `r` taken before step `r * every`.
    """

    model: PyTree
    model_state: PyTree | None
    opt_state: PyTree
    step: Int[Array, ""]
    key: UInt[Array, "..."]
    loss_history: Float[Array, "num_steps"]  # noqa: F821
    metrics: dict[str, PyTree[Array]]

    @property
    def stepper(self) -> PyTree:
        """The trained model (the name the package's steppers use)."""
        return self.model

    @property
    def losses(self) -> Float[Array, "step"]:  # noqa: F821
        """The losses of the steps run so far, shape `(step,)`."""
        return self.loss_history[: int(self.step)]


class NonFiniteLossError(FloatingPointError):
    """Training met a non-finite loss or gradient; `result` holds the last finite state.

    **Attributes:** `step` (the failing step) and `result` (a `TrainResult` after `step`
    completed steps, its `loss_history[step]` the non-finite loss).
    """

    def __init__(self, step: int, loss: float, result: TrainResult):
        super().__init__(
            f"Non-finite loss or gradient at step {step} (loss = {loss}); training stopped. "
            f"The error's `.result` holds the last finite state (after {step} steps); lower "
            "the learning rate or check the data and the stepper."
        )
        self.step, self.result = step, result


def save_result(path: str | os.PathLike, result: TrainResult) -> None:
    """Write `result` to `path` atomically: a temporary file in the same folder, then a rename.

    A crash while writing leaves the previous file intact.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".eqx")
    try:
        with os.fdopen(fd, "wb") as f:
            eqx.tree_serialise_leaves(f, result)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_result(path: str | os.PathLike, like: TrainResult) -> TrainResult:
    """Read a `TrainResult` written by `save_result`; `like` gives structure, shapes, dtypes
    (e.g. `trainer.init(model, key=...)`, see `Trainer.restore`)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path` {path!r} does not exist.")
    return eqx.tree_deserialise_leaves(path, like)
