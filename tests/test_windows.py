import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax_fd.data import Windows, epoch_batches

S, T, C, N = 3, 7, 2, 5


def _data():
    rng = np.random.default_rng(0)
    state = rng.standard_normal((S, T, C, N)).astype(np.float32)
    forcing = rng.standard_normal((S, T, 2)).astype(np.float32)
    return {"state": state, "forcing": forcing}


@pytest.mark.parametrize("length", [1, 3, T])
def test_gather_every_window_matches_numpy_slicing(length):
    data = _data()
    windows = Windows(data, length)
    assert windows.num_samples == S
    assert windows.num_times == T
    assert windows.windows_per_sample == T - length + 1
    assert windows.num_windows == S * (T - length + 1)
    expected = {k: [] for k in data}
    expected_first = {k: [] for k in data}
    for s in range(S):
        for t in range(T - length + 1):
            for k, v in data.items():
                expected[k].append(v[s, t : t + length])
                expected_first[k].append(v[s, t])
    # Every window once, then an arbitrary tail with repeats in any order.
    index = np.concatenate(
        [np.arange(windows.num_windows), [windows.num_windows - 1, 0, 2, 2]]
    ).astype(np.int32)
    # One compilation for both (filter_jit-ed methods inline into the outer jit).
    batch, first = jax.jit(lambda w, i: (w.gather(i), w.initial(i)))(windows, index)
    for k in data:
        assert batch[k].shape == (index.size, length, *data[k].shape[2:])
        np.testing.assert_array_equal(np.asarray(batch[k]), np.stack(expected[k])[index])
        np.testing.assert_array_equal(np.asarray(first[k]), np.stack(expected_first[k])[index])


def test_locate_is_sample_major():
    windows = Windows(np.zeros((S, T, C, N), np.float32), 3)
    sample, start = windows.locate(np.arange(windows.num_windows, dtype=np.int32))
    expected = [(s, t) for s in range(S) for t in range(T - 3 + 1)]
    assert list(zip(sample.tolist(), start.tolist())) == expected


def test_starts_initial():
    data = _data()
    windows = Windows(data, 4, starts="initial")
    assert windows.windows_per_sample == 1
    assert windows.num_windows == S
    index = np.array([2, 0], dtype=np.int32)
    batch = windows.gather(index)
    np.testing.assert_array_equal(np.asarray(batch["state"]), data["state"][[2, 0], :4])
    np.testing.assert_array_equal(np.asarray(batch["forcing"]), data["forcing"][[2, 0], :4])
    first = windows.initial(index)
    np.testing.assert_array_equal(np.asarray(first["state"]), data["state"][[2, 0], 0])


def test_per_sample():
    coefficient = np.array([0.1, 0.2, 0.3], np.float32)
    velocity = np.arange(S * 2, dtype=np.float32).reshape(S, 2)
    trajectories = np.zeros((S, T, C, N), np.float32)
    windows = Windows(trajectories, 2, per_sample=(coefficient, {"v": velocity}))
    index = np.array([0, 6, 7, 17], dtype=np.int32)  # samples 0, 1, 1, 2
    c, v = windows.gather_per_sample(index)
    np.testing.assert_array_equal(np.asarray(c), coefficient[[0, 1, 1, 2]])
    np.testing.assert_array_equal(np.asarray(v["v"]), velocity[[0, 1, 1, 2]])
    # Without per_sample the structure is the fixed empty tuple.
    plain = Windows(trajectories, 2)
    assert plain.per_sample == ()
    assert jax.tree_util.tree_structure(plain.per_sample) == jax.tree_util.tree_structure(())


def test_gather_under_jit_no_retrace():
    data = _data()
    length = 3
    windows = Windows(data, length, per_sample=np.arange(S, dtype=np.float32))
    traces = 0

    def step(w, index):
        nonlocal traces
        traces += 1
        return w.gather(index), w.initial(index), w.gather_per_sample(index), w.locate(index)

    jitted = jax.jit(step)
    for index in ([0, 1, 2, 3], [14, 9, 5, 0], [3, 3, 3, 3]):
        index = jnp.array(index, dtype=jnp.int32)
        batch, first, coefficient, (sample, start) = jitted(windows, index)
        expected_sample, expected_start = np.divmod(np.asarray(index), T - length + 1)
        np.testing.assert_array_equal(np.asarray(sample), expected_sample)
        np.testing.assert_array_equal(np.asarray(start), expected_start)
        for s, t, w, f in zip(expected_sample, expected_start, batch["state"], first["state"]):
            np.testing.assert_array_equal(np.asarray(w), data["state"][s, t : t + length])
            np.testing.assert_array_equal(np.asarray(f), data["state"][s, t])
        np.testing.assert_array_equal(np.asarray(coefficient), expected_sample.astype(np.float32))
    assert traces == 1


def test_gather_under_jit_builds_only_the_batch():
    samples, times, channels, points, length, batch = 8, 64, 4, 256, 5, 4
    windows = Windows(
        (
            np.zeros((samples, times, channels, points), np.float32),
            np.zeros((samples, times, 2), np.float32),
        ),
        length,
    )
    index = np.arange(batch, dtype=np.int32)
    stats = jax.jit(Windows.gather).lower(windows, index).compile().memory_analysis()
    if stats is None:
        pytest.skip("memory_analysis() is not available on this backend")
    itemsize = 4
    one_window = length * (channels * points + 2) * itemsize
    all_windows = windows.num_windows * one_window  # 480 windows, ~10 MB
    assert stats.output_size_in_bytes <= batch * one_window + 1024
    assert stats.temp_size_in_bytes < batch * one_window
    assert stats.output_size_in_bytes + stats.temp_size_in_bytes < all_windows / 50


def test_index_out_of_range_raises_at_run_time():
    windows = Windows(np.zeros((S, T, C, N), np.float32), 3)
    for bad in (15, -1):
        with pytest.raises(eqx.EquinoxRuntimeError, match=re.escape("must lie in [0, 15)")):
            windows.gather(np.array([0, bad], dtype=np.int32))


def test_epoch_batches():
    # One window count throughout: the permutation compiles once per `num_windows`.
    key = jax.random.key(0)
    batches = epoch_batches(12, 5, key=key)  # remainder of 2 dropped
    assert batches.shape == (2, 5)
    assert batches.dtype == jnp.int32
    flat = np.asarray(batches).ravel()
    assert len(set(flat.tolist())) == flat.size  # at most once per epoch
    assert set(flat.tolist()) <= set(range(12))

    divisible = np.asarray(epoch_batches(12, 4, key=key))
    assert divisible.shape == (3, 4)
    assert sorted(divisible.ravel().tolist()) == list(range(12))
    np.testing.assert_array_equal(divisible.ravel()[:10], flat)  # same key, same permutation

    same = np.asarray(epoch_batches(12, 4, key=jax.random.key(0)))
    np.testing.assert_array_equal(divisible, same)
    other = np.asarray(epoch_batches(12, 4, key=jax.random.key(1)))
    assert not np.array_equal(divisible, other)
    assert sorted(other.ravel().tolist()) == list(range(12))

    jitted = jax.jit(epoch_batches, static_argnums=(0, 1))
    np.testing.assert_array_equal(np.asarray(jitted(12, 4, key=key)), divisible)


def test_epoch_batches_full_batch_warning():
    with pytest.warns(UserWarning, match=re.escape("training full-batch with 12 windows")):
        batches = epoch_batches(12, 16, key=jax.random.key(0))
    assert batches.shape == (1, 12)
    assert sorted(np.asarray(batches).ravel().tolist()) == list(range(12))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"trajectories": {}},
            "`trajectories` must hold at least one array of shape (samples, time, channels, "
            "*spatial), got a PyTree with no leaves",
        ),
        (
            {"trajectories": {"a": np.zeros((S, T, C)), "b": np.zeros((S, T))}},
            "`trajectories` leaves must have shape (samples, time, channels, *spatial) (at least "
            "3 axes), got shape (3, 7) at ['b']",
        ),
        (
            {"trajectories": (np.zeros((S, T, C)), np.zeros((S, T + 1, C)))},
            "`trajectories` leaves must agree on (samples, time), got shape (3, 7, 2) at [0] "
            "and shape (3, 8, 2) at [1]",
        ),
        (
            {"trajectories": (np.zeros((S, T, C)), np.zeros((S + 1, T, 1)))},
            "got shape (3, 7, 2) at [0] and shape (4, 7, 1) at [1]",
        ),
        (
            {"trajectories": np.zeros((S, T, C)), "length": T + 1},
            "the rollout is longer than the trajectories; it needs windows of 8 time levels "
            "but the trajectories have 7",
        ),
        (
            {"trajectories": np.zeros((S, T, C)), "length": 0},
            "`length` must be an int >= 1, got 0",
        ),
        (
            {"trajectories": np.zeros((S, T, C)), "length": 2.0},
            "`length` must be an int >= 1, got 2.0",
        ),
        (
            {"trajectories": np.zeros((S, T, C)), "starts": "last"},
            "`starts` must be one of ('all', 'initial'), got 'last'",
        ),
        (
            {"trajectories": np.zeros((S, T, C)), "per_sample": {"k": np.zeros(S + 1)}},
            "`per_sample` leaves must have a leading samples axis of size 3 (as `trajectories`), "
            "got shape (4,) at ['k']",
        ),
        (
            {"trajectories": np.zeros((S, T, C)), "per_sample": (np.zeros(S), 1.0)},
            "got shape () at [1]",
        ),
    ],
)
def test_windows_errors(kwargs, message):
    kwargs = {"length": 2, **kwargs}
    trajectories = kwargs.pop("trajectories")
    length = kwargs.pop("length")
    with pytest.raises(ValueError, match=re.escape(message)):
        Windows(trajectories, length, **kwargs)


def test_index_errors():
    windows = Windows(np.zeros((S, T, C), np.float32), 2)
    with pytest.raises(ValueError, match=re.escape("`index` must be a 1D batch of flat window")):
        windows.gather(jnp.zeros((2, 2), jnp.int32))
    with pytest.raises(ValueError, match=re.escape("got shape ()")):
        windows.initial(jnp.int32(0))
    with pytest.raises(TypeError, match=re.escape("`index` must be an integer array, got dtype")):
        windows.gather(jnp.zeros(2))


@pytest.mark.parametrize(
    ("num_windows", "batch_size", "message"),
    [
        (10, 0, "`batch_size` must be an int >= 1, got 0"),
        (10, 2.0, "`batch_size` must be an int >= 1, got 2.0"),
        (0, 2, "`num_windows` must be an int >= 1, got 0"),
    ],
)
def test_epoch_batches_errors(num_windows, batch_size, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        epoch_batches(num_windows, batch_size, key=jax.random.key(0))
