"""XLA:CPU's compile path, shared by the trainer, sweeps and landscapes."""

import jax

# XLA:CPU's legacy loop emitters compile the many small fusions of a training step about
# twice as fast as its newer fusion emitters, and run them as fast; LLVM at -O1 instead of
# -O3 compiles them ~25 % faster again, and runs a small stepper's steps faster, a ConvNet's
# as fast (its convolutions are library calls). See benchmarks/README.md.
CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}


def on_cpu(holder) -> bool:
    """Whether the data of `holder` (anything with `windows`: a `Trainer`, a `FullLoss`) lives
    on CPU devices (then the CPU compile path is used)."""
    leaf = jax.tree_util.tree_leaves(holder.windows.trajectories)[0]
    return all(d.platform == "cpu" for d in leaf.devices())
