"""The compiled core: a chunk of optimizer steps as one `lax.while_loop`, and the full loss.

One step: the data source builds the batch of step `s` from the run's key, the objective
turns it into a loss, `value_and_grad` and the optimizer update the trainable leaves, the
metrics record, and a non-finite loss or gradient stops the chunk with the last finite state.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array

from ..data import AbstractDataset, Fixed, Sampler, Shuffled
from ..objectives import AbstractObjective
from ._callbacks import record_metric
from ._result import TrainResult


def strong_types(tree):
    """`tree` with weakly typed arrays (a `jnp.asarray(0.5)` field, a `Dirichlet(0.0)` value)
    made strongly typed, as a compiled chunk returns them: otherwise the second chunk sees
    other input types and compiles again. Tracers pass."""

    def strong(x):
        if isinstance(x, jax.core.Tracer) or not getattr(x, "weak_type", False):
            return x
        return jax.device_put(np.asarray(x))

    return jax.tree_util.tree_map(strong, tree)


def loss_and_state(objective: AbstractObjective, model, batch, state):
    terms, state = objective.terms(model, batch, state)
    return objective.reduce(terms), state


def _where_tree(ok, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)


def _all_finite(tree) -> Array:
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves] or [jnp.bool_(True)]))


def _record(trainer, s, model, state, batch, metrics):
    out = {}
    for m in trainer.metrics:

        def write(buffers, m=m):
            value = record_metric(m, s, model, batch, trainer, state)
            return jax.tree_util.tree_map(
                lambda buf, v: buf.at[s // m.every].set(v.astype(buf.dtype)), buffers, value
            )

        out[m.name] = lax.cond(s % m.every == 0, write, lambda x: x, metrics[m.name])
    return out


def _line_search_values(trainer, opt_state, model_state):
    """`(value, grad)` an optimizer with a line search (`optax.lbfgs`) stored for the point
    it accepted, when the batch is the same at every step (full batch, `Sampler(Fixed(...))`)
    so that they are this step's loss and gradient; else `None`. (A first step stores
    `inf`: then the loss is evaluated.)"""
    source = trainer.source
    same_batch = (isinstance(source, Shuffled) and source.full_batch) or (
        isinstance(source, Sampler) and isinstance(source.sample, Fixed)
    )
    if not same_batch or model_state is not None or trainer.mesh is not None:
        return None
    try:
        value, grads = optax.tree.get(opt_state, "value"), optax.tree.get(opt_state, "grad")
    except KeyError:  # several line searches: no single stored point
        return None
    if value is None or grads is None or not eqx.is_array(value):
        return None
    return value, grads


def _step(trainer, static, key, carry):
    params, model_state, opt_state, source_state, history, metrics, failed, s = carry
    # Optimizers with a line search (`optax.lbfgs`) read the loss and re-evaluate it on the
    # step's batch (`value`, `grad`, `value_fn`); the others ignore these arguments.
    optimizer = optax.with_extra_args_support(trainer.optimizer)

    def on_batch(batch):
        if trainer.mesh is not None:  # data parallel: examples over the first mesh axis
            spec = NamedSharding(trainer.mesh, PartitionSpec(trainer.mesh.axis_names[0]))
            batch = lax.with_sharding_constraint(batch, spec)

        def loss_of(p):
            return loss_and_state(trainer.objective, eqx.combine(p, static), batch, model_state)

        evaluate = jax.value_and_grad(loss_of, has_aux=True)
        stored = _line_search_values(trainer, opt_state, model_state)
        if stored is None:
            (loss, new_state), grads = evaluate(params)
        else:  # the line search evaluated this point last step, on this very batch
            value, stored_grads = stored
            dtype = jax.eval_shape(loss_of, params)[0].dtype
            (loss, new_state), grads = lax.cond(
                jnp.isfinite(value),
                lambda p: ((value.astype(dtype), model_state), stored_grads),
                evaluate,
                params,
            )
        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and counts
            updates, new_opt_state = optimizer.update(
                grads, opt_state, params, value=loss, grad=grads,
                value_fn=lambda p: loss_of(p)[0],
            )  # fmt: skip
        record = _record(trainer, s, eqx.combine(params, static), model_state, batch, metrics)
        return loss, new_state, grads, updates, new_opt_state, record

    (loss, new_state, grads, updates, new_opt_state, metrics), source_state = trainer.source.apply(
        on_batch, key, source_state, s
    )
    new_params = optax.apply_updates(params, updates)
    ok = jnp.isfinite(loss) & _all_finite(grads)
    params = _where_tree(ok, new_params, params)
    opt_state = _where_tree(ok, new_opt_state, opt_state)
    model_state = _where_tree(ok, new_state, model_state)
    history = history.at[s].set(loss.astype(history.dtype))
    failed = jnp.where(ok, failed, s)
    step = jnp.where(ok, s + 1, s)
    return params, model_state, opt_state, source_state, history, metrics, failed, step


def chunk(trainer, result: TrainResult, stop: Array) -> tuple[TrainResult, Array, Array]:
    """Optimizer steps from `result.step` up to `stop` (a traced int).

    **Returns:** `(result, failed, loss)`: the step whose loss or gradient was not finite
    (else `-1`; `result` then holds the state before it) and the last finite loss.
    """
    params, static = trainer.partition(result.model)
    carry = (
        params, result.model_state, result.opt_state,
        trainer.source.init_state(result.key, result.step), result.loss_history,
        result.metrics, jnp.asarray(-1, jnp.int32), result.step,
    )  # fmt: skip
    carry = lax.while_loop(
        lambda c: (c[-1] < stop) & (c[-2] < 0),  # steps left, all finite so far
        lambda c: _step(trainer, static, result.key, c),
        carry,
    )
    params, model_state, opt_state, _, history, metrics, failed, step = carry
    result = TrainResult(
        eqx.combine(params, static), model_state, opt_state, step, result.key, history, metrics
    )
    return result, failed, history[jnp.maximum(step - 1, 0)]


def default_chunk_size(dataset: AbstractDataset) -> int:
    """Examples per chunk of a full loss: about 128 MB of examples."""
    one = jax.eval_shape(dataset.examples, jax.ShapeDtypeStruct((1,), jnp.int32))
    nbytes = sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(one))
    return max(1, min(dataset.num_examples, 2**27 // max(nbytes, 1)))


def full_loss(
    objective: AbstractObjective,
    dataset: AbstractDataset,
    model,
    state=None,
    chunk_size: int = 1,
):
    """The loss over every example of `dataset`, terms computed `chunk_size` at a time
    (`lax.map`), reduced once: the loss of all examples as one batch. A model with state is
    evaluated in inference mode. Traceable (vmap it over models)."""
    if state is not None:
        model = eqx.nn.inference_mode(model)
    n = dataset.num_examples
    if not objective.decomposable:
        return objective(model, dataset.examples(np.arange(n)), state)
    chunks = math.ceil(n / chunk_size)
    index = jnp.minimum(jnp.arange(chunks * chunk_size), n - 1).reshape(chunks, chunk_size)

    terms = lax.map(lambda i: objective.terms(model, dataset.examples(i), state)[0], index)
    terms = jax.tree_util.tree_map(
        lambda t: t.reshape(chunks * chunk_size, *t.shape[2:])[:n], terms
    )
    return objective.reduce(terms)
