"""Step 2: each operation knows its own derivative; the chain rule multiplies them back.

    python examples/steps/step2_function_and_ctx.py

y = exp(sin(x) * 3). Forward runs the three operations and each keeps what its derivative needs
in a context (ctx): sin keeps x (its slope is cos x), the multiply keeps 3, exp keeps its result
(its slope is itself). Backward walks the chain the other way, each operation turning the
gradient of its output into the gradient of its input: the chain rule, one local slope at a
time. This is torch.autograd.Function's pattern, forward(ctx, ...) and backward(ctx, grad). In
minigrad: every op in minigrad/ops/ is such a class (`Sin`, `Mul`, `Exp` in
minigrad/ops/elementwise.py), and `Function.apply` (minigrad/engine/function.py) makes the ctx.
"""

from __future__ import annotations

import math


class Sin:
    @staticmethod
    def forward(ctx: dict, x: float) -> float:
        ctx["x"] = x
        return math.sin(x)

    @staticmethod
    def backward(ctx: dict, grad: float) -> float:
        return grad * math.cos(ctx["x"])  # dz/dx = cos(x)


class Scale:
    @staticmethod
    def forward(ctx: dict, x: float, factor: float = 3.0) -> float:
        ctx["factor"] = factor
        return x * factor

    @staticmethod
    def backward(ctx: dict, grad: float) -> float:
        return grad * ctx["factor"]  # dz/dx = factor


class Exp:
    @staticmethod
    def forward(ctx: dict, x: float) -> float:
        ctx["z"] = math.exp(x)
        return ctx["z"]

    @staticmethod
    def backward(ctx: dict, grad: float) -> float:
        return grad * ctx["z"]  # dz/dx = exp(x) = z


CHAIN = (Sin, Scale, Exp)


def value_and_slope(x: float) -> tuple:
    """y = exp(3 sin x) and dy/dx: forward down the chain, keeping a ctx each; backward up it."""
    contexts = []
    for op in CHAIN:
        ctx = {}
        x = op.forward(ctx, x)
        contexts.append(ctx)
    grad = 1.0  # dy/dy
    for op, ctx in zip(reversed(CHAIN), reversed(contexts), strict=True):
        grad = op.backward(ctx, grad)
    return x, grad


def main() -> None:
    y, slope = value_and_slope(0.5)
    print(f"y = {y:.10f}, dy/dx = {slope:.10f} (by hand: 3 cos(x) y = "
          f"{3 * math.cos(0.5) * y:.10f})")
    import minigrad as mg

    x = mg.tensor(0.5, dtype=mg.float64, requires_grad=True)
    out = (x.sin() * 3.0).exp()
    out.backward()
    print(f"minigrad: y = {out.item():.10f}, dy/dx = {x.grad.item():.10f}")
    print("the tape (step, node, its output's shape, where it sends gradients):")
    print(mg.autograd.tape(out))


if __name__ == "__main__":
    main()
