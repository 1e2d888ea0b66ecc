"""exponax interop: its steppers and initial-condition generators wherever the package takes a
reference stepper or initial states (data, diverted and mixed chains, residua, landscapes,
evaluation), and inside a trained model with its complex coefficients fixed."""

import importlib.metadata

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainax_fd import (
    arch,
    configurations as C,
    evaluation as E,
    landscape,
    reference,
    trainers as T,
    trajectories,
)
from trainax_fd.reproductions import _apebench as A

ex = pytest.importorskip("exponax")

KEY = jax.random.key(0)


@pytest.fixture(autouse=True)
def standard_promotion():
    """exponax mixes Python complex numbers and float arrays (not strict-clean)."""
    with jax.numpy_dtype_promotion("standard"):
        yield


@pytest.fixture(scope="module")
def setup():
    with jax.numpy_dtype_promotion("standard"):
        stepper = ex.stepper.generic.DifficultyLinearStepper(1, 32, linear_difficulties=(0.0, -2.0))
        coarse = ex.stepper.generic.DifficultyLinearStepper(1, 32, linear_difficulties=(0.0, -1.0))
        generator = ex.ic.RandomTruncatedFourierSeries(1, cutoff=3, max_one=True)
        u0 = reference.initial_conditions(generator, 32, 6, key=KEY)
        data = trajectories(stepper, u0, 6)
    return stepper, coarse, generator, u0, data


def test_initial_conditions_and_data(setup):
    stepper, _, generator, u0, data = setup
    keys = jax.random.split(KEY, 6)
    expected = jnp.stack([generator(32, key=k) for k in keys])
    np.testing.assert_allclose(u0, expected, atol=1e-6)
    assert data.shape == (6, 7, 1, 32)
    np.testing.assert_allclose(data[:, 1:], jax.vmap(ex.rollout(stepper, 6))(u0), atol=1e-6)
    # the package's exact difficulty-form stepper is exponax's
    ours = A.DifficultyLinear(32, (0.0, -2.0, 0.5))
    theirs = ex.stepper.generic.DifficultyLinearStepper(1, 32, linear_difficulties=(0.0, -2.0, 0.5))
    np.testing.assert_allclose(jax.vmap(ours)(u0), jax.vmap(theirs)(u0), atol=1e-5)
    if importlib.metadata.version("exponax") == "0.1.0":  # the release APEBench pins
        gen = ex.ic.RandomMultiChannelICGenerator(
            [ex.ic.RandomTruncatedFourierSeries(1, cutoff=5, max_one=True)]
        )
        expected = ex.build_ic_set(gen, num_points=160, num_samples=4, key=jax.random.PRNGKey(0))
        np.testing.assert_array_equal(A.apebench_initial_set(160, 4, seed=0), expected)


def test_exponax_steppers_as_references(setup):
    stepper, _, _, _, data = setup
    net = arch.ConvNet(1, 1, 1, width=4, depth=2, key=KEY)
    configurations = {
        "diverted": C.DivertedChain(stepper, 2),
        "mixed": C.MixChain(stepper, 1, 1),
        "residuum": C.Residuum(C.StepperResiduum(stepper), 2),
    }
    window = data[0, :3]
    expected = {  # the per-window losses by hand
        "diverted": jnp.mean((net(window[0]) - stepper(window[0])) ** 2)
        + jnp.mean((net(net(window[0])) - stepper(net(window[0]))) ** 2),
        "mixed": jnp.mean((net(window[0]) - window[1]) ** 2)
        + jnp.mean((stepper(net(window[0])) - window[2]) ** 2),
    }
    optimizer = optax.adam(1e-3)
    for name, config in configurations.items():
        if name in expected:
            np.testing.assert_allclose(config(net, window), expected[name], rtol=1e-5)
        result = T.Trainer(data, config, optimizer, num_steps=2, batch_size=3)(
            net, key=KEY, progress=False
        )
        assert np.isfinite(result.loss_history).all()
    loss = landscape.FullLoss(data, configurations["diverted"])
    models = eqx.filter_vmap(lambda k: arch.ConvNet(1, 1, 1, width=4, depth=2, key=k))(
        jax.random.split(KEY, 2)
    )
    assert eqx.filter_vmap(loss)(models).shape == (2,)
    exact = E.evaluate(stepper, data, metrics=(E.nRMSE(), E.correlation()))
    assert float(exact.gmean[0]) < 1e-5 and int(exact.correlation_time) == 7


def test_a_correction_network_around_an_exponax_stepper(setup):
    _, coarse, _, _, data = setup
    net = arch.ConvNet(1, 1, 1, width=4, depth=2, key=KEY)
    model = arch.Corrected(coarse, net, "sequential_with_bypass")
    trainer = T.Trainer(data, C.Supervised(2), optax.adam(1e-2), num_steps=20, batch_size=3,
                        trainable=model.trainable)  # fmt: skip
    result = trainer(model, key=KEY, progress=False)
    before = coarse._integrator._exp_term
    np.testing.assert_array_equal(result.model.physics._integrator._exp_term, before)
    assert not any(jnp.iscomplexobj(x) for x in jax.tree_util.tree_leaves(result.opt_state))
    assert result.loss_history[-1] < result.loss_history[0]
