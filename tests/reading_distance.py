"""How many of minigrad's files a reader follows to understand one line of a program.

    python tests/reading_distance.py

Counted by tracing: sys.setprofile sees every Python function call while the line runs, and
the files counted are the distinct minigrad files whose code ran (C functions such as NumPy's
are not minigrad files). The tensors are made before tracing starts, so only the line counts.
"""

from __future__ import annotations

import pathlib
import sys

import minigrad as mg

PACKAGE = pathlib.Path(mg.__file__).resolve().parent


def files_run(statement) -> list[str]:
    """The minigrad files (relative paths) whose Python code runs in statement()."""
    seen = {}

    def profile(frame, event, arg):
        if event == "call":
            path = pathlib.Path(frame.f_code.co_filename)
            if path.is_relative_to(PACKAGE):
                seen.setdefault(str(path.relative_to(PACKAGE.parent)), None)

    sys.setprofile(profile)
    try:
        statement()
    finally:
        sys.setprofile(None)
    return list(seen)


def forward_of_mul() -> list[str]:
    x = mg.randn(3, requires_grad=True)
    y = mg.randn(3, requires_grad=True)
    return files_run(lambda: x * y)


def backward_of_mul_sum() -> list[str]:
    x = mg.randn(3, requires_grad=True)
    y = mg.randn(3, requires_grad=True)
    return files_run(lambda: (x * y).sum().backward())


if __name__ == "__main__":
    for name, found in (("z = x * y", forward_of_mul()),
                        ("(x * y).sum().backward()", backward_of_mul_sum())):
        print(f"{name}: {len(found)} files")
        for path in found:
            print(f"    {path}")
