"""Rollout-length curricula in one call: equal to continuing results by hand, stage by stage."""

import functools
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainax_fd import configurations as C, trainers as T

OPTIMIZER = optax.adam(1e-2)
KEY = jax.random.key(3)


class Stencil3(eqx.Module):
    w: jax.Array

    def __call__(self, u):
        return self.w[0] * jnp.roll(u, 1, -1) + self.w[1] * u + self.w[2] * jnp.roll(u, -1, -1)


def target(u):
    return 0.2 * jnp.roll(u, 1, -1) + 0.7 * u + 0.1 * jnp.roll(u, -1, -1)


@pytest.fixture(scope="module")
def data():
    levels = [np.random.default_rng(4).normal(size=(6, 1, 12)).astype(np.float32)]
    for _ in range(6):
        levels.append(np.asarray(target(levels[-1])))
    return np.stack(levels, axis=1)  # (6, 7, 1, 12)


MODEL = Stencil3(jnp.array([0.1, 0.6, 0.2]))


def test_a_curriculum_equals_continuing_by_hand(data):
    result = T.curriculum(data, OPTIMIZER, MODEL, key=KEY, rollout_steps=(1, 2, 3),
                          num_steps=(4, 3, 2), batch_size=4, progress=False)  # fmt: skip
    manual = T.Trainer(data, C.Supervised(1), OPTIMIZER, num_steps=4, batch_size=4)(
        MODEL, key=KEY, progress=False
    )
    for n, stop in ((2, 7), (3, 9)):
        trainer = T.Trainer(data, C.Supervised(n), OPTIMIZER, num_steps=stop, batch_size=4)
        manual = trainer(manual, progress=False)
    assert int(result.step) == 9 and result.loss_history.shape == (9,)
    np.testing.assert_array_equal(result.model.w, manual.model.w)
    np.testing.assert_array_equal(result.loss_history, manual.loss_history)
    # the stages' trainers, and a curriculum continuing a result: 2 more stages of 2 steps
    stages = T.curriculum_trainers(data, OPTIMIZER, rollout_steps=(1, 2, 3), num_steps=(4, 3, 2),
                                   batch_size=4)  # fmt: skip
    assert [t.num_steps for t in stages] == [4, 7, 9]
    assert [t.configuration.num_rollout_steps for t in stages] == [1, 2, 3]
    more = T.curriculum(data, OPTIMIZER, result, rollout_steps=(3, 4), num_steps=2, batch_size=4,
                        progress=False)  # fmt: skip
    assert int(more.step) == 13
    np.testing.assert_array_equal(more.loss_history[:9], result.loss_history)


def test_a_curriculum_of_diverted_chains(data):
    diverted = functools.partial(C.DivertedChain, target)
    result = T.curriculum(data, OPTIMIZER, MODEL, key=KEY, rollout_steps=(1, 2), num_steps=3,
                          configuration=diverted, batch_size=4, progress=False)  # fmt: skip
    first = T.Trainer(data, C.DivertedChain(target, 1), OPTIMIZER, num_steps=3, batch_size=4)
    second = T.Trainer(data, C.DivertedChain(target, 2), OPTIMIZER, num_steps=6, batch_size=4)
    manual = second(first(MODEL, key=KEY, progress=False), progress=False)
    np.testing.assert_array_equal(result.model.w, manual.model.w)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rollout_steps": ()}, ValueError,
         "`rollout_steps` must be a non-empty sequence of ints >= 1 (e.g. `range(1, 6)`), got ()."),
        ({"rollout_steps": (1, 0)}, ValueError, "`rollout_steps` must be an int >= 1, got 0."),
        ({"num_steps": (2,)}, ValueError,
         "`num_steps` must be an int (steps of every stage) or one int per stage (2), got (2,)."),
        ({"num_steps": 0}, ValueError, "`num_steps` must be an int >= 1, got 0."),
        ({"configuration": 3}, TypeError,
         "`configuration` must be a function `num_rollout_steps -> configuration` (e.g. "
         "`Supervised`), got int."),
        ({"configuration": lambda n: n}, TypeError,
         "`configuration(1)` must return a configuration (e.g. `Supervised(1)`), got int."),
    ],
)  # fmt: skip
def test_errors(data, kwargs, error, message):
    arguments = {"rollout_steps": (1, 2), "num_steps": 2, "batch_size": 4, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        T.curriculum_trainers(data, OPTIMIZER, **arguments)
