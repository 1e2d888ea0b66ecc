"""Warnings that point at the user's line, not at the package or at Equinox's module machinery."""

import os
import sys
import warnings

import equinox
import jax

_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep
    for m in (sys.modules[__package__], equinox, jax)
)


def _stacklevel() -> int:
    """The `stacklevel` of the first frame outside trainax_fd, Equinox and JAX."""
    frame, level = sys._getframe(2), 2  # the caller of `warn_user` is level 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    return level


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """`warnings.warn(message, category)` attributed to the user's code that called in."""
    warnings.warn(message, category, stacklevel=_stacklevel())
