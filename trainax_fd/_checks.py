"""Argument checks shared across the package."""


def check_int(name: str, value, minimum: int = 1) -> int:
    """`value` itself if it is an int `>= minimum` (bools refused), else a `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")
    return value
