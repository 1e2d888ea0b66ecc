"""The library uses JAX's public API only: no internals, no compile options chosen per call,
no import-time hooks, no C library calls."""

import re
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "trainax_fd"
FORBIDDEN = (
    "jax._src",
    "jax.interpreters",
    "ctypes",
    "malloc_trim",
    "custom_vmap",
    "compiler_options=",  # passed to a jit: options chosen by the library, not by the caller
    "register_event",
)
# the lead removes these in the trainer rewrite
# The one module that hands compile options the caller asked for (`Trainer(compiler_options=...)`,
# opt-in) to `eqx.filter_jit`; it may pass them, nothing else on the list.
ALLOWED = {"trainax_fd/_backend.py": {"compiler_options="}}


def offenders(package: Path) -> list[str]:
    """`path:line: name` for every forbidden name in the `.py` files under `package`."""
    pattern = re.compile("|".join(map(re.escape, FORBIDDEN)))
    found = []
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package.parent).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            allowed = ALLOWED.get(name, set())
            found += [f"{name}:{number}: {m}" for m in pattern.findall(line) if m not in allowed]
    return found


def test_the_package_uses_no_jax_internals_hooks_or_compile_options():
    assert any(PACKAGE.rglob("*.py"))
    found = offenders(PACKAGE)
    assert not found, "forbidden in trainax_fd/:\n" + "\n".join(found)


def test_the_scan_reports_each_forbidden_name(tmp_path):
    package = tmp_path / "trainax_fd"
    (package / "sub").mkdir(parents=True)
    (package / "sub" / "_bad.py").write_text("\n".join(f"x = '{w}'" for w in FORBIDDEN) + "\n")
    (package / "_good.py").write_text("def f(compiler_options: dict | None = None): ...\n")
    (package / "_backend.py").write_text("jax.jit(f, compiler_options=o)\nimport ctypes\n")
    expected = ["trainax_fd/_backend.py:2: ctypes"]  # allowed to pass compile options only
    expected += [f"trainax_fd/sub/_bad.py:{i}: {w}" for i, w in enumerate(FORBIDDEN, 1)]
    assert offenders(package) == expected
