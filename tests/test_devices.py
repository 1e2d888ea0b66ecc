"""Data-parallel training and sharded sweeps on 4 simulated CPU devices (in a subprocess:
the device count is fixed when JAX starts)."""

import os
import pathlib
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, pathlib
    import jax, jax.numpy as jnp, numpy as np, optax, equinox as eqx
    from jax.sharding import Mesh, PartitionSpec
    import trainax_fd as tfd
    from trainax_fd.sweeps import sweep

    dump = pathlib.Path(os.environ["HLO_DUMP"])  # XLA writes every compiled program there


    def compiled_programs():
        return set(dump.glob("*after_optimizations.txt"))

    assert jax.device_count() == 4, jax.devices()
    key = jax.random.key(0)
    data = jax.random.normal(key, (4, 10, 1, 16))
    net = eqx.nn.Conv1d(1, 1, 3, padding=1, padding_mode="CIRCULAR", key=key)
    config = tfd.configurations.Supervised(2)
    mesh = Mesh(np.array(jax.devices()), ("data",))
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2)

    def trainer(**kw):
        return tfd.trainers.Trainer(data, config, opt, **{"num_steps": 12, "batch_size": 8, **kw})

    single = trainer()(net, key=key, progress=False)
    parallel_trainer = trainer(mesh=mesh)
    before = compiled_programs()
    parallel = parallel_trainer(net, key=key, progress=False)
    programs = compiled_programs() - before
    np.testing.assert_allclose(parallel.loss_history, single.loss_history, rtol=1e-5)
    np.testing.assert_allclose(parallel.stepper.weight, single.stepper.weight, rtol=1e-5)
    assert parallel.stepper.weight.sharding.spec == PartitionSpec()  # replicated
    # the batch really is split: a program compiled for it sums across devices (the gradients)
    assert programs and any("all-reduce" in p.read_text() for p in programs), programs

    rates = {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2]}
    alone = sweep(trainer(), net, key=key, hyperparams=rates, progress=False)
    sharded = sweep(trainer(), net, key=key, hyperparams=rates, mesh=mesh, progress=False)
    np.testing.assert_allclose(
        sharded.results.loss_history, alone.results.loss_history, rtol=1e-5
    )
    leaf = sharded.results.stepper.weight
    assert leaf.sharding.spec == PartitionSpec("data"), leaf.sharding
    assert len(leaf.sharding.device_set) == 4

    for call, message in [
        (lambda: trainer(mesh=mesh, batch_size=6), "batch_size (6) must be divisible"),
        (lambda: sweep(trainer(), net, key=key, num_members=3, mesh=mesh), "(3) must be"),
    ]:
        try:
            call()
        except ValueError as e:
            assert message in str(e), str(e)
        else:
            raise AssertionError(message)
    print("ok")
    """
)


def test_data_parallel_and_sharded_sweep_equal_single_device(tmp_path: pathlib.Path):
    flags = f"--xla_force_host_platform_device_count=4 --xla_dump_to={tmp_path}"
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu", HLO_DUMP=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
