"""Step 6: recording is a switch. Under no_grad nothing is remembered, so nothing is kept.

    python examples/steps/step6_no_grad.py

Every operation on a tensor that requires grad records a node that keeps what its backward needs.
Evaluation and the optimiser's update need no gradient, so they turn recording off: one global
(per-thread) flag that every operation reads before recording. In minigrad: `grad_mode`
(minigrad/grad_mode.py) is the flag, `no_grad` the context manager that turns it off, and
`Function.apply` (minigrad/engine/function.py) reads it.
"""

from __future__ import annotations

import contextlib

recording = [True]  # the switch every operation reads


@contextlib.contextmanager
def no_grad():
    """Turn recording off inside the block, and back to what it was after (also on errors)."""
    before = recording[0]
    recording[0] = False
    try:
        yield
    finally:
        recording[0] = before


class Value:
    """A number that records its parents only while recording is on."""

    def __init__(self, data, parents=()):
        self.data = data
        self.parents = parents if recording[0] else ()

    def __mul__(self, other):
        return Value(self.data * other.data, (self, other))


def nodes_recorded(use_no_grad: bool) -> int:
    """How many values the result of 100 multiplications keeps alive through its parents."""
    x = Value(1.0001)
    with no_grad() if use_no_grad else contextlib.nullcontext():
        y = x
        for _ in range(100):
            y = y * x
    kept, stack = set(), list(y.parents)
    while stack:
        value = stack.pop()
        if id(value) not in kept:
            kept.add(id(value))
            stack.extend(value.parents)
    return len(kept)


def main() -> None:
    print("values kept with recording on:", nodes_recorded(False), "; under no_grad:",
          nodes_recorded(True))
    import minigrad as mg

    w = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        y = w * 2.0
    print("minigrad under no_grad:", y.requires_grad, y.grad_fn, "; outside:",
          (w * 2.0).grad_fn)


if __name__ == "__main__":
    main()
