"""A physics-informed objective: the residual of a PDE at interior collocation points, and
boundary conditions as penalties or imposed exactly through the domain's distance function."""

import abc
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from .._checks import check_finite
from .._custom_types import Scalar
from ..objectives import AbstractObjective
from ..objectives._base import refuse_state
from ._derivatives import gradient, output_size
from ._domains import AbstractDomain, Boundary


def _target(value, x: Array, label):
    """The prescribed value at `x`: the batch's label, else `value(x)` or the constant."""
    if label is not None:
        if value is not None:
            raise ValueError(
                "a condition with a `value` (or `flux`) must not also get labels in its batch "
                "(`(points, labels)`); give one of the two."
            )
        return label
    if value is None:
        return jnp.zeros((), x.dtype)
    return value(x) if callable(value) else value.astype(x.dtype)


def _value(name: str, value):
    if value is None or callable(value):
        return value
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be a number, an array, a function of one point, or None, got {value!r}."
        ) from None
    check_finite(array, name)
    return jnp.asarray(array, dtype=jnp.result_type(float))


def _where(where):
    if where is not None and not callable(where):
        raise TypeError(
            f"`where` must be a function `where(x) -> bool` of one point, or None, got {where!r}."
        )
    return where


class AbstractCondition(eqx.Module):
    """A condition at points (a boundary condition, an initial condition, data): a residual
    per point, squared and averaged over the points where `where(x)` holds.

    Its batch (one entry of a `PINN`'s batch) is `points (n, dim)` or
    `(points, labels (n, ...))` as `Labelled` draws it.
    """

    where: eqx.AbstractVar[Callable | None]

    @abc.abstractmethod
    def residual(self, u: Callable, x: Float[Array, "dim"], label) -> Array:  # noqa: F821
        """The residual at one point `x`, given the solution `u` and `x`'s label (or `None`)."""


class Dirichlet(AbstractCondition):
    """`u(x) = value(x)` on the condition's points, as a penalty `(u - value)²`.

    **Arguments:**

    - `value`: a function of one point, a constant (default `0`), or `None` to read the
        values from the batch's labels (`Labelled`).
    - `where`: `where(x) -> bool`: the part of the boundary it holds on (default: all).
    """

    value: Callable | Array | None
    where: Callable | None

    def __init__(self, value=0.0, *, where: Callable | None = None):
        self.value, self.where = _value("value", value), _where(where)

    def residual(self, u, x, label):
        return u(x) - _target(self.value, x, label)


class Neumann(AbstractCondition):
    """`∂u/∂n (x) = flux(x)` (outward normal derivative) on the condition's points, as a
    penalty. `u` must be scalar (or have one output).

    **Arguments:**

    - `region`: the domain (or its boundary) whose outward normals are used.
    - `flux`: a function of one point, a constant (default `0`), or `None` for labels.
    - `where`: `where(x) -> bool`: the part of the boundary it holds on (default: all).
    """

    region: Boundary
    flux: Callable | Array | None
    where: Callable | None

    def __init__(self, region, flux=0.0, *, where: Callable | None = None):
        if isinstance(region, AbstractDomain):
            region = region.boundary
        if not isinstance(region, Boundary):
            raise TypeError(
                f"`region` must be a domain or its `.boundary` (for the outward normals), got "
                f"{type(region).__name__}."
            )
        self.region, self.flux, self.where = region, _value("flux", flux), _where(where)

    def residual(self, u, x, label):
        return jnp.dot(gradient(u, x), self.region.normal(x)) - _target(self.flux, x, label)


class Condition(AbstractCondition):
    """Any condition at points: `fn(u, x) -> residual` (or `fn(u, x, label)` when the batch
    has labels), written with the derivative helpers: Robin conditions, initial conditions,
    measured data.

    **Arguments:** `fn`; `where` as for `Dirichlet`.
    """

    fn: Callable
    where: Callable | None

    def __init__(self, fn: Callable, *, where: Callable | None = None):
        if not callable(fn):
            raise TypeError(f"`fn` must be callable as `fn(u, x) -> residual`, got {fn!r}.")
        self.fn, self.where = fn, _where(where)

    def residual(self, u, x, label):
        return self.fn(u, x) if label is None else self.fn(u, x, label)


class ExactDirichlet(eqx.Module):
    """Dirichlet values imposed exactly: `u(x) = value(x) + domain.distance(x) * model(x)`,
    which equals `value` on the whole boundary whatever the network.

    **Arguments:** `domain` (its `distance` vanishes on the boundary); `value` (a function
    of one point, or a constant, default `0`).
    """

    domain: AbstractDomain
    value: Callable | Array

    def __init__(self, domain: AbstractDomain, value=0.0):
        if not isinstance(domain, AbstractDomain):
            raise TypeError(
                f"`domain` must be a domain (`Box`, `Parallelogram`, `Ball`), got "
                f"{type(domain).__name__}."
            )
        if value is None:
            raise TypeError("`value` must be a number, an array or a function of one point.")
        self.domain, self.value = domain, _value("value", value)

    def __call__(self, model, x):
        return _target(self.value, x, None) + self.domain.distance(x) * model(x)


class Solution(eqx.Module):
    """The PDE solution a model represents: `solution(x) = ansatz(model, x)` (or `model(x)`),
    one point `(dim,)` to `u`. Vmap it over points."""

    model: PyTree
    ansatz: Callable | None

    def __call__(self, x):
        return self.model(x) if self.ansatz is None else self.ansatz(self.model, x)


def _points_of(name: str, batch) -> tuple[Array, PyTree | None]:
    if isinstance(batch, tuple | list) and len(batch) == 2:
        x, labels = batch
    else:
        x, labels = batch, None
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(
            f"{name} must be points of shape (n, dim) or a pair (points, labels), got "
            f"{'shape ' + str(tuple(shape)) if shape is not None else type(x).__name__}."
        )
    return x, labels


class PINN(AbstractObjective):
    """A physics-informed loss: `Σ_k weights[k] * mean_k(residual²)` over the interior residual
    of a PDE and one term per condition.

    The batch (drawn by a `Collocation`, fresh each step or `Fixed`) is a tuple: interior
    points `(n, dim)`, then one entry per condition (`(m, dim)` points, or
    `(points, labels)`). The model maps one point `(dim,)` to `u` (a scalar or `(outputs,)`),
    e.g. `eqx.nn.MLP(dim, "scalar", ...)`.

    **Arguments:**

    - `residual`: `residual(u, x) -> r` at one interior point, `u` the solution as a function
        of a point and `x` `(dim,)`; `r` a scalar or a vector (a system, squared and summed).
        Written with the derivative helpers, e.g. `-laplacian(u, x) - f(x)`.
    - `conditions`: `Dirichlet`, `Neumann`, `Condition`s, one batch entry each.
    - `weights`: one weight `>= 0` per term, `(1 + len(conditions),)`, the residual first
        (default: all 1). An array leaf: sweep it without recompiling.
    - `ansatz`: `ansatz(model, x) -> u`, e.g. `ExactDirichlet(domain, g)`; default
        `model(x)`.

    !!! example
        ```python
        poisson = PINN(lambda u, x: -laplacian(u, x) - f(x), [Dirichlet(0.0)])
        batch = Collocation(Points(square, 1024), Points(square.boundary, 256))
        trainer = Trainer(Sampler(batch), poisson, optax.adam(1e-3), num_steps=5000)
        ```
    """

    residual: Callable
    conditions: tuple[AbstractCondition, ...]
    weights: Float[Array, "terms"]
    ansatz: Callable | None

    def __init__(
        self,
        residual: Callable,
        conditions: Sequence[AbstractCondition] = (),
        *,
        weights=None,
        ansatz: Callable | None = None,
    ):
        if not callable(residual):
            raise TypeError(
                f"`residual` must be callable as `residual(u, x) -> r`, got {residual!r}."
            )
        conditions = tuple(conditions)
        for i, c in enumerate(conditions):
            if not isinstance(c, AbstractCondition):
                raise TypeError(
                    f"`conditions[{i}]` must be a `Dirichlet`, `Neumann` or `Condition`, got "
                    f"{type(c).__name__}."
                )
        terms = 1 + len(conditions)
        if weights is None:
            weights = np.ones(terms)
        try:
            w = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"`weights` must be numbers, got {weights!r}.") from None
        if w.shape != (terms,):
            raise ValueError(
                f"`weights` must have shape ({terms},): the residual's weight, then one per "
                f"condition, got shape {w.shape}."
            )
        check_finite(w, "weights", nonnegative=True)
        if ansatz is not None and not callable(ansatz):
            raise TypeError(
                f"`ansatz` must be callable as `ansatz(model, x) -> u`, got {ansatz!r}."
            )
        self.residual, self.conditions, self.ansatz = residual, conditions, ansatz
        self.weights = jnp.asarray(w, dtype=jnp.result_type(float))

    @property
    def names(self) -> tuple[str, ...]:
        """One name per term: `"residual"`, then the conditions' class names, lower case."""
        return ("residual", *(type(c).__name__.lower() for c in self.conditions))

    def solution(self, model) -> Solution:
        """The solution `x -> u` the model represents (the ansatz applied)."""
        return Solution(model, self.ansatz)

    def _check(self, batch) -> None:
        expected = 1 + len(self.conditions)
        if not isinstance(batch, tuple | list) or len(batch) != expected:
            got = (
                f"length {len(batch)}" if isinstance(batch, tuple | list) else type(batch).__name__
            )
            raise ValueError(
                f"`batch` must be a tuple of {expected}: the interior points, then one set per "
                f"condition (a `Collocation` of {expected} samplers), got {got}."
            )

    def terms(self, model, batch, state=None):
        """`((squares, mask), ...)`: per point, the squared residual and whether the term holds
        there (`where`), one pair per term. **Returns:** `(terms, state)`."""
        refuse_state(state, "PINN")
        self._check(batch)
        u = self.solution(model)
        x, labels = _points_of("`batch[0]`", batch[0])
        if labels is not None:
            raise ValueError(
                "`batch[0]` must be the interior points (n, dim) without labels; a source term "
                "belongs in `residual`."
            )
        output_size(u, x[0])

        def squares(r):
            return jnp.sum(jnp.reshape(r, (-1,)) ** 2)

        interior = jax.vmap(lambda p: squares(self.residual(u, p)))(x)
        out = [(interior, jnp.ones_like(interior))]
        for i, (condition, entry) in enumerate(zip(self.conditions, batch[1:]), start=1):
            x, labels = _points_of(f"`batch[{i}]`", entry)

            def one(p, label, condition=condition):
                value = squares(condition.residual(u, p, label))
                if condition.where is None:
                    return value, jnp.ones_like(value)
                return value, jnp.asarray(condition.where(p)).astype(value.dtype)

            out.append(jax.vmap(one)(x, labels))
        return tuple(out), state

    def term_losses(self, terms) -> Float[Array, "terms"]:
        """The unweighted mean squared residual of each term, `(terms,)`."""
        return jnp.stack([jnp.sum(v * m) / jnp.maximum(jnp.sum(m), 1) for v, m in terms])

    def reduce(self, terms) -> Scalar:
        losses = self.term_losses(terms)
        return jnp.sum(self.weights.astype(losses.dtype) * losses)

    def losses(self, model, batch) -> Float[Array, "terms"]:
        """The unweighted loss of each term on `batch`, `(terms,)` (names in `names`)."""
        return self.term_losses(self.terms(model, batch)[0])
