"""The result of a training, verified checkpoint files, and the error of a diverging run.

A checkpoint file is a fixed prefix (signature, format version, the lengths of the header and
the payload, the SHA-256 of everything else), a JSON header describing every serialised leaf
(path, shape, dtype) and the `eqx.tree_serialise_leaves` payload. Loading checks the prefix,
the length and the checksum before reading a leaf, and compares the header with the template,
so an altered, cut-off or foreign file is refused instead of loaded.
"""

import hashlib
import io
import json
import os
import struct

import equinox as eqx
import jax
import numpy as np
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


# -- the file format -------------------------------------------------------------------------
MAGIC = b"\x89trainax_fd checkpoint\n"
VERSION = 1
_FIXED = struct.Struct("<IQQ")  # version, header length, payload length
_PREFIX = len(MAGIC) + _FIXED.size + 32  # + the SHA-256 digest
_FIELDS = ("model", "model_state", "opt_state", "step", "key", "loss_history")


def temporary_path(path: str) -> str:
    """The one temporary file a write of `path` uses: `.{name}.tmp` beside it, so a write
    killed half-way leaves a file the next write of `path` replaces or removes."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.tmp")


def make_folder(folder: str, argument: str, value: str) -> None:
    """Create `folder`; `ValueError` naming argument `argument` (given as `value`) if not."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        where = "" if folder == value else f": its folder {folder!r}"
        raise ValueError(f"`{argument}` {value!r}{where} cannot be created ({error}).") from None


def check_target(path: str | os.PathLike) -> str:
    """`path` as a string after making its folder; `ValueError` naming it when it is a folder
    or its folder cannot be created."""
    path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise TypeError(f"`path` must be a non-empty str or os.PathLike, got {path!r}.")
    if os.path.isdir(path):
        raise ValueError(f"`path` {path!r} is a folder; it must name a file.")
    make_folder(os.path.dirname(os.path.abspath(path)), "path", path)
    return path


def write_atomic(path: str, data) -> None:
    """Write the buffers `data` to `path` through `temporary_path(path)`: fsync, rename,
    fsync the folder. A crash at any point leaves the previous `path` intact."""
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as f:
            for chunk in data:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.isfile(tmp):
            os.remove(tmp)
        raise
    try:  # the rename is durable once the folder is synced (not possible on every OS)
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _serialised(x) -> bool:
    return eqx.is_array_like(x) or isinstance(x, jax.ShapeDtypeStruct)


def _describe(tree) -> list[list]:
    """`[path, shape, dtype]` of every leaf `eqx.tree_serialise_leaves` writes, in its order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    out = []
    for p, x in leaves:
        if _serialised(x):
            a = x if hasattr(x, "dtype") and hasattr(x, "shape") else np.asarray(x)
            out.append([jax.tree_util.keystr(p), list(a.shape), str(np.dtype(a.dtype))])
    return out


def _header(result: TrainResult) -> dict:
    return {
        "step": int(result.step),
        "fields": {name: _describe(getattr(result, name)) for name in _FIELDS},
        "metrics": {name: _describe(m) for name, m in result.metrics.items()},
    }


def save_result(path: str | os.PathLike, result: TrainResult) -> None:
    """Write `result` to exactly `path` (no suffix added) as a checksummed checkpoint,
    atomically: `.{name}.tmp` in the same folder, fsync, rename. A crash while writing leaves
    the previous file intact, and the next write of `path` replaces the temporary file.

    **Raises:** `ValueError` naming `path` when it is a folder or its folder cannot be made.
    """
    path = check_target(path)
    payload = io.BytesIO()
    eqx.tree_serialise_leaves(payload, result)
    payload = payload.getbuffer()
    header = json.dumps(_header(result), separators=(",", ":")).encode()
    fixed = MAGIC + _FIXED.pack(VERSION, len(header), len(payload))
    digest = hashlib.sha256(fixed)
    digest.update(header)
    digest.update(payload)
    write_atomic(path, (fixed, digest.digest(), header, payload))


def _show(entry) -> str:
    return f"{entry[2]}{list(entry[1])}"


def _differences(name: str, stored: list, template: list) -> list[str]:
    """How the leaves `stored` in the file differ from those of the template, by path."""
    if [list(e) for e in stored] == [list(e) for e in template]:
        return []
    saved, wanted = {e[0]: e for e in stored}, {e[0]: e for e in template}
    out = [
        f"`{name}{p}` is {_show(saved[p])} in the file, {_show(wanted[p])} in the template"
        for p in saved
        if p in wanted and saved[p] != wanted[p]
    ]
    out += [f"`{name}{p}` is only in the file" for p in saved if p not in wanted]
    out += [f"`{name}{p}` is only in the template" for p in wanted if p not in saved]
    return out or [f"the leaves of `{name}` are in another order"]


def _read_verified(path: str) -> tuple[dict, memoryview]:
    """The header and payload of the checkpoint at `path`, after checking signature, version,
    length and checksum; `ValueError` naming `path` and what is wrong otherwise."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path` {path!r} does not exist.")
    if os.path.isdir(path):
        raise ValueError(f"`path` {path!r} is a folder, not a checkpoint file.")
    with open(path, "rb") as f:
        data = memoryview(f.read())
    size = len(data)
    if size == 0:
        raise ValueError(f"`path` {path!r} is empty (0 bytes), not a checkpoint.")
    if bytes(data[: len(MAGIC)]) != MAGIC:
        if not any(data):
            raise ValueError(
                f"`path` {path!r} holds only zero bytes ({size}), not a checkpoint: its "
                "write never reached the disk."
            )
        if size < len(MAGIC) and MAGIC.startswith(bytes(data)):
            raise ValueError(f"`path` {path!r} is a truncated checkpoint ({size} bytes).")
        raise ValueError(
            f"`path` {path!r} is not a trainax_fd checkpoint (it does not start with "
            f"{MAGIC!r}); checkpoints are written by `save_result` and `Checkpoint`, not "
            "by `eqx.tree_serialise_leaves`."
        )
    if size < _PREFIX:
        raise ValueError(
            f"`path` {path!r} is a truncated checkpoint ({size} bytes, shorter than the "
            f"{_PREFIX}-byte prefix)."
        )
    version, header_size, payload_size = _FIXED.unpack_from(data, len(MAGIC))
    if version != VERSION:
        raise ValueError(
            f"`path` {path!r} is a checkpoint of format version {version}; this trainax_fd "
            f"reads version {VERSION}."
        )
    expected = _PREFIX + header_size + payload_size
    if size != expected:
        what = "a truncated checkpoint" if size < expected else "a checkpoint with extra bytes"
        raise ValueError(f"`path` {path!r} is {what}: {size} bytes, its prefix says {expected}.")
    stored = bytes(data[_PREFIX - 32 : _PREFIX])
    digest = hashlib.sha256(data[: _PREFIX - 32])
    digest.update(data[_PREFIX:])
    if digest.digest() != stored:
        raise ValueError(
            f"`path` {path!r} fails its checksum: its bytes were altered after it was "
            f"written (SHA-256 {digest.hexdigest()}, recorded {stored.hex()})."
        )
    header = json.loads(bytes(data[_PREFIX : _PREFIX + header_size]))
    return header, data[_PREFIX + header_size :]


def _template(path: str, header: dict, like: TrainResult) -> TrainResult:
    """`like` with the key, the loss history's length and the metric records as the file
    holds them (a checkpoint of a run of another `num_steps` or other metrics); `ValueError`
    naming what differs when the other leaves do."""
    (_, key_shape, key_dtype), *_ = header["fields"]["key"]
    (_, (steps,), _), *_ = header["fields"]["loss_history"]
    history = jax.ShapeDtypeStruct((steps,), like.loss_history.dtype)
    key = jax.ShapeDtypeStruct(tuple(key_shape), key_dtype)
    metrics, problems = {}, []
    for name, stored in header["metrics"].items():
        if name not in like.metrics:  # not recorded by this trainer: read as saved
            metrics[name] = [jax.ShapeDtypeStruct(tuple(s), d) for _, s, d in stored]
            continue
        leaves, treedef = jax.tree_util.tree_flatten(like.metrics[name])
        if len(leaves) == len(stored) and all(s for _, s, _ in stored):
            leaves = [
                jax.ShapeDtypeStruct((s[0], *x.shape[1:]), x.dtype)
                for x, (_, s, _) in zip(leaves, stored)
            ]
        metrics[name] = jax.tree_util.tree_unflatten(treedef, leaves)
        problems += _differences(f"metrics[{name!r}]", stored, _describe(metrics[name]))
    like = eqx.tree_at(lambda r: (r.key, r.loss_history, r.metrics), like, (key, history, metrics))
    for name in _FIELDS:
        problems += _differences(name, header["fields"][name], _describe(getattr(like, name)))
    if problems:
        more = f"; and {len(problems) - 6} more" if len(problems) > 6 else ""
        raise ValueError(
            f"`path` {path!r} holds a checkpoint of another architecture than the template "
            f"(the model, state and optimizer given to restore it): "
            f"{'; '.join(problems[:6])}{more}."
        )
    return like


def load_result(path: str | os.PathLike, like: TrainResult) -> TrainResult:
    """Read exactly the file `save_result(path, ...)` wrote (no suffix added), verified.

    **Arguments:**

    - `path`: the checkpoint file.
    - `like`: a `TrainResult` of the same architecture (e.g. `trainer.init(model, key=...)`,
        see `Trainer.restore`), giving structure, shapes and dtypes; the key, the length of
        the loss history and the metric records are read as the file holds them.

    **Returns:** the saved `TrainResult`.

    **Raises:** `FileNotFoundError` when `path` does not exist; `ValueError` naming `path`
    when it is a folder, empty, zeroed, truncated, not a checkpoint, of another format
    version, altered after writing (checksum), or of another architecture than `like`.
    """
    path = os.fspath(path)
    header, payload = _read_verified(path)
    like = _template(path, header, like)
    try:
        return eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    except Exception as error:  # the header matched, so only a bug or a foreign writer
        raise ValueError(f"`path` {path!r} could not be read into the template: {error}") from None
