"""Conjugate gradients preconditioned by one multigrid cycle, and the plain cycling loop."""

import jax.numpy as jnp
from jaxtyping import Array

from ._multigrid import Multigrid
from ._report import SolveReport, iterate


def _vdot(a: Array, b: Array) -> Array:
    return jnp.sum(a * b)


def _measures(mg: Multigrid, f: Array):
    """`u -> f - A u` (an array), `u -> eps || 2 D |u| + |f| || / ||f||` (the rounding floor)
    and the scale `||f||`.

    The floor is the Oettli-Prager bound `eps || |A| |u| + |f| ||` with `|A| |u| = 2 D |u| -
    A |u|` (positive diagonal `D`, non-positive off-diagonal entries) and `A |u|` left out: it
    is smaller than `2 D |u|` by a factor of order `h^2` for a smooth solution, and without it
    no stencil enters the norm.
    """
    op = mg.operators[0]
    eps = jnp.finfo(f.dtype).eps
    norm = jnp.linalg.norm(f)
    scale = jnp.where(norm > 0, norm, 1)
    twice = 2 * op.diagonal()

    def residual(u: Array) -> Array:
        return f - op(u)

    def floor(u: Array) -> Array:
        return eps * jnp.linalg.norm(twice * jnp.abs(u) + jnp.abs(f)) / scale

    return residual, floor, scale


def _start(mg: Multigrid, f: Array, u: Array, fmg: bool) -> Array:
    if fmg:
        u = u + mg.full(f - mg.apply(u))
    return _project(mg, u)


def _project(mg: Multigrid, u: Array) -> Array:
    """Zero mean for a singular (pure Neumann or periodic) problem, else `u` itself."""
    if not mg.singular:
        return u
    return u - jnp.mean(u, axis=tuple(range(1, u.ndim)), keepdims=True)


def cycles(
    mg: Multigrid, f: Array, u: Array, *, tol, max_iterations: int, fmg: bool
) -> tuple[Array, SolveReport]:
    """Multigrid cycles on `A u = f` from `u` (after full multigrid, if `fmg`)."""
    f = _project(mg, f)
    u = _start(mg, f, u, fmg)

    def step(u):
        return _project(mg, mg(u, f))

    residual, floor, scale = _measures(mg, f)
    options = dict(scale=scale, tol=tol, max_iterations=max_iterations)
    return iterate(step, u, residual, floor, **options)


def conjugate_gradients(
    mg: Multigrid, f: Array, u: Array, *, tol, max_iterations: int, fmg: bool
) -> tuple[Array, SolveReport]:
    """Conjugate gradients on `A u = f`, each iteration preconditioned by one symmetric cycle.

    The reported residuals are the true ones, `f - A u`, not the recurrence's: they cannot
    drift below the rounding floor.
    """
    f = _project(mg, f)
    u = _start(mg, f, u, fmg)
    r = f - mg.apply(u)
    z = _project(mg, mg.precondition(r))
    residual, floor, scale = _measures(mg, f)

    def step(state):
        u, r, p, rz = state
        ap = mg.apply(p)
        pap = _vdot(p, ap)
        alpha = jnp.where(pap > 0, rz / jnp.where(pap > 0, pap, 1), 0)
        u, r = u + alpha * p, r - alpha * ap
        z = _project(mg, mg.precondition(r))
        rz_new = _vdot(r, z)
        beta = jnp.where(rz > 0, rz_new / jnp.where(rz > 0, rz, 1), 0)
        return u, r, z + beta * p, rz_new

    state, report = iterate(
        step,
        (u, r, z, _vdot(r, z)),
        lambda state: residual(state[0]),
        lambda state: floor(state[0]),
        scale=scale,
        tol=tol,
        max_iterations=max_iterations,
    )
    return state[0], report
