"""Tables of evaluation rows: aligned text always, a pandas `DataFrame` when pandas is there."""


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def text_table(rows: list[dict]) -> str:
    """Rows of equal keys as an aligned text table (columns in the first row's order)."""
    columns = list(rows[0])
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    width = [max(len(c), *(len(r[j]) for r in cells)) for j, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, width))]
    lines.append("  ".join("-" * w for w in width))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, width)) for r in cells]
    return "\n".join(lines)


def pandas_frame(rows: list[dict]):
    """`pandas.DataFrame(rows)`; an `ImportError` that says what to do without pandas."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "`to_pandas` needs pandas (`pip install pandas`); without it, `table()` or "
            "`print(evaluation)` shows the same rows as text."
        ) from None
    return pandas.DataFrame(rows)
