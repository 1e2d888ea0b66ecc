"""What the reproductions' command lines share: sizes from a small or a full profile."""

import argparse


def fill_sizes(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    profiles: dict[str, tuple],
    *,
    minimum: dict[str, int] | None = None,
) -> None:
    """Set every option of `profiles` the user left out to its `(small, full)` value, the full
    one under `--full`, and refuse numbers below their minimum (1 unless `minimum` names
    another) through `parser.error`, which names the flag, the minimum and the value."""
    minimum = minimum or {}
    for name, values in profiles.items():
        if getattr(args, name) is None:
            setattr(args, name, values[int(args.full)])
        value = getattr(args, name)
        if isinstance(value, int) and value < minimum.get(name, 1):
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag} must be >= {minimum.get(name, 1)}, got {value}")
