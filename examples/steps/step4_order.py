"""Step 4: run the nodes in the right order. A node's backward needs its *whole* gradient.

    python examples/steps/step4_order.py

In a = x * 2;  b = a + a;  c = a * b;  y = c + b, the node that made a has two users (b and c).
If backward runs a's node before both have sent their parts, it passes on an incomplete
gradient, and when the rest arrives it passes that on again: x's gradient comes out wrong even
though every sum is "+=" (the naive walk below passes shared nodes' gradients on several
times). The fix is to order the nodes so that each comes after every node that uses its output:
a reverse topological order, found by a depth-first walk. In minigrad: `tape` orders the graph
(minigrad/engine/backward.py); `print(mg.autograd.tape(y))` shows the order.
"""

from __future__ import annotations

from step3_diamond import Value


def naive_backward(root: Value) -> None:
    """Breadth first from the root, each node's gradient passed on as soon as it is reached."""
    root.grad = 1.0
    queue = [root]
    while queue:
        node = queue.pop(0)
        for parent, slope in zip(node.parents, node.local_slopes, strict=True):
            parent.grad += node.grad * slope
            queue.append(parent)  # a node reached twice passes its gradient on twice


def topological_backward(root: Value) -> None:
    """Order the nodes once (users before what they use), then pass each gradient on once."""
    order, seen = [], set()

    def visit(node):
        if id(node) not in seen:
            seen.add(id(node))
            for parent in node.parents:
                visit(parent)
            order.append(node)

    visit(root)
    root.grad = 1.0
    for node in reversed(order):  # every user of a node comes before it
        for parent, slope in zip(node.parents, node.local_slopes, strict=True):
            parent.grad += node.grad * slope


def grad_of_x(x: float, backward) -> float:
    leaf = Value(x)
    a = leaf * Value(2.0)
    b = a + a
    c = a * b
    backward(c + b)
    return leaf.grad


def main() -> None:
    x = 1.0
    print(f"dy/dx at x = {x}: naive order {grad_of_x(x, naive_backward)}, "
          f"topological order {grad_of_x(x, topological_backward)}")
    import minigrad as mg

    t = mg.tensor(x, requires_grad=True)
    a = t * 2.0
    b = a + a
    y = a * b + b
    y.backward()
    print(f"minigrad: {t.grad.item()}")
    print(mg.autograd.tape(y))


if __name__ == "__main__":
    main()
