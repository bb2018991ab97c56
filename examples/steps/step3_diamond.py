"""Step 3: gradients add up. A value used twice gets the sum of both paths' gradients.

    python examples/steps/step3_diamond.py

In y = x * x, x reaches y along two edges: dy/dx = x + x = 2x. An engine that *assigns* the
gradient arriving at a leaf (grad = g) keeps only the last path's share and gives x; one that
*adds* (grad += g) gives 2x. The same holds inside the graph: a node must wait until every user of
its output has sent its part, and sum them. In minigrad: `_accumulate` adds into a leaf's .grad,
and `_Run.add_pending` sums what arrives at a node (minigrad/engine/backward.py).
"""

from __future__ import annotations


class Value:
    """A number that remembers how it was made (micrograd's idea, in a few lines)."""

    def __init__(self, data, parents=(), local_slopes=()):
        self.data, self.parents, self.local_slopes = data, parents, local_slopes
        self.grad = 0.0

    def __mul__(self, other):
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __add__(self, other):
        return Value(self.data + other.data, (self, other), (1.0, 1.0))


def backward(root: Value, add: bool) -> None:
    """Send gradients from root to its parents, depth first (fine for this tiny graph)."""
    root.grad = 1.0
    stack = [root]
    while stack:
        node = stack.pop()
        for parent, slope in zip(node.parents, node.local_slopes, strict=True):
            if add:
                parent.grad += node.grad * slope
            else:
                parent.grad = node.grad * slope  # the bug: the other path's share is lost
            stack.append(parent)


def grad_of_square(x: float, add: bool) -> float:
    v = Value(x)
    backward(v * v, add)
    return v.grad


def main() -> None:
    x = 3.0
    print(f"d(x*x)/dx at x = {x}: assigned {grad_of_square(x, add=False)}, "
          f"added {grad_of_square(x, add=True)} (the truth: 2x = {2 * x})")
    import minigrad as mg

    t = mg.tensor(x, requires_grad=True)
    (t * t).backward()
    print(f"minigrad: {t.grad.item()}")


if __name__ == "__main__":
    main()
