"""Step 5: broadcasting forward means summing backward.

    python examples/steps/step5_unbroadcast.py

z = x + b with x of shape (3, 2) and b of shape (2,): NumPy stretches b over the 3 rows, so each
b[j] is used 3 times, and (step 3) its gradient is the sum of the 3 rows' gradients. The gradient
arriving at the add has z's shape (3, 2); b needs one of shape (2,): sum over the dims that
broadcasting added or stretched. That is `unbroadcast`, the adjoint of broadcasting. In
minigrad: `unbroadcast` and `SumTo` (minigrad/ops/reduce.py), which the backward of every op
that broadcasts its inputs calls.
"""

from __future__ import annotations

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """The gradient of an input of `shape` that was broadcast up to grad's shape."""
    while grad.ndim > len(shape):  # dims broadcasting put in front
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):  # size-1 dims it stretched
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def add_backward(grad: np.ndarray, x_shape: tuple, b_shape: tuple) -> tuple:
    """z = x + b;  dz/dx = 1,  dz/db = 1: the incoming gradient, undone to each input's shape."""
    return unbroadcast(grad, x_shape), unbroadcast(grad, b_shape)


def main() -> None:
    x = np.arange(6.0).reshape(3, 2)
    b = np.array([10.0, 20.0])
    weights = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # loss = sum(weights * (x + b))
    grad_x, grad_b = add_backward(weights, x.shape, b.shape)
    print("by hand: d loss/d b =", grad_b, "(the column sums of the weights)")
    import minigrad as mg

    mx, mb = mg.tensor(x, requires_grad=True), mg.tensor(b, requires_grad=True)
    ((mx + mb) * mg.tensor(weights)).sum().backward()
    print("minigrad:", mb.grad, "and d loss/d x has x's shape:", tuple(mx.grad.shape))


if __name__ == "__main__":
    main()
