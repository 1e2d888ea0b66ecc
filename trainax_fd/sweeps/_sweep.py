"""`sweep`: train N steppers at once, vmapped inside one compiled chunk."""

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Int
from tqdm import tqdm

from .._checks import check_int
from .._cpu import compiled, strong_types
from .._layout import call_canonical, stepper_has_convolutions
from ..configurations import AbstractConfiguration
from ..trainers import Trainer, TrainResult

#: How often the sweep chunk was traced (tests check that it is traced once).
TRACES = {"sweep": 0}


class SweepResult(eqx.Module):
    """The stacked results of a sweep, and what each member varied.

    **Fields:**

    - `results`: a `TrainResult` whose array leaves have a leading `members` axis.
    - `values`: `{name: (members,) array}`: the swept values (`"seed"`, hyperparameter
        names, `"configuration"` indices).
    - `failed`: `(members,)` step at which a member's loss or gradient was not finite (it kept
        its last finite state), `-1` for members that finished.
    """

    results: TrainResult
    values: dict[str, np.ndarray]
    failed: Int[Array, "members"]  # noqa: F821

    @property
    def num_members(self) -> int:
        return int(self.failed.shape[0])

    def member(self, i: int) -> TrainResult:
        """Member `i`'s `TrainResult`, as a single training would have returned it."""
        check_int("i", i, 0)
        if i >= self.num_members:
            raise ValueError(
                f"`i` must be below the number of members {self.num_members}, got {i}."
            )
        return jax.tree_util.tree_map(lambda x: x[i] if eqx.is_array(x) else x, self.results)

    def summary(self) -> list[dict]:
        """One row per member: swept values, `final_loss` (last finite), `min_loss`, `steps`,
        `failed_at` (or `None`), and the last record of every scalar metric."""
        history = np.asarray(self.results.loss_history)
        steps = np.asarray(self.results.step)
        failed = np.asarray(self.failed)
        rows = []
        for i in range(self.num_members):
            done = history[i, : steps[i]]
            row = {name: v[i].item() for name, v in self.values.items()}
            row["final_loss"] = float(done[-1]) if done.size else float("nan")
            row["min_loss"] = float(np.min(done)) if done.size else float("nan")
            row["steps"] = int(steps[i])
            row["failed_at"] = int(failed[i]) if failed[i] >= 0 else None
            for name, record in self.results.metrics.items():
                leaves = jax.tree_util.tree_leaves(record)
                if len(leaves) == 1 and leaves[0].ndim == 2:  # (members, records) scalars
                    row[name] = float(np.asarray(leaves[0])[i, -1])
            rows.append(row)
        return rows

    def table(self) -> str:
        """`summary()` as an aligned text table."""
        rows = self.summary()
        columns = list(rows[0])

        def cell(v):
            if isinstance(v, float):
                return f"{v:.4e}"
            return "-" if v is None else str(v)

        cells = [[cell(r[c]) for c in columns] for r in rows]
        width = [max(len(c), *(len(r[j]) for r in cells)) for j, c in enumerate(columns)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(columns, width))]
        lines.append("  ".join("-" * w for w in width))
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, width)) for r in cells]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _is_injected(s) -> bool:
    return isinstance(s, optax.InjectHyperparamsState | optax.InjectStatefulHyperparamsState)


def _injected(opt_state) -> list:
    leaves = jax.tree_util.tree_leaves(opt_state, is_leaf=_is_injected)
    return [s for s in leaves if _is_injected(s)]


def _inject(opt_state, hyperparams: Mapping[str, np.ndarray]):
    """Stacked optimizer states with `hyperparams[name][m]` set in member `m`."""
    states = _injected(opt_state)
    if len(states) != 1:
        raise ValueError(
            "`hyperparams` needs an optimizer built with `optax.inject_hyperparams` (once, e.g. "
            "`optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)`), got a state with "
            f"{len(states)} injected hyperparameter states."
        )
    known = dict(states[0].hyperparams)
    for name, values in hyperparams.items():
        if name not in known:
            raise ValueError(
                f"`hyperparams` names must be injected hyperparameters {sorted(known)}, got "
                f"{name!r}."
            )
        known[name] = jnp.asarray(values, known[name].dtype).reshape(known[name].shape)
    return eqx.tree_at(lambda s: _injected(s)[0].hyperparams, opt_state, known)


@compiled  # one program: eagerly, each of the ~20 vmapped operations compiled apart
def _initial_results(trainer, stepper, init, key, members: int, shuffle: str, hyperparams):
    """The members' `TrainResult`s at step 0, stacked, `hyperparams` injected."""
    init_key, shuffle_key = jax.random.split(key)
    if init is not None:
        steppers = eqx.filter_vmap(init)(jax.random.split(init_key, members))
    else:
        steppers = eqx.filter_vmap(lambda _: stepper, axis_size=members)(jnp.arange(members))
    if shuffle == "shared":
        shuffle_keys = jnp.broadcast_to(jax.random.key_data(shuffle_key), (members, 2))
    else:
        shuffle_keys = jax.random.key_data(jax.random.split(shuffle_key, members))
    results = eqx.filter_vmap(lambda s, k: trainer.init(s, key=k))(steppers, shuffle_keys)
    if hyperparams:
        results = eqx.tree_at(
            lambda r: r.opt_state, results, _inject(results.opt_state, hyperparams)
        )
    return results


def _stack_configurations(configurations, trainer: Trainer):
    configurations = list(configurations)
    for c in configurations:
        if not isinstance(c, AbstractConfiguration):
            raise TypeError(f"`configurations` must hold configurations, got {type(c).__name__}.")
    static = [eqx.partition(c, eqx.is_array)[1] for c in configurations]
    reference = eqx.partition(trainer.configuration, eqx.is_array)[1]
    if any(
        jax.tree_util.tree_structure(s) != jax.tree_util.tree_structure(reference) or s != reference
        for s in static
    ):
        raise ValueError(
            "`configurations` must differ from the trainer's configuration only in array values "
            "(e.g. `time_level_weights`), not in type, rollout length or options; got "
            f"{[type(c).__name__ for c in configurations]}."
        )
    arrays = [eqx.filter(c, eqx.is_array) for c in configurations]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *arrays)


def _member_chunk(trainer: Trainer, configurations, results, stop, mapped: bool = False):
    TRACES["sweep"] += 1
    static_results = eqx.filter(results, eqx.is_array, inverse=True)

    def one(config, dynamic):
        t = trainer
        if config is not None:
            static = eqx.filter(trainer.configuration, eqx.is_array, inverse=True)
            t = eqx.tree_at(lambda t: t.configuration, trainer, eqx.combine(config, static))
        out = t._chunk_body(eqx.combine(dynamic, static_results), stop)
        return eqx.filter(out, eqx.is_array)

    dynamic = eqx.filter(results, eqx.is_array)
    if mapped:  # one member after the other inside the program
        out = lax.map(lambda args: one(*args), (configurations, dynamic))
    else:
        out = jax.vmap(one)(configurations, dynamic)
    (result, failed, last) = out
    return eqx.combine(result, static_results), failed, last


def _member_chunk_cpu(trainer, configurations, results, stop, sharded: bool):
    """On CPU, members with convolutions run one after the other (`lax.map`), their
    convolutions in the fast layout: vmapping them would make grouped convolutions, which
    XLA:CPU runs 2x slower than the members' convolutions in turn (see `_layout`). Members
    sharded over devices stay vmapped (each device runs its own)."""
    first = jax.tree_util.tree_map(lambda x: x[0], eqx.filter(results.stepper, eqx.is_array))
    stepper = eqx.combine(first, eqx.filter(results.stepper, eqx.is_array, inverse=True))
    if stepper_has_convolutions(stepper, trainer.windows.trajectories):
        return call_canonical(
            lambda *a: _member_chunk(*a, mapped=not sharded), trainer, configurations, results, stop
        )
    return _member_chunk(trainer, configurations, results, stop)


_chunk = compiled(
    _member_chunk_cpu, other=lambda trainer, c, r, stop, sharded: _member_chunk(trainer, c, r, stop)
)


def _members(num_members, hyperparams, configurations) -> int:
    counts = {f"hyperparams[{k!r}]": len(np.ravel(v)) for k, v in hyperparams.items()}
    if configurations is not None:
        counts["configurations"] = len(configurations)
    if num_members is not None:
        counts["num_members"] = check_int("num_members", num_members)
    if not counts:
        raise ValueError(
            "A sweep needs members: give `num_members`, `hyperparams` or `configurations`."
        )
    if len(set(counts.values())) != 1:
        raise ValueError(f"The swept values must have one length (the members), got {counts}.")
    return next(iter(counts.values()))


def sweep(
    trainer: Trainer,
    stepper=None,
    *,
    key,
    init: Callable | None = None,
    num_members: int | None = None,
    hyperparams: Mapping[str, Sequence[float]] | None = None,
    configurations: Sequence[AbstractConfiguration] | None = None,
    shuffle: Literal["shared", "per_member"] = "shared",
    mesh: Mesh | None = None,
    progress: bool = True,
) -> SweepResult:
    """Train `members` steppers at once: one compiled program steps them all (`vmap`).

    Members differ in their initialisation (`init(key)` with a key per member), their
    optimizer hyperparameters (`optax.inject_hyperparams`), their configuration's array
    values (e.g. time-level weights) and, with `shuffle="per_member"`, the order of batches.
    A member whose loss turns non-finite stops alone and keeps its last finite state.

    **Arguments:**

    - `trainer`: the `Trainer` that defines data, configuration, optimizer and step count
        (metrics are recorded per member; host callbacks are not supported).
    - `stepper`: the initial stepper of every member, or `None` with `init`.
    - `key`: splits into the members' initialisation keys and the shuffling key(s).
    - `init`: `key -> stepper`, vmapped over one key per member (different seeds).
    - `num_members`: the member count (else taken from the swept values).
    - `hyperparams`: `{name: (members,) values}` of hyperparameters injected with
        `optax.inject_hyperparams` (e.g. `{"learning_rate": [1e-3, 1e-2]}`).
    - `configurations`: one configuration per member, differing from the trainer's only in
        array values (e.g. `Supervised(4, time_level_weights=w)`).
    - `shuffle`: `"shared"` (every member sees the same batches: a fair comparison) or
        `"per_member"`.
    - `mesh`: a `jax.sharding.Mesh` whose first axis shards the members over devices
        (`members` divisible by its size); default: one device.
    - `progress`: a `tqdm` bar per chunk with the best member's loss.

    **Returns:** a `SweepResult`; `print(result)` shows the per-member table.
    """
    if not isinstance(trainer, Trainer):
        raise TypeError(f"`trainer` must be a `Trainer`, got {type(trainer).__name__}.")
    if trainer.host_callbacks:
        raise ValueError(
            "`trainer` must have no host callbacks in a sweep (save the `SweepResult` with "
            f"`trainax_fd.trainers.save_result` instead), got {trainer.host_callbacks}."
        )
    if (stepper is None) == (init is None):
        raise ValueError("Give exactly one of `stepper` (shared) and `init` (key -> stepper).")
    if shuffle not in ("shared", "per_member"):
        raise ValueError(f"`shuffle` must be 'shared' or 'per_member', got {shuffle!r}.")
    hyperparams = {k: np.ravel(np.asarray(v)) for k, v in (hyperparams or {}).items()}
    members = _members(num_members, hyperparams, configurations)
    values: dict[str, np.ndarray] = {"member": np.arange(members)}
    results = _initial_results(trainer, stepper, init, key, members, shuffle, hyperparams)
    values.update(hyperparams)
    results = strong_types(results)  # typed as the chunk returns them: one compilation
    stacked = None
    if configurations is not None:
        stacked = _stack_configurations(configurations, trainer)
        values["configuration"] = np.arange(members)
    if mesh is not None:
        results, stacked = _shard_members(mesh, members, results, stacked)
    sharded = mesh is not None
    step = 0
    failed = np.full(members, -1)
    with tqdm(total=trainer.num_steps, disable=not progress, desc=f"sweep x{members}") as bar:
        while step < trainer.num_steps and np.any(failed < 0):
            stop = jax.device_put(np.int32(min(trainer.num_steps, step + trainer.chunk_size)))
            results, new_failed, last = _chunk(trainer, stacked, results, stop, sharded)
            new_failed = np.asarray(new_failed)
            failed = np.where(failed >= 0, failed, new_failed)
            new_step = int(np.max(np.asarray(results.step)))
            bar.update(new_step - step)
            step = new_step
            ok = np.asarray(last)[failed < 0]
            if ok.size:
                bar.set_postfix(best=f"{np.nanmin(ok):.3e}")
    return SweepResult(results, values, jnp.asarray(failed))


def _shard_members(mesh: Mesh, members: int, results, stacked):
    if not isinstance(mesh, Mesh):
        raise TypeError(f"`mesh` must be a `jax.sharding.Mesh`, got {type(mesh).__name__}.")
    axis = mesh.axis_names[0]
    size = mesh.shape[axis]
    if members % size:
        raise ValueError(
            f"The number of members ({members}) must be divisible by the size of `mesh` axis "
            f"{axis!r} ({size})."
        )
    sharding = NamedSharding(mesh, PartitionSpec(axis))
    put = lambda tree: jax.tree_util.tree_map(  # noqa: E731
        lambda x: jax.device_put(x, sharding) if eqx.is_array(x) else x, tree
    )
    return put(results), put(stacked)
