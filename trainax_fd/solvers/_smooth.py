"""Gauss-Seidel smoothing by colours: red-black for 5-point operators, multi-colour for wider
Galerkin stencils. Points of one colour do not couple, so updating them all at once is exact
Gauss-Seidel; running the colours backwards gives the adjoint sweep (symmetric smoothing)."""

from jax import lax
from jaxtyping import Array


def smooth(op, u: Array, f: Array, sweeps: int, reverse: bool = False) -> Array:
    """`sweeps` Gauss-Seidel sweeps on `A u = f`, colours in order (or `reverse`d).

    **Arguments:**

    - `op`: the level's operator (`FaceOperator` or `StencilOperator`).
    - `u`: the current iterate, `(channels, *spatial)`.
    - `f`: the right-hand side, same shape.
    - `sweeps`: number of sweeps (each visits every colour once).
    - `reverse`: visit the colours last to first: the adjoint of the forward sweep.

    **Returns:** the smoothed iterate, shape of `u`.
    """
    if sweeps == 0:
        return u
    count = op.colours

    def half(i, state):  # one colour; a loop keeps one copy of the update in the program
        u, op = state  # the operator rides in the loop state: its slices stay in the kernel
        colour = lax.rem(i, count)
        colour = count - 1 - colour if reverse else colour
        mask = lax.broadcast_in_dim(op.mask(u.shape[1:], colour), u.shape, range(1, u.ndim))
        return lax.select(mask, (f + op.neighbours(u)) / op.diagonal(), u), op

    return lax.fori_loop(0, sweeps * count, half, (u, op))[0]
