"""From what a user passes (trajectories, a data set, a source; a configuration, an objective,
a function) to a data source and an objective: one place for the Trainer and `FullLoss`."""

from collections.abc import Callable

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..data import AbstractDataset, AbstractDataSource, Shuffled, Windows
from ..objectives import AbstractObjective, WindowObjective, as_objective


def _check_configuration_fits(objective: AbstractObjective, windows: Windows) -> None:
    if isinstance(objective, WindowObjective):
        need = objective.configuration.window_length
        if windows.length < need:
            raise ValueError(
                f"`data` windows must hold at least {need} time levels for "
                f"{type(objective.configuration).__name__}, got windows of {windows.length}."
            )


def build_dataset(
    data, objective: AbstractObjective, *, starts: str, window_length: int | None
) -> AbstractDataset | AbstractDataSource:
    """A data set (or the source as given) for `data` under `objective`."""
    if isinstance(data, AbstractDataSource | AbstractDataset):
        if starts != "all" or window_length is not None:
            raise ValueError(
                "`starts` and `window_length` apply to trajectories only; `data` is a "
                f"{type(data).__name__}, got starts={starts!r}, window_length={window_length!r}."
            )
        if isinstance(data, Windows):
            _check_configuration_fits(objective, data)
        return data
    if not isinstance(objective, WindowObjective):
        raise TypeError(
            "`data` given as trajectories needs a configuration as `objective` (windows of "
            "trajectories feed configurations); for other objectives pass a data set "
            "(`trainax_fd.data.Pairs`, `Windows`) or a source (`Sampler`), got objective "
            f"{type(objective).__name__}."
        )
    configuration = objective.configuration
    length = configuration.window_length if window_length is None else window_length
    windows = Windows(data, length, starts=starts)
    _check_configuration_fits(objective, windows)
    if configuration.ic_only:  # keep only the states that start a window
        last = windows.windows_per_sample
        windows = Windows(jax.tree_util.tree_map(lambda x: x[:, :last], windows.trajectories), 1)
    return windows


def build_source(
    data,
    objective,
    *,
    batch_size: int | None,
    starts: str,
    window_length: int | None,
    batching,
    reduction: Callable,
    mesh: Mesh | None,
) -> tuple[AbstractDataSource, AbstractObjective]:
    """The Trainer's `(source, objective)`."""
    objective = as_objective(objective, reduction)
    if mesh is not None:  # the data replicated over the mesh; batches are sharded in the step
        replicated = NamedSharding(mesh, PartitionSpec())
        if not isinstance(data, AbstractDataSource | AbstractDataset):
            data = jax.device_put(data, replicated)
    dataset = build_dataset(data, objective, starts=starts, window_length=window_length)
    if isinstance(dataset, AbstractDataSource):
        if batch_size is not None:
            raise ValueError(
                f"`batch_size` is set by the data source {type(dataset).__name__}; got "
                f"batch_size={batch_size!r} as well."
            )
        source = dataset
    else:
        if batch_size is None:
            raise ValueError(
                "`batch_size` must be given (an int >= 1) to cut the data into batches, got None."
            )
        source = Shuffled(dataset, batch_size, batching=batching)
    if mesh is not None and isinstance(source, Shuffled):
        size = mesh.shape[mesh.axis_names[0]]
        n, b = source.num_examples, source.batch_size
        sizes = [("batch_size", b), ("the last batch of an epoch", batching.last_batch_size(n, b))]
        for name, value in sizes:
            if value % size:
                raise ValueError(
                    f"{name} ({value}) must be divisible by the size of `mesh` axis "
                    f"{mesh.axis_names[0]!r} ({size}) for data-parallel training."
                )
    return source, objective
