"""Checkpoints that cannot lie: exactly the file written, checksummed, refused with a message
naming the file and the problem (empty, zeroed, cut, altered, foreign, another architecture),
restorable into a longer run, and no temporary file left behind by a killed write."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainax_fd import configurations as C, trainers as T
from trainax_fd.trainers._result import MAGIC

OPTIMIZER = optax.adam(1e-2)


class Stencil3(eqx.Module):
    w: jax.Array

    def __call__(self, u):
        left, right = jnp.roll(u, 1, -1), jnp.roll(u, -1, -1)
        return self.w[0] * left + self.w[1] * u + self.w[2] * right + 0.1 * jnp.tanh(u)


class Stencil3Bias(eqx.Module):
    w: jax.Array
    b: jax.Array

    def __call__(self, u):
        return Stencil3(self.w)(u) + self.b


STEPPER = Stencil3(jnp.array([0.1, 0.6, 0.2]))
KEY = jax.random.key(7)


@pytest.fixture(scope="module")
def data():
    """(samples=3, time=13, channels=1, 16) float32 trajectories of a 3-point stencil."""
    u = np.random.default_rng(0).normal(size=(3, 1, 16)).astype(np.float32)
    levels = [u]
    for _ in range(12):
        u = 0.2 * np.roll(u, 1, -1) + 0.7 * u + 0.1 * np.roll(u, -1, -1)
        levels.append(u)
    return np.stack(levels, axis=1)


def make(data, **kwargs):
    options = dict(num_steps=7, batch_size=8, chunk_size=3)
    options.update(kwargs)
    return T.Trainer(data, C.Supervised(2), options.pop("optimizer", OPTIMIZER), **options)


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    """A real checkpoint after 7 steps (with a metric), its bytes, and the trainer."""
    path = tmp_path_factory.mktemp("saved") / "run.ckpt"
    trainer = make(data, callbacks=[T.WeightNorm(2), T.Checkpoint(path, 7)])
    result = trainer(STEPPER, key=KEY, progress=False)
    return trainer, result, path.read_bytes()


def write(path, content: bytes):
    path.write_bytes(content)
    return path


def refused(trainer, path, message, model=STEPPER, detail=""):
    """`restore` raises a `ValueError` starting with the path and `message`, holding `detail`."""
    with pytest.raises(ValueError, match=re.escape(f"`path` {str(path)!r} {message}")) as error:
        trainer.restore(path, model)
    assert detail in str(error.value)


def test_round_trip_reads_exactly_the_path_written(data, saved, tmp_path):
    trainer, result, content = saved
    old = make(
        data, num_steps=3, callbacks=[T.WeightNorm(2), T.Checkpoint(tmp_path / "run.eqx", 3)]
    )
    old(STEPPER, key=KEY, progress=False)  # an older `run.eqx` next to a suffix-less `run`
    path = write(tmp_path / "run", content)
    restored = trainer.restore(path, STEPPER)
    assert int(restored.step) == 7 and int(trainer.restore(tmp_path / "run.eqx", STEPPER).step) == 3
    jax.tree_util.tree_map(np.testing.assert_array_equal, restored, result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.eqx"]  # no suffix added
    T.save_result(tmp_path / "again", result)
    assert (tmp_path / "again").read_bytes() == content  # deterministic bytes


def test_altered_bytes_fail_the_checksum(saved, tmp_path):
    trainer, _, content = saved
    for where in (len(content) - 5, len(MAGIC) + 40, len(MAGIC) + 25):  # payload, header, digest
        altered = bytearray(content)
        altered[where] ^= 0x01
        path = write(tmp_path / f"altered_{where}.ckpt", bytes(altered))
        refused(trainer, path, "fails its checksum: its bytes were altered after it was written")


def test_broken_files_are_refused_naming_the_path_and_the_problem(saved, tmp_path):
    trainer, result, content = saved
    cases = {
        "empty": (b"", "is empty (0 bytes), not a checkpoint."),
        "zeroed": (bytes(len(content)), f"holds only zero bytes ({len(content)}), not a"),
        "cut": (content[: len(content) // 2], "is a truncated checkpoint: "),
        "cut_prefix": (content[:40], "is a truncated checkpoint (40 bytes, shorter than the"),
        "cut_magic": (content[:5], "is a truncated checkpoint (5 bytes)."),
        "longer": (content + b"\0", "is a checkpoint with extra bytes: "),
        "text": (b"step,loss\n0,1.0\n", "is not a trainax_fd checkpoint (it does not start"),
    }
    for name, (bytes_, message) in cases.items():
        refused(trainer, write(tmp_path / name, bytes_), message)
    version = bytearray(content)
    version[len(MAGIC)] = 2
    refused(trainer, write(tmp_path / "v2", bytes(version)), "is a checkpoint of format version 2")
    plain = tmp_path / "plain.eqx"
    eqx.tree_serialise_leaves(plain, result)  # Equinox's format without the header
    refused(trainer, plain, "is not a trainax_fd checkpoint")
    refused(trainer, tmp_path, "is a folder, not a checkpoint file.")
    with pytest.raises(FileNotFoundError, match=re.escape("does not exist")):
        trainer.restore(tmp_path / "missing", STEPPER)


def test_another_architecture_is_a_value_error_saying_what_differs(data, saved, tmp_path):
    trainer, _, content = saved
    path = write(tmp_path / "run.ckpt", content)
    other = "holds a checkpoint of another architecture than the template (the model, state"
    wide = Stencil3(jnp.zeros(5))
    refused(trainer, path, other, wide, "`model.w` is float32[3] in the file, float32[5] in the")
    biased = Stencil3Bias(jnp.zeros(3), jnp.zeros(()))
    refused(trainer, path, other, biased, "`model.b` is only in the template")
    sgd = make(data, optimizer=optax.sgd(1e-2, momentum=0.9), callbacks=[T.WeightNorm(2)])
    refused(sgd, path, other, STEPPER, "`opt_state[0].count` is only in the file")
    with pytest.raises(ValueError, match=re.escape("`model.w` is float32[3] in the file")):
        T.load_result(path, trainer.init(wide, key=KEY))


def test_checkpoint_validates_its_path_when_built(tmp_path):
    (tmp_path / "a_file").write_text("")
    blocked = tmp_path / "a_file" / "run.ckpt"
    with pytest.raises(
        ValueError,
        match=re.escape(f"`path` {str(blocked)!r}: its folder {str(blocked.parent)!r} cannot be"),
    ):
        T.Checkpoint(blocked, 2)
    with pytest.raises(
        ValueError, match=re.escape(f"`path` {str(tmp_path)!r} is a folder; it must name a file.")
    ):
        T.Checkpoint(tmp_path, 2)
    with pytest.raises(ValueError, match=re.escape(f"`path` {str(tmp_path)!r} is a folder")):
        T.save_result(tmp_path, None)
    with pytest.raises(TypeError, match=re.escape("`path` must be a non-empty str")):
        T.Checkpoint("", 2)
    (tmp_path / ".run.ckpt.tmp").mkdir()  # its temporary file cannot be written
    with pytest.raises(
        ValueError, match=re.escape(f"`path` {str(tmp_path / 'run.ckpt')!r} cannot be written (")
    ):
        T.Checkpoint(tmp_path / "run.ckpt", 2)
    with pytest.raises(
        ValueError, match=re.escape(f"`folder` {str(blocked.parent / 'nets')!r} cannot be created")
    ):
        T.SaveStepper(blocked.parent / "nets", "net", 2)
    with pytest.raises(ValueError, match=re.escape("`file_name` must be a non-empty string")):
        T.SaveStepper(tmp_path, "", 2)
    nested = tmp_path / "new" / "folders" / "run.ckpt"
    T.Checkpoint(nested, 2)
    assert nested.parent.is_dir() and not list(nested.parent.iterdir())  # made, nothing left


def test_restore_into_a_longer_run_continues_as_in_memory(data, tmp_path):
    path = tmp_path / "run.ckpt"
    metrics = [T.WeightNorm(2), T.LossMetric(3)]
    short = make(data, callbacks=[*metrics, T.Checkpoint(path, 7)])(
        STEPPER, key=KEY, progress=False
    )
    longer = make(data, num_steps=12, callbacks=metrics)
    in_memory = longer(short, progress=False)
    restored = longer.restore(path, STEPPER)
    assert restored.loss_history.shape == (12,) and restored.metrics["weight_norm"].shape == (6,)
    jax.tree_util.tree_map(
        np.testing.assert_array_equal, longer(restored, progress=False), in_memory
    )
    # a metric the saved run did not record starts empty; one it recorded and this trainer
    # does not is dropped, as when continuing in memory
    other = make(data, num_steps=12, callbacks=[T.GradNorm(4)])
    resumed = other.restore(path, STEPPER)
    assert set(resumed.metrics) == {"grad_norm"} and int(resumed.step) == 7
    jax.tree_util.tree_map(
        np.testing.assert_array_equal, other(resumed, progress=False), other(short, progress=False)
    )
    shorter = make(data, num_steps=5, callbacks=metrics)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"`path` {str(path)!r} holds a run of 7 steps, more than this trainer's `num_steps` (5)"
        ),
    ):
        shorter.restore(path, STEPPER)


def test_non_finite_loss_at_step_zero_still_writes_the_checkpoint(data, tmp_path):
    path = tmp_path / "last_good.ckpt"
    broken = Stencil3(jnp.array([0.1, jnp.nan, 0.2]))  # the first loss is already nan
    trainer = make(data, callbacks=[T.Checkpoint(path, 100)])
    with pytest.raises(
        T.NonFiniteLossError, match=re.escape("Non-finite loss or gradient at step 0")
    ):
        trainer(broken, key=KEY, progress=False)
    saved = trainer.restore(path, STEPPER)
    assert int(saved.step) == 0 and np.isnan(saved.loss_history).all()
    np.testing.assert_array_equal(saved.stepper.w, broken.w)


def test_stale_temporary_file_is_replaced_or_removed(saved, tmp_path):
    _, result, _ = saved
    path, stale = tmp_path / "run.ckpt", tmp_path / ".run.ckpt.tmp"
    stale.write_bytes(b"\0" * 1000)
    T.Checkpoint(path, 2)
    assert not stale.exists()
    stale.write_bytes(b"\0" * 1000)
    T.save_result(path, result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]


WRITER = textwrap.dedent(
    """
    import sys
    import jax.numpy as jnp
    from trainax_fd import trainers as T

    result = T.TrainResult(
        model=jnp.arange(16_000_000, dtype=jnp.float32), model_state=None, opt_state=(),
        step=jnp.asarray(3), key=jnp.zeros(2, jnp.uint32),
        loss_history=jnp.zeros(4, jnp.float32), metrics={},
    )
    T.save_result(sys.argv[1], result)
    print("saved", flush=True)
    while True:
        T.save_result(sys.argv[1], result)
    """
)


def test_a_write_killed_midway_leaves_no_temporary_file(tmp_path):
    path, tmp = tmp_path / "big.ckpt", tmp_path / ".big.ckpt.tmp"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    for _ in range(20):  # until the kill lands during a write (nearly always the first time)
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=env
        )
        try:
            assert child.stdout.readline() == b"saved\n"
            deadline = time.monotonic() + 30
            while not tmp.exists() and time.monotonic() < deadline:
                time.sleep(0.001)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
        if tmp.exists():
            break
    assert tmp.exists() and child.returncode == -signal.SIGKILL
    like = T.TrainResult(
        model=jax.ShapeDtypeStruct((16_000_000,), jnp.float32), model_state=None, opt_state=(),
        step=jnp.asarray(0), key=jnp.zeros(2, jnp.uint32),
        loss_history=jnp.zeros(4, jnp.float32), metrics={},
    )  # fmt: skip
    restored = T.load_result(path, like)  # the last complete write, intact
    assert int(restored.step) == 3 and float(restored.model[-1]) == 15_999_999
    T.Checkpoint(path, 1)  # resuming with a checkpoint of the same path removes the leftover
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.ckpt"]
    tmp.write_bytes(b"partial")  # and so does the next write
    T.save_result(path, restored)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.ckpt"]


def test_save_stepper_writes_plain_equinox_files(data, tmp_path):
    make(data, callbacks=[T.SaveStepper(tmp_path / "nets", "net", 4)])(
        STEPPER, key=KEY, progress=False
    )
    assert sorted(p.name for p in (tmp_path / "nets").iterdir()) == ["net_0.eqx", "net_4.eqx"]
    net = eqx.tree_deserialise_leaves(tmp_path / "nets" / "net_0.eqx", STEPPER)
    np.testing.assert_array_equal(net.w, STEPPER.w)
