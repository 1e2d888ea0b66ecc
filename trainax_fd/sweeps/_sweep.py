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

from .._backend import backend_call
from .._checks import check_int, check_key
from ..configurations import AbstractConfiguration
from ..objectives import AbstractObjective, WindowObjective
from ..trainers import Trainer, TrainResult, _loop
from ..trainers._loop import strong_types


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


@eqx.filter_jit  # one program: eagerly, each of the ~20 vmapped operations compiled apart
def _initial_results(trainer, stepper, state, init, key, members: int, shuffle: str, hyperparams):
    """The members' `TrainResult`s at step 0, stacked, `hyperparams` injected."""
    init_key, shuffle_key = jax.random.split(key)
    if init is not None:
        made = eqx.filter_vmap(init)(jax.random.split(init_key, members))
        steppers, states = made if _with_state(made) else (made, None)
    else:
        copy = eqx.filter_vmap(lambda _: (stepper, state), axis_size=members)
        steppers, states = copy(jnp.arange(members))
    if shuffle == "shared":
        shuffle_keys = jnp.broadcast_to(shuffle_key, (members,))
    else:
        shuffle_keys = jax.random.split(shuffle_key, members)
    results = eqx.filter_vmap(lambda s, st, k: trainer.init(s, key=k, state=st))(
        steppers, states, shuffle_keys
    )
    if hyperparams:
        results = eqx.tree_at(
            lambda r: r.opt_state, results, _inject(results.opt_state, hyperparams)
        )
    return results


def _with_state(made) -> bool:
    """Whether `init` returned `(model, eqx.nn.State)`, as `eqx.nn.make_with_state` does."""
    return isinstance(made, tuple) and len(made) == 2 and isinstance(made[1], eqx.nn.State)


def _stack_objectives(objectives, trainer: Trainer):
    objectives = [_as_member_objective(o, trainer) for o in objectives]
    static = [eqx.partition(o, eqx.is_array)[1] for o in objectives]
    reference = eqx.partition(trainer.objective, eqx.is_array)[1]
    if any(
        jax.tree_util.tree_structure(s) != jax.tree_util.tree_structure(reference) or s != reference
        for s in static
    ):
        raise ValueError(
            "`objectives` must differ from the trainer's objective only in array values "
            "(e.g. `time_level_weights`), not in type, rollout length or options; got "
            f"{[type(o).__name__ for o in objectives]}."
        )
    arrays = [eqx.filter(o, eqx.is_array) for o in objectives]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *arrays)


def _as_member_objective(objective, trainer: Trainer) -> AbstractObjective:
    if isinstance(objective, AbstractConfiguration) and isinstance(
        trainer.objective, WindowObjective
    ):
        return WindowObjective(objective, trainer.objective.reduction)
    if isinstance(objective, AbstractObjective):
        return objective
    raise TypeError(
        "`objectives` must hold objectives (or configurations, for a trainer of a "
        f"configuration), got {type(objective).__name__}."
    )


def _member_chunk(trainer: Trainer, objectives, results, stop, mapped: bool):
    """Every member's chunk of steps: vmapped, or with `mapped` one after the other
    (`lax.map`): vmapped convolutions become grouped convolutions, which XLA:CPU runs 2x
    slower than the members' convolutions in turn."""
    static_results = eqx.filter(results, eqx.is_array, inverse=True)
    static_objective = eqx.filter(trainer.objective, eqx.is_array, inverse=True)

    def one(objective, dynamic):
        t = trainer
        if objective is not None:
            t = eqx.tree_at(
                lambda t: t.objective, trainer, eqx.combine(objective, static_objective)
            )
        out = _loop.chunk(t, eqx.combine(dynamic, static_results), stop)
        return eqx.filter(out, eqx.is_array)

    dynamic = eqx.filter(results, eqx.is_array)
    if mapped:
        out = lax.map(lambda args: one(*args), (objectives, dynamic))
    else:
        out = jax.vmap(one)(objectives, dynamic)
    (result, failed, last) = out
    return eqx.combine(result, static_results), failed, last


#: Hyperparameters with which training can only diverge or stand still unless positive.
_POSITIVE = ("learning_rate", "lr", "eps", "b1", "b2")


def _check_hyperparams(hyperparams) -> None:
    for name, values in hyperparams.items():
        if not np.issubdtype(values.dtype, np.number):
            raise TypeError(f"`hyperparams[{name!r}]` must hold numbers, got {values!r}.")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(
                f"`hyperparams[{name!r}]` must be finite; member {bad[0]} has {values[bad[0]]}."
            )
        if name in _POSITIVE:
            bad = np.flatnonzero(values <= 0)
            if bad.size:
                raise ValueError(
                    f"`hyperparams[{name!r}]` must be positive (training with it can only "
                    f"diverge or stand still otherwise); member {bad[0]} has {values[bad[0]]}."
                )


def _members(num_members, hyperparams, objectives) -> int:
    counts = {f"hyperparams[{k!r}]": len(np.ravel(v)) for k, v in hyperparams.items()}
    if objectives is not None:
        counts["objectives"] = len(objectives)
    if num_members is not None:
        counts["num_members"] = check_int("num_members", num_members)
    if not counts:
        raise ValueError(
            "A sweep needs members: give `num_members`, `hyperparams` or `objectives`."
        )
    if len(set(counts.values())) != 1:
        raise ValueError(f"The swept values must have one length (the members), got {counts}.")
    return next(iter(counts.values()))


def sweep(
    trainer: Trainer,
    stepper=None,
    *,
    key,
    state: eqx.nn.State | None = None,
    init: Callable | None = None,
    num_members: int | None = None,
    hyperparams: Mapping[str, Sequence[float]] | None = None,
    objectives: Sequence[AbstractObjective | AbstractConfiguration] | None = None,
    shuffle: Literal["shared", "per_member"] = "shared",
    mesh: Mesh | None = None,
    progress: bool = True,
) -> SweepResult:
    """Train `members` models at once: one compiled program steps them all (`vmap`).

    Members differ in their initialisation (`init(key)` with a key per member), their
    optimizer hyperparameters (`optax.inject_hyperparams`), their objective's array values
    (e.g. time-level weights) and, with `shuffle="per_member"`, their data key (the order of
    batches, or a sampler's draws). Any objective and data source of a `Trainer` can be swept.
    A member whose loss turns non-finite stops alone and keeps its last finite state.

    **Arguments:**

    - `trainer`: the `Trainer` that defines data, objective, optimizer and step count
        (metrics are recorded per member; host callbacks are not supported).
    - `stepper`: the initial stepper of every member, or `None` with `init`.
    - `key`: splits into the members' initialisation keys and the shuffling key(s).
    - `state`: the `eqx.nn.State` of `stepper` (batch norm's running statistics), copied to
        every member.
    - `init`: `key -> stepper` or `key -> (stepper, state)` (a model with `eqx.nn.State`,
        e.g. `eqx.nn.make_with_state(Net)(key=key)`), vmapped over one key per member
        (different seeds).
    - `num_members`: the member count (else taken from the swept values).
    - `hyperparams`: `{name: (members,) values}` of hyperparameters injected with
        `optax.inject_hyperparams` (e.g. `{"learning_rate": [1e-3, 1e-2]}`).
    - `objectives`: one objective per member (configurations for a trainer of a
        configuration), differing from the trainer's only in array values (e.g.
        `Supervised(4, time_level_weights=w)`).
    - `shuffle`: `"shared"` (every member sees the same batches: a fair comparison) or
        `"per_member"` (a data key per member).
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
    if state is not None and not isinstance(state, eqx.nn.State):
        raise TypeError(f"`state` must be an `eqx.nn.State` or None, got {type(state).__name__}.")
    if state is not None and init is not None:
        raise ValueError(
            "`state` goes with `stepper`; with `init`, return `(stepper, state)` from it."
        )
    if shuffle not in ("shared", "per_member"):
        raise ValueError(f"`shuffle` must be 'shared' or 'per_member', got {shuffle!r}.")
    hyperparams = {k: np.ravel(np.asarray(v)) for k, v in (hyperparams or {}).items()}
    _check_hyperparams(hyperparams)
    members = _members(num_members, hyperparams, objectives)
    check_key(key)
    values: dict[str, np.ndarray] = {"member": np.arange(members)}
    results = _initial_results(trainer, stepper, state, init, key, members, shuffle, hyperparams)
    values.update(hyperparams)
    results = strong_types(results)  # typed as the chunk returns them: one compilation
    stacked = None
    if objectives is not None:
        stacked = _stack_objectives(objectives, trainer)
        values["objective"] = np.arange(members)
    if mesh is not None:
        results, stacked = _shard_members(mesh, members, results, stacked)
    first = jax.tree_util.tree_map(lambda x: x[0] if eqx.is_array(x) else x, results)
    canonical = trainer._canonical(first)
    mapped = canonical and mesh is None  # members sharded over devices stay vmapped
    step = 0
    failed = np.full(members, -1)
    with tqdm(total=trainer.num_steps, disable=not progress, desc=f"sweep x{members}") as bar:
        while step < trainer.num_steps and np.any(failed < 0):
            stop = jax.device_put(np.int32(min(trainer.num_steps, step + trainer.chunk_size)))
            results, new_failed, last = backend_call(
                _member_chunk, trainer, stacked, results, stop, mapped, canonical=canonical,
                options=trainer.compiler_options,
            )  # fmt: skip
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
