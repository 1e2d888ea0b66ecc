"""`python -m trainax_fd.reproductions.pinn`: physics-informed networks on the package's
autodiff tools. The original examples' derivatives; `-Δu = f` on the unit square with the
manufactured solution `u = sin(πx) sin(πy)`, boundary values as a penalty and imposed exactly
(Adam, then L-BFGS), against the exact solution and the package's finite-difference solution;
a disk with Dirichlet data on its lower half and Neumann data on its upper half. Prints what it
did and writes two figures.

The defaults are small; `--full` takes the notebook's sizes (a 4 x 50 tanh network, 2000
interior and 400 boundary points, 2000 Adam and 3000 L-BFGS steps with a history of 100)."""

import argparse
import functools
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import autodiff as ad
from ..data import Sampler
from ..trainers import Trainer, TrainResult
from ._cli import fill_sizes

SQUARE = ad.Box([0.0, 0.0], [1.0, 1.0])
DISK = ad.Ball([0.0, 0.0], 1.0)

#: `(small, full)` value of every size option.
PROFILES = {
    "width": (32, 50),
    "depth": (3, 4),
    "interior": (400, 2000),
    "boundary": (100, 400),
    "adam_steps": (400, 2000),
    "lbfgs_steps": (400, 3000),
    "fd_size": (63, 127),
}


def poisson_exact(x):
    """The manufactured solution `sin(πx) sin(πy)` at one point `(2,)`."""
    return jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])


def poisson_source(x):
    """`f = -Δu = 2π² sin(πx) sin(πy)`."""
    return 2 * jnp.pi**2 * poisson_exact(x)


def poisson_residual(u, x):
    """`-Δu - f` at one interior point."""
    return -ad.laplacian(u, x) - poisson_source(x)


def disk_exact(x):
    """The disk problem's solution `xy + sin(x + 2y)` at one point `(2,)`."""
    return x[0] * x[1] + jnp.sin(x[0] + 2 * x[1])


def disk_source(x):
    """`f = -Δu`, from the exact solution by autodiff."""
    return -ad.laplacian(disk_exact, x)


def disk_flux(x):
    """The outward normal derivative of the exact solution at a boundary point."""
    return jnp.dot(ad.gradient(disk_exact, x), DISK.boundary.normal(x))


def network(key, width: int = 50, depth: int = 4, dim: int = 2) -> eqx.nn.MLP:
    """A tanh MLP `(dim,) -> scalar` with `depth` hidden layers of `width`, Glorot-normal
    weights and zero biases (DeepXDE's "Glorot normal" initialisation)."""
    net = eqx.nn.MLP(dim, "scalar", width, depth, activation=jnp.tanh, key=key)
    init = jax.nn.initializers.glorot_normal()
    keys = jax.random.split(key, len(net.layers))
    layers = tuple(
        eqx.tree_at(
            lambda lin: (lin.weight, lin.bias), layer,
            (init(k, layer.weight.shape, layer.weight.dtype), jnp.zeros_like(layer.bias)),
        )
        for k, layer in zip(keys, net.layers)
    )  # fmt: skip
    return eqx.tree_at(lambda n: n.layers, net, layers)


def poisson(
    boundary: str, *, interior: int, boundary_points: int, weight: float = 100.0,
    method: str = "halton",
) -> tuple[ad.PINN, ad.Collocation]:  # fmt: skip
    """The manufactured Poisson problem: `(objective, point sets)`.

    `boundary="penalty"`: `u = 0` as a penalty of weight `weight` on `boundary_points`
    points; `"exact"`: `u = 4x(1-x)y(1-y) N(x)` (the square's distance function), interior
    points only."""
    points = ad.Points(SQUARE, interior, method=method)
    if boundary == "exact":
        objective = ad.PINN(poisson_residual, ansatz=ad.ExactDirichlet(SQUARE))
        return objective, ad.Collocation(points)
    if boundary != "penalty":
        raise ValueError(f"`boundary` must be 'penalty' or 'exact', got {boundary!r}.")
    objective = ad.PINN(poisson_residual, [ad.Dirichlet(0.0)], weights=[1.0, weight])
    edge = ad.Points(SQUARE.boundary, boundary_points, method=method)
    return objective, ad.Collocation(points, edge)


def disk(*, interior: int, boundary_points: int, weight: float = 10.0, method: str = "halton"):
    """`-Δu = f` on the unit disk, `u` given on the lower half of the circle (`y < 0`) and
    `∂u/∂n` on the upper half: `(objective, point sets)`."""
    objective = ad.PINN(
        lambda u, x: -ad.laplacian(u, x) - disk_source(x),
        [
            ad.Dirichlet(disk_exact, where=lambda x: x[1] < 0),
            ad.Neumann(DISK, disk_flux, where=lambda x: x[1] >= 0),
        ],
        weights=[1.0, weight, weight],
    )
    edge = ad.Points(DISK.boundary, boundary_points, method=method)
    return objective, ad.Collocation(ad.Points(DISK, interior, method=method), edge, edge)


@functools.cache
def adam(learning_rate: float) -> optax.GradientTransformation:
    """One `optax.adam` per learning rate: the compiled chunk is looked up by the optimizer."""
    return optax.adam(learning_rate)


@functools.cache
def lbfgs(memory_size: int = 100) -> optax.GradientTransformationExtraArgs:
    """One `optax.lbfgs` per history length (default 100, DeepXDE's), for the same reason; on
    these problems 100 pairs reach a given loss in far fewer steps than optax's default 10."""
    return optax.lbfgs(memory_size=memory_size)


def train(
    objective: ad.PINN, draw: ad.Collocation, model, *, adam_steps: int, lbfgs_steps: int,
    key, learning_rate: float = 1e-3, fresh: bool = False, callbacks=(),
) -> tuple[TrainResult, float]:  # fmt: skip
    """Adam, then L-BFGS (continuing the result with a new optimizer) on fixed points drawn
    once from `key` (L-BFGS's line search needs one loss); with `fresh`, Adam draws new points
    at every step. **Returns:** `(result, seconds)`, compilation included."""
    draw_key, run_key = jax.random.split(key)
    fixed = Sampler(draw.fixed(key=draw_key))
    start = time.perf_counter()
    first = Trainer(
        Sampler(draw) if fresh else fixed, objective, adam(learning_rate),
        num_steps=adam_steps, callbacks=callbacks,
    )(model, key=run_key, progress=False)  # fmt: skip
    result = first
    if lbfgs_steps:
        second = Trainer(
            fixed, objective, lbfgs(), num_steps=adam_steps + lbfgs_steps, callbacks=callbacks
        )
        result = second(first, new_optimizer=True, progress=False)
    jax.block_until_ready(result.model)
    return result, time.perf_counter() - start


@eqx.filter_jit
def evaluate(objective: ad.PINN, model, points):
    """The solution the model represents at `points (n, dim)`, `(n,)`."""
    return jax.vmap(objective.solution(model))(points)


def relative_l2(u, reference) -> float:
    """`|u - reference| / |reference|` over the points."""
    u, reference = np.asarray(u, np.float64), np.asarray(reference, np.float64)
    return float(np.linalg.norm(u - reference) / np.linalg.norm(reference))


def finite_difference_poisson(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The package's finite-difference solution of the Poisson problem: the 5-point Laplacian
    on the `size x size` interior vertices of the unit square (`u = 0` on the boundary),
    solved by multigrid (`trainax_fd.solvers.solve`) in float64 to its rounding floor, so that
    the algebraic error lies far below the discretisation error.

    **Returns:** `(points (size², 2), u (size²,))`."""
    from ..solvers import solve
    from ..stencil import Grid

    grid = Grid((size, size), extent=1.0, placement="vertex")
    axis = np.arange(1, size + 1) / (size + 1)
    mesh = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    source = 2 * np.pi**2 * np.sin(np.pi * mesh[:, 0]) * np.sin(np.pi * mesh[:, 1])
    with jax.enable_x64(True):  # float32's floor lies near the discretisation error here
        u, _ = solve(grid, "dirichlet", 1.0, source.reshape(1, size, size))
        u = np.asarray(u, np.float32).reshape(-1)
    return mesh, u


def examples() -> dict[str, np.ndarray]:
    """The original examples' derivatives, as arrays: `y = x² + 1` at 2, a linear layer, `sin`
    on a 2x2 tensor, `x² + label` at 100 points of a parallelogram."""
    key = jax.random.key(0)
    x = jnp.array([2.0])

    def square_plus_one(p):
        return p**2 + 1

    layer = eqx.nn.Linear(3, 2, key=key)
    tensor = jnp.array([[0.1, 0.2], [0.3, 0.4]])
    shape = ad.Parallelogram([0.0, 0.0], [[2.0, 0.0], [1.0, 1.0]])
    points, labels = ad.Labelled(ad.Points(shape, 100), lambda p: p[0] + 3 * p[1])(key)

    def with_label(label):  # the label is data: a constant for the derivatives
        return lambda p: p[0] ** 2 + label

    return {
        "dy/dx": np.asarray(ad.jacobian_entry(square_plus_one, x, 0, 0)),
        "d2y/dx2": np.asarray(ad.hessian_entry(square_plus_one, x, 0, 0)),
        "layer jacobian": np.asarray(ad.jacobian(layer, jnp.ones(3))),
        "layer weight": np.asarray(layer.weight),
        "sin jacobian": np.asarray(jax.vmap(lambda p: ad.jacobian(jnp.sin, p))(tensor)),
        "cos": np.asarray(jnp.cos(tensor)),
        "points": np.asarray(points),
        "label jacobian": np.asarray(
            jax.vmap(lambda p, lab: ad.jacobian(with_label(lab), p))(points, labels)
        ),
        "label hessian": np.asarray(
            jax.vmap(lambda p, lab: ad.hessian(with_label(lab), p))(points, labels)
        ),
    }


def print_examples(values: dict[str, np.ndarray]) -> None:
    p, jac, hess = values["points"], values["label jacobian"], values["label hessian"]
    print(f"y = x² + 1 at x = 2: dy/dx = {float(values['dy/dx']):g}, "
          f"d²y/dx² = {float(values['d2y/dx2']):g}")  # fmt: skip
    same = np.allclose(values["layer jacobian"], values["layer weight"])
    print(f"linear layer 3 -> 2: Jacobian equals the weights: {same}")
    diagonal = np.diagonal(values["sin jacobian"], axis1=1, axis2=2)
    same = np.allclose(diagonal, values["cos"])
    print(f"sin on a 2x2 tensor: Jacobian diagonal equals cos: {same}")
    print(
        f"x² + label at {p.shape[0]} points of a parallelogram: max |∂/∂x - 2x| = "
        f"{np.abs(jac[:, 0, 0] - 2 * p[:, 0]).max():.1e}, max |∂/∂y| = "
        f"{np.abs(jac[:, 0, 1]).max():.1e}; Hessian entries (xx, xy, yy) = "
        f"({hess[0, 0, 0]:g}, {hess[0, 0, 1]:g}, {hess[0, 1, 1]:g}) at every point"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="trainax-fd-pinn",
        description="Physics-informed networks with trainax_fd.autodiff: the original "
        "derivative examples, -Δu = f on the unit square (penalty and exactly imposed boundary "
        "values, Adam then L-BFGS, against the exact and the finite-difference solution), and "
        "a disk with Neumann data on its upper half. Small sizes by default; --full for the "
        "notebook's.",
    )
    parser.add_argument("--full", action="store_true", help="the notebook's sizes")
    parser.add_argument("--width", type=int, help="hidden units per layer")
    parser.add_argument("--depth", type=int, help="hidden layers")
    parser.add_argument("--interior", type=int, help="interior collocation points")
    parser.add_argument("--boundary", type=int, help="boundary collocation points")
    parser.add_argument("--adam-steps", type=int, help="Adam steps (learning rate 1e-3)")
    parser.add_argument("--lbfgs-steps", type=int, help="L-BFGS steps after Adam")
    parser.add_argument("--fd-size", type=int, help="interior points per axis, FD solution")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("trainax_fd_output"))
    args = parser.parse_args(argv)
    fill_sizes(parser, args, PROFILES, minimum={"lbfgs_steps": 0})

    print(f"trainax_fd.autodiff on {jax.devices()[0].platform}: the original examples")
    print_examples(examples())

    net_key, *keys = jax.random.split(jax.random.key(args.seed), 5)
    model = network(net_key, args.width, args.depth)
    sizes = dict(adam_steps=args.adam_steps, lbfgs_steps=args.lbfgs_steps)
    test = SQUARE.sample(10_000, method="grid")
    exact = jax.vmap(poisson_exact)(test)
    fd_points, fd_u = finite_difference_poisson(args.fd_size)
    fd_error = relative_l2(fd_u, jax.vmap(poisson_exact)(jnp.asarray(fd_points)))
    print(
        f"-Δu = 2π² sin(πx) sin(πy) on the unit square, u = 0 on the boundary; tanh MLP "
        f"{args.depth} x {args.width}, {args.interior} interior Halton points, Adam(1e-3) "
        f"{args.adam_steps} steps then L-BFGS {args.lbfgs_steps} steps; finite differences on "
        f"{args.fd_size}² interior vertices: relative L2 error {fd_error:.2e}"
    )
    header = (f"{'boundary values':<30}{'final loss':>11}{'rel. L2 vs exact':>18}"
              f"{'rel. L2 vs FD':>15}{'seconds':>9}")  # fmt: skip
    print(header)
    runs = {}
    for name, boundary, key in (
        (f"penalty ({args.boundary} points)", "penalty", keys[0]),
        ("exact (distance function)", "exact", keys[1]),
    ):
        objective, draw = poisson(boundary, interior=args.interior, boundary_points=args.boundary)
        result, seconds = train(objective, draw, model, key=key, **sizes)
        u = evaluate(objective, result.model, test)
        error = relative_l2(u, exact)
        versus_fd = relative_l2(evaluate(objective, result.model, jnp.asarray(fd_points)), fd_u)
        loss = float(result.loss_history[-1])
        print(f"{name:<30}{loss:>11.2e}{error:>18.2e}{versus_fd:>15.2e}{seconds:>9.2f}")
        runs[name] = (result, np.asarray(u) - np.asarray(exact))

    objective, draw = disk(interior=args.interior, boundary_points=args.boundary)
    result, seconds = train(objective, draw, model, key=keys[2], **sizes)
    disk_points = DISK.sample(4096, method="sobol")
    u_disk = evaluate(objective, result.model, disk_points)
    disk_u = jax.vmap(disk_exact)(disk_points)
    print(
        f"-Δu = f on the unit disk, u = xy + sin(x + 2y): Dirichlet data on the lower half "
        f"circle, Neumann data on the upper half ({args.boundary} boundary points): relative "
        f"L2 error {relative_l2(u_disk, disk_u):.2e}, final loss "
        f"{float(result.loss_history[-1]):.2e} ({seconds:.2f} s)"
    )
    disk_run = (result, disk_points, np.asarray(u_disk) - np.asarray(disk_u))
    for path in figures(runs, test, disk_run, args.adam_steps, args.out):
        print(f"figure written to {path}")
    return 0


def figures(runs: dict, test, disk_run, adam_steps: int, out: Path) -> list[Path]:
    """Loss histories and error maps of the square; the disk's error map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig = draw_square(runs, test, adam_steps)
    first = out / "pinn_poisson.png"
    fig.savefig(first, dpi=110)
    plt.close(fig)
    fig = draw_disk(*disk_run)
    second = out / "pinn_disk.png"
    fig.savefig(second, dpi=110)
    plt.close(fig)
    return [first, second]


def draw_square(runs: dict, test, adam_steps: int):
    """Loss histories (the L-BFGS stage marked) and `u - u_exact` maps of each run."""
    import matplotlib.pyplot as plt

    from ..plot import loss_history

    fig, axes = plt.subplots(1, 1 + len(runs), figsize=(5 * (1 + len(runs)), 4),
                             layout="constrained")  # fmt: skip
    loss_history({k: r for k, (r, _) in runs.items()}, ax=axes[0])
    axes[0].axvline(adam_steps, color="gray", lw=0.8, ls="--")
    axes[0].set_title("Adam, then L-BFGS (dashed)")
    side = round(float(np.sqrt(np.asarray(test).shape[0])))
    for ax, (name, (_, error)) in zip(axes[1:], runs.items()):
        error = np.asarray(error).reshape(side, side).T
        scale = float(np.abs(error).max())  # symmetric: zero error is white
        image = ax.imshow(error, origin="lower", extent=(0, 1, 0, 1), cmap="RdBu_r",
                          vmin=-scale, vmax=scale)  # fmt: skip
        fig.colorbar(image, ax=ax)
        ax.set_title(f"u - u_exact, {name}", fontsize=9)
    return fig


def draw_disk(result, points, error):
    """The disk run's loss history and `u - u_exact` at the test points."""
    import matplotlib.pyplot as plt

    from ..plot import loss_history

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    loss_history(result, ax=axes[0])
    axes[0].set_title("disk: Dirichlet (y < 0) and Neumann (y ≥ 0) data")
    points = np.asarray(points)
    error = np.asarray(error)
    scale = float(np.abs(error).max())
    levels = np.linspace(-scale, scale, 41)
    image = axes[1].tricontourf(points[:, 0], points[:, 1], error, levels, cmap="RdBu_r")
    fig.colorbar(image, ax=axes[1])
    axes[1].set_aspect("equal")
    axes[1].set_title("u - u_exact")
    return fig


if __name__ == "__main__":
    raise SystemExit(main())
