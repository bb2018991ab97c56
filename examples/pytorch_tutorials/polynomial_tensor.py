"""Fit y = sin(x) with a cubic, gradients written by hand (tensors only, no autograd).

Our version of PyTorch's "polynomial_tensor" beginner example; it starts from fixed
coefficients rather than random ones so that every library starts at the same point.
Run it with PyTorch, or on minigrad with as_minigrad.py.
"""

import math

import torch

dtype = torch.float
device = torch.device("cpu")

x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
y = torch.sin(x)

a = torch.full((), 0.1, device=device, dtype=dtype)
b = torch.full((), -0.2, device=device, dtype=dtype)
c = torch.full((), 0.3, device=device, dtype=dtype)
d = torch.full((), -0.1, device=device, dtype=dtype)

learning_rate = 1e-6
for t in range(2000):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum().item()
    if t % 500 == 499:
        print(t, loss)

    grad_y_pred = 2.0 * (y_pred - y)
    grad_a = grad_y_pred.sum()
    grad_b = (grad_y_pred * x).sum()
    grad_c = (grad_y_pred * x ** 2).sum()
    grad_d = (grad_y_pred * x ** 3).sum()

    a -= learning_rate * grad_a
    b -= learning_rate * grad_b
    c -= learning_rate * grad_c
    d -= learning_rate * grad_d

print(f"Result: y = {a.item()} + {b.item()} x + {c.item()} x^2 + {d.item()} x^3")
print(f"final loss: {loss:.6f}")
