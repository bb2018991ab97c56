"""The tutorial's Linear_Layer as a minigrad Function, and its gradients checked four ways.

    python examples/custom_linear.py

1. `LinearLayer`: y = x . W with the tutorial's layout, x (n, f) and W (f, h). forward and
   backward are plain NumPy array math; backward computes the "intermediate" gradient (for x)
   and the "receiver" gradient (for W) only when `ctx.needs_input_grad` asks for them.
2. The tutorial's dummy-input test: with an all-ones input, the weight gradient is all ones.
3. The tutorial's network, 784 -> 128 -> ReLU -> 64 -> ReLU -> 10 with cross-entropy,
   backpropagated by hand, layer by layer, and by `loss.backward()`: the gradients must agree.
   The same weights in `mg.nn.Linear` (which stores W transposed, as (out, in)) agree too.
4. One SGD step by hand and by `mg.optim.SGD`, and why gradients are zeroed between steps.
5. `mg.gradcheck`: backward against finite differences, in float64.

Exit status 0 when every check holds, 1 when one fails. Change the code and run it again.
"""

from __future__ import annotations

import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

SIZES = (784, 128, 64, 10)  # the tutorial's network: MNIST pixels in, ten digit scores out
BATCH = 4


# ---- 1. the layer as a Function ----------------------------------------------------------------


class LinearLayer(mg.Function):
    """y = x . W;  grad_x = G . W',  grad_W = (G' . x)'   (x: n x f, W: f x h, G = dL/dy: n x h)"""

    @staticmethod
    def forward(ctx, input, weights):
        # input and weights arrive as NumPy arrays (CuPy on a GPU), not Tensors. backward
        # needs both: the gradient of each one is the incoming gradient times the other.
        ctx.save_for_backward(input, weights)
        return input @ weights

    @staticmethod
    def backward(ctx, grad_output):
        input, weights = ctx.saved_tensors
        grad_input = grad_weights = None  # None: "no gradient for this input"
        if ctx.needs_input_grad[0]:
            # "intermediate" gradient, (n, h) . (h, f) = (n, f): flows on to the layer before.
            grad_input = grad_output @ weights.T
        if ctx.needs_input_grad[1]:
            # "receiver" gradient, ((h, n) . (n, f))' = (f, h): what the optimiser uses.
            grad_weights = (grad_output.T @ input).T
        return grad_input, grad_weights  # one gradient per input of forward, in order


# ---- 2. the dummy-input test -------------------------------------------------------------------


def dummy_input_test() -> bool:
    """y = sum_k x_k W_k1 for x of shape (1, 5), so dy/dW_k1 = x_k: all ones when x is all ones."""
    x = mg.ones(1, 5)  # data: requires_grad is False, so its gradient is never computed
    weights = mg.randn(5, 1, requires_grad=True)
    y = LinearLayer.apply(x, weights)  # shape (1, 1)
    print(
        f"y = x . W has shape {y.shape}; its node asks for needs_input_grad = "
        f"{y.grad_fn.needs_input_grad} (input, weights)"
    )
    y.backward()  # a one-element output needs no gradient argument: it starts from dL/dy = 1
    print("weights.grad =", weights.grad.detach().numpy().ravel(), " x.grad =", x.grad)
    return bool(np.array_equal(weights.grad.detach().numpy(), np.ones((5, 1)))) and x.grad is None


# ---- 3. the network, by hand and by backward() -------------------------------------------------


def make_params(sizes=SIZES) -> list:
    """(weights (f, h), bias (h,)) per layer, uniform in +-1/sqrt(f) like PyTorch's Linear."""
    params = []
    for f, h in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1 / f**0.5
        weights = mg.nn.Parameter((mg.rand(f, h) * 2 - 1) * bound)
        bias = mg.nn.Parameter((mg.rand(h) * 2 - 1) * bound)
        params.append((weights, bias))
    return params


def forward(params, x):
    """The network with the engine: LinearLayer, then + bias (its own Add node), then ReLU."""
    for i, (weights, bias) in enumerate(params):
        # The bias is a separate addition: it broadcasts over the n rows, so the Add node's
        # backward sums the incoming gradient over the batch (see unbroadcast).
        x = LinearLayer.apply(x, weights) + bias
        if i < len(params) - 1:
            x = x.relu()
    return x


def backward_by_hand(params, x, labels) -> list:
    """The same gradients in NumPy, written out layer by layer, last layer first."""
    (w1, b1), (w2, b2), (w3, b3) = [(w.detach().numpy(), b.detach().numpy()) for w, b in params]
    x, labels, n = x.detach().numpy(), labels.detach().numpy(), len(labels)

    # Forward again, keeping what backward needs: each layer's input and pre-activation.
    z1 = x @ w1 + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ w2 + b2
    a2 = np.maximum(z2, 0)
    z3 = a2 @ w3 + b3

    # Mean cross-entropy: dL/dz3 = (softmax(z3) - onehot(labels)) / n, shape (n, 10).
    exp = np.exp(z3 - z3.max(axis=1, keepdims=True))
    g3 = exp / exp.sum(axis=1, keepdims=True)
    g3[np.arange(n), labels] -= 1
    g3 /= n

    # Layer 3: the receiver gradients for w3 and b3, the intermediate gradient for a2.
    grad_w3 = (g3.T @ a2).T  # (64, 10)
    grad_b3 = g3.sum(axis=0)  # (10,): the bias was added to every row, so its rows add up
    grad_a2 = g3 @ w3.T  # (n, 64)

    # ReLU 2 passes the gradient where its input was positive, then layer 2.
    g2 = grad_a2 * (z2 > 0)
    grad_w2 = (g2.T @ a1).T  # (128, 64)
    grad_b2 = g2.sum(axis=0)
    grad_a1 = g2 @ w2.T  # (n, 128)

    # ReLU 1, then layer 1: no intermediate gradient, since x is data.
    g1 = grad_a1 * (z1 > 0)
    grad_w1 = (g1.T @ x).T  # (784, 128)
    grad_b1 = g1.sum(axis=0)
    return [(grad_w1, grad_b1), (grad_w2, grad_b2), (grad_w3, grad_b3)]


def compare(name: str, by_hand, by_engine) -> bool:
    """Print both gradients (their first values) and whether they agree."""
    diff = float(np.abs(by_hand - by_engine).max())
    ok = np.allclose(by_hand, by_engine, rtol=1e-5, atol=1e-7)
    print(
        f"  {name:<4} {str(by_hand.shape):<11} by hand {np.round(by_hand.ravel()[:3], 6)!s:<30}"
        f" backward() {np.round(by_engine.ravel()[:3], 6)!s:<30} max diff {diff:.1e}"
        f"  {'ok' if ok else 'DIFFERENT'}"
    )
    return bool(ok)


def network_test(params, x, labels) -> bool:
    """backward() and the hand-written backward give the same gradient for every parameter."""
    loss = F.cross_entropy(forward(params, x), labels)
    print("the engine's tape, the order loss.backward() runs the nodes in:")
    print(mg.autograd.tape(loss))
    loss.backward()
    print(f"loss = {loss.item():.6f}; gradients (first three values of each):")
    ok = True
    by_hand = backward_by_hand(params, x, labels)
    for layer, ((w, b), (grad_w, grad_b)) in enumerate(zip(params, by_hand, strict=True)):
        ok &= compare(f"w{layer + 1}", grad_w, w.grad.detach().numpy())
        ok &= compare(f"b{layer + 1}", grad_b, b.grad.detach().numpy())
    # The first layer's input is data: its node was told not to compute that gradient.
    first = [node for node in mg.autograd.tape(loss) if node.function is LinearLayer][-1]
    print(f"first layer's needs_input_grad = {first.needs_input_grad}: no gradient for the images")
    return ok and first.needs_input_grad == (False, True)


def nn_linear_test(params, x, labels) -> bool:
    """mg.nn.Linear keeps weight as (out, in) = W.T; with the same numbers it gives the same."""
    layers = []
    for weights, bias in params:
        f, h = weights.shape
        layer = mg.nn.Linear(f, h)
        layer.load_state_dict({"weight": weights.detach().T, "bias": bias.detach()})
        layers += [layer, mg.nn.ReLU()]
    model = mg.nn.Sequential(*layers[:-1])  # no ReLU after the last layer
    F.cross_entropy(model(x), labels).backward()
    ok = True
    for (weights, bias), layer in zip(params, model[::2], strict=True):
        ok &= np.allclose(layer.weight.grad.detach().numpy().T, weights.grad.detach().numpy(), rtol=1e-5, atol=1e-7)
        ok &= np.allclose(layer.bias.grad.detach().numpy(), bias.grad.detach().numpy(), rtol=1e-5, atol=1e-7)
    print(f"mg.nn.Linear, weight = W.T: weight.grad.T equals W.grad for every layer: {ok}")
    return bool(ok)


# ---- 4. the SGD step, and zeroing gradients ----------------------------------------------------


def sgd_test(params, x, labels, lr: float = 0.1) -> bool:
    """SGD: p <- p - lr * p.grad. Gradients add up over backward calls, so zero them each step."""
    flat = [p for pair in params for p in pair]
    expected = [p.detach().numpy() - lr * p.grad.detach().numpy() for p in flat]  # the update, by hand
    optimizer = mg.optim.SGD(flat, lr=lr)
    optimizer.step()
    stepped = all(np.array_equal(p.detach().numpy(), e) for p, e in zip(flat, expected, strict=True))
    print(f"SGD step equals p - lr * p.grad for every parameter: {stepped}")

    optimizer.zero_grad()  # the step used these gradients: forget them before the next batch
    F.cross_entropy(forward(params, x), labels).backward()
    once = flat[0].grad.detach().numpy()
    F.cross_entropy(forward(params, x), labels).backward()  # forgot zero_grad(): it adds up
    doubled = np.allclose(flat[0].grad.detach().numpy(), 2 * once, rtol=1e-6)
    optimizer.zero_grad()  # sets every .grad to None, as PyTorch does
    zeroed = all(p.grad is None for p in flat)
    print(
        f"two backward() calls without zero_grad() give twice the gradient: {doubled}; "
        f"after zero_grad() every .grad is None: {zeroed}"
    )
    return stepped and doubled and zeroed


# ---- 5. gradcheck ------------------------------------------------------------------------------


def gradcheck_test() -> bool:
    """Finite differences agree with LinearLayer.backward, alone and with a bias, in float64."""
    x = mg.randn(3, 4, dtype="float64", requires_grad=True)
    weights = mg.randn(4, 2, dtype="float64", requires_grad=True)
    bias = mg.randn(2, dtype="float64", requires_grad=True)
    alone = mg.gradcheck(LinearLayer.apply, (x, weights))
    with_bias = mg.gradcheck(lambda x, w, b: LinearLayer.apply(x, w) + b, (x, weights, bias))
    print(f"gradcheck(LinearLayer): {alone}; with a bias: {with_bias}")
    return alone and with_bias


def main() -> int:
    mg.manual_seed(0)
    results = {}
    print("== 2. dummy input: all-ones input, so the weight gradient is all ones")
    results["dummy input"] = dummy_input_test()

    print(f"\n== 3. the network {' -> '.join(map(str, SIZES))}, batch of {BATCH}")
    params = make_params()
    x = mg.randn(BATCH, SIZES[0])  # stand-ins for MNIST images
    labels = mg.tensor([3, 1, 4, 1])
    results["by hand = backward()"] = network_test(params, x, labels)
    results["nn.Linear mapping"] = nn_linear_test(params, x, labels)

    print("\n== 4. SGD step and zero_grad")
    results["SGD"] = sgd_test(params, x, labels)

    print("\n== 5. gradcheck in float64")
    try:
        results["gradcheck"] = gradcheck_test()
    except RuntimeError as error:  # gradcheck names the worst element when it fails
        print(error)
        results["gradcheck"] = False

    failed = [name for name, ok in results.items() if not ok]
    print("\n" + ("all checks passed" if not failed else "FAILED: " + ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
