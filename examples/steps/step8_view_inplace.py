"""Step 8: a view shares memory, so an in-place write through it changes its base, and backward
must know.

    python examples/steps/step8_view_inplace.py

v = x[0] is not a copy: it is the same memory seen another way. v.mul_(w) writes into x itself.
Values are easy (they are in the memory); gradients are not: x's history must now say "x, with
element 0 replaced by x[0] * w", so that backward sends w its gradient and does not send x[0]
the gradient of a value it no longer holds. PyTorch records that as a CopySlices node on the
base, and every view then reads its history from the base. In minigrad: `_modify_view`
(minigrad/ops/inplace.py) records it, with `CopySlices` (minigrad/ops/movement.py).
"""

from __future__ import annotations

import numpy as np


def gradients_by_hand(x0: np.ndarray, w: float) -> tuple:
    """For x = x0 * 1 (a tensor on the graph), x[0] *= w, loss = sum(x * [1, 2, 3]):
    d loss/d x0 and d loss/d w, written out."""
    weights = np.array([1.0, 2.0, 3.0])
    grad_x0 = weights.copy()
    grad_x0[0] *= w  # element 0 became x0[0] * w: its slope is w
    grad_w = weights[0] * x0[0]  # and w's is x0[0]
    return grad_x0, grad_w


def main() -> None:
    import minigrad as mg

    x0 = mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64, requires_grad=True)
    w = mg.tensor(5.0, dtype=mg.float64, requires_grad=True)
    x = x0 * 1.0
    v = x[0]  # a view: the same memory
    v.mul_(w)  # writes into x
    print("x after writing through its view:", x.detach().numpy())
    (x * mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64)).sum().backward()
    print("minigrad: d/dx0 =", x0.grad.numpy(), " d/dw =", w.grad.item())
    grad_x0, grad_w = gradients_by_hand(np.array([1.0, 2.0, 3.0]), 5.0)
    print("by hand:  d/dx0 =", grad_x0, " d/dw =", grad_w)
    print(mg.autograd.tape(x))


if __name__ == "__main__":
    main()
