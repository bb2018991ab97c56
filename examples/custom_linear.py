"""The seed tutorial's Linear_Layer, copied verbatim, with its gradients checked three ways.

    python examples/custom_linear.py

The class below is the tutorial's cell as it stands; only `import torch` became
`import minigrad as torch` (and `import torch.nn as nn`, `import minigrad.nn as nn`). It runs
because a minigrad Function, like PyTorch's, receives Tensors: `torch.mm`, `unsqueeze`,
`expand_as`, `+=`, `.t()`, `.mm` and `.sum(0)` are Tensor operations here too, and the three
gradients it returns for two inputs are accepted (the extra trailing `None` is dropped).

1. The tutorial's test: `Linear_Layer.apply(dummy_input, dummy_weight)`, then backward with an
   incoming gradient of ones: the weight gradient is all ones.
2. The tutorial's 3-layer network (2 -> 3 -> 5 -> 1): its manual backward with `Linear_Layer_`,
   the engine's `output3.backward()`, and PyTorch's autograd on the same weights agree.
3. The MNIST-sized network (784 -> 128 -> ReLU -> 64 -> ReLU -> 10, cross-entropy) built from
   `Linear_Layer.apply`: `loss.backward()`, a backward written out in NumPy, and PyTorch agree.
4. `mg.gradcheck` and `mg.gradgradcheck`: the backward is made of Tensor operations, so it is
   differentiable again, and both checks pass in float64.

Exit status 0 when every check holds, 1 when one fails. Change the code and run it again.
PyTorch (`pip install torch`) is needed only for the comparisons with it; without it they are
skipped and say so.
"""

# The tutorial's cells stay verbatim: trailing spaces, long comment lines, imports as written.
# ruff: noqa: W291, W293, E501, I001, UP039

from __future__ import annotations

import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
import minigrad as torch
import minigrad.nn as nn
# keep in mind that @staticmethod simply let's us initiate a class without instantiating it
# Remember that our gradient will be of equal dimensions as our weight parameters


class Linear_Layer(torch.autograd.Function):
    """
    Define a Linear Layer operation
    """
    @staticmethod
    def forward(ctx, input,weights, bias = None):
        """
        In the forward pass, we feed this class all necessary objects to 
        compute a  linear layer (input, weights, and bias)
        """
        # input.dim = (B, in_dim)
        # weights.dim = (in_dim, out_dim)
        
        # given that the grad(output) wrt weight parameters equals the input,
        # we will save it to use for backpropagation
        ctx.save_for_backward(input, weights, bias)
        
        
        # linear transformation
        # (B, out_dim) = (B, in_dim) * (in_dim, out_dim)
        output = torch.mm(input, weights)
        
        if bias is not None:
            # bias.shape = (out_dim)
            
            # expanded_bias.shape = (B, out_dim), repeats bias B times
            expanded_bias = bias.unsqueeze(0).expand_as(output)
            
            # element-wise addition
            output += expanded_bias
        
        return output

    
    # ```incoming_grad``` represents the incoming gradient that we defined on the "Backward Pass" section
    # incoming_grad.shape == output.shape == (B, out_dim)
    
    @staticmethod
    def backward(ctx, incoming_grad):
        """
        In the backward pass we receive a Tensor (output_grad) containing the 
        gradient of the loss with respect to our f(x) output, 
        and we now need to compute the gradient of the loss
        with respect to our defined function.
        """
        # incoming_grad.shape = (B, out_dim)
        
        # extract inputs from forward pass
        input, weights, bias = ctx.saved_tensors 
        
        # assume none of the inputs need gradients
        grad_input = grad_weight = grad_bias = None
        
        
        # we will figure out which forward inputs need grads
        # with ctx.needs_input_grad, which stores True/False
        # values in the order that the forward inputs came 
        
        # in each of the below gradients, 
        # we need to return as many parameters as we used during forward pass

        
        # if input requires grad
        if ctx.needs_input_grad[0]:
            # (B, in_dim) = (B, out_dim) * (out_dim, in_dim)
            grad_input = incoming_grad.mm(weights.t())
            
        # if weights require grad
        if ctx.needs_input_grad[1]:
            # (out_dim, in_dim) = (out_dim, B) * (B, in_dim) 
            grad_weight = incoming_grad.t().mm(input)
            
        # if bias requires grad
        if bias is not None and ctx.needs_input_grad[2]:
            # below operation is equivalent of doing it the "long" way
            # given that bias grads = 1,
            # torch.ones((1,B)).mm(incoming_grad)  
            # (out) = (1,B)*(B,out_dim)
            grad_bias = incoming_grad.sum(0)
        
        
        
        
        # below, if any of the grads = None, they will simply be ignored
        
        # add grad_output.t() to match original layout of weight parameter
        return grad_input, grad_weight.t(), grad_bias
        
        


# ---- 1. the tutorial's test: dummy input, dummy weight -------------------------------------


def dummy_input_test() -> bool:
    """The tutorial's cells: y = ones (1, 2) . W (2, 3), so dL/dW = ones' . ones = all ones."""
    dummy_input = torch.ones((1, 2))  # data: its gradient is never asked for
    dummy_weight = nn.Parameter(torch.randn((2, 3)))
    output = Linear_Layer.apply(dummy_input, dummy_weight)  # two inputs: bias stays None
    incoming_grad = torch.ones((1, 3))  # shape equals output dims
    output.backward(incoming_grad)
    print(f"output {output.shape}, grad_fn {output.grad_fn}; dummy_weight.grad =")
    print(dummy_weight.grad)
    return bool(np.array_equal(dummy_weight.grad.numpy(), np.ones((2, 3))))


# ---- 2. the tutorial's 3-layer network: by hand, by the engine, by PyTorch -----------------

class Linear_Layer_():
    def __init__(self):
        ''

    def forward(self, input,weights, bias = None):
        self.input = input
        self.weights = weights
        self.bias = bias
        
        output = torch.mm(input, weights)
        
        if bias is not None:
            # bias.shape = (out_dim)
            
            # expanded_bias.shape = (B, out_dim), repeats bias B times
            expanded_bias = bias.unsqueeze(0).expand_as(output)
            
            # element-wise addition
            output += expanded_bias
        
        return output

    def backward(self, incoming_grad):

        # extract inputs from forward pass
        input = self.input
        weights = self.weights
        bias = self.bias
        
        grad_input = grad_weight = grad_bias = None
        
        # if input requires grad
        if input.requires_grad:
            grad_input = incoming_grad.mm(weights.t())
            
        # if weights require grad
        if weights.requires_grad:
            grad_weight = incoming_grad.t().mm(input)
            
         # if bias requires grad
        if bias.requires_grad:
            grad_bias = incoming_grad.sum(0)
        
        return grad_input, grad_weight.t(), grad_bias


def make_params(sizes) -> list:
    """(weights (f, h), bias (h,)) per layer, as nn.Parameter, uniform in +-1/sqrt(f)."""
    params = []
    for f, h in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1 / f**0.5
        weights = nn.Parameter((mg.rand(f, h) * 2 - 1) * bound)
        bias = nn.Parameter((mg.rand(h) * 2 - 1) * bound)
        params.append((weights, bias))
    return params


def compare(name: str, ours, theirs: dict) -> bool:
    """Print a gradient's first values and whether each other computation of it agrees."""
    ok, notes = True, []
    for who, value in theirs.items():
        if value is None:
            notes.append(f"{who} skipped")
            continue
        same = np.allclose(ours, value, rtol=1e-5, atol=1e-6)
        notes.append(f"{who} {float(np.abs(ours - value).max()):.1e}")
        ok &= bool(same)
    print(f"  {name:<3} {str(ours.shape):<11} {np.round(ours.ravel()[:3], 4)!s:<28} "
          f"max diff: {', '.join(notes):<40} {'ok' if ok else 'DIFFERENT'}")
    return ok


def pytorch_gradients(params, x, labels=None):
    """The same network in PyTorch, on copies of the weights: torch's own autograd's gradients.

    Without labels it is the tutorial's network (no activation, backward from a 1x1 output);
    with labels, ReLU between layers and a mean cross-entropy. None when PyTorch is missing.
    """
    try:
        import torch as pytorch  # the real PyTorch: in this file, `torch` is minigrad
    except ImportError:
        return None
    leaves = [(pytorch.tensor(w.detach().numpy(), requires_grad=True),
               pytorch.tensor(b.detach().numpy(), requires_grad=True)) for w, b in params]
    out = pytorch.tensor(x.detach().numpy())
    for i, (w, b) in enumerate(leaves):
        out = pytorch.mm(out, w) + b
        if labels is not None and i < len(leaves) - 1:
            out = out.relu()
    if labels is not None:
        out = pytorch.nn.functional.cross_entropy(out, pytorch.tensor(labels.numpy()))
    out.backward(pytorch.ones_like(out))
    return [(w.grad.numpy(), b.grad.numpy()) for w, b in leaves]


def tutorial_network_test() -> bool:
    """The tutorial's 2 -> 3 -> 5 -> 1 network: its manual backward, the engine, PyTorch."""
    input = torch.ones((1, 2))
    params = [(nn.Parameter(torch.randn(f, h)), nn.Parameter(torch.randn(h)))
              for f, h in ((2, 3), (3, 5), (5, 1))]
    # The tutorial's manual pass: each Linear_Layer_ remembers its inputs, then backward is
    # called by hand from the last layer to the first, each one's input gradient feeding the next.
    layers = [Linear_Layer_() for _ in params]
    output = input
    for layer, (weights, bias) in zip(layers, params, strict=True):
        output = layer.forward(output, weights, bias)
    incoming_grad, by_hand = torch.tensor([[1.0]]), []
    for layer in reversed(layers):
        incoming_grad, weight_grad, bias_grad = layer.backward(incoming_grad)
        by_hand.insert(0, (weight_grad, bias_grad))
    print(f"manual backward done; the first layer's input gradient is {incoming_grad}")

    # The engine: the same three layers through Linear_Layer.apply, then one backward().
    output3 = input
    for weights, bias in params:
        output3 = Linear_Layer.apply(output3, weights, bias)
    output3.backward()
    print("the tape output3.backward() ran:")
    print(mg.autograd.tape(output3))
    torch_grads = pytorch_gradients(params, input)
    ok = True
    for i, ((w, b), (hand_w, hand_b)) in enumerate(zip(params, by_hand, strict=True)):
        theirs = torch_grads[i] if torch_grads else (None, None)
        ok &= compare(f"w{i + 1}", w.grad.numpy(),
                      {"by hand": hand_w.detach().numpy(), "torch": theirs[0]})
        ok &= compare(f"b{i + 1}", b.grad.numpy(),
                      {"by hand": hand_b.detach().numpy(), "torch": theirs[1]})
    return ok


# ---- 3. the MNIST-sized network: the engine, NumPy by hand, PyTorch -------------------------


def backward_by_hand(params, x, labels) -> list:
    """The network's gradients in NumPy, written out layer by layer, last layer first."""
    (w1, b1), (w2, b2), (w3, b3) = [(w.detach().numpy(), b.detach().numpy()) for w, b in params]
    x, labels, n = x.numpy(), labels.numpy(), len(labels)
    z1 = x @ w1 + b1  # forward again, keeping each layer's input and pre-activation
    a1 = np.maximum(z1, 0)
    z2 = a1 @ w2 + b2
    a2 = np.maximum(z2, 0)
    z3 = a2 @ w3 + b3
    exp = np.exp(z3 - z3.max(axis=1, keepdims=True))  # mean cross-entropy:
    g3 = exp / exp.sum(axis=1, keepdims=True)  # dL/dz3 = (softmax(z3) - onehot) / n
    g3[np.arange(n), labels] -= 1
    g3 /= n
    grad_w3 = (g3.T @ a2).T  # receiver, (64, 10)
    grad_b3 = g3.sum(axis=0)  # the bias was added to every row: its rows add up
    g2 = (g3 @ w3.T) * (z2 > 0)  # intermediate, then ReLU 2's slope
    grad_w2, grad_b2 = (g2.T @ a1).T, g2.sum(axis=0)
    g1 = (g2 @ w2.T) * (z1 > 0)
    grad_w1, grad_b1 = (g1.T @ x).T, g1.sum(axis=0)  # no input gradient: x is data
    return [(grad_w1, grad_b1), (grad_w2, grad_b2), (grad_w3, grad_b3)]


def mnist_network_test(batch: int = 4) -> bool:
    """784 -> 128 -> ReLU -> 64 -> ReLU -> 10 with cross-entropy, from Linear_Layer.apply."""
    params = make_params((784, 128, 64, 10))
    x = mg.randn(batch, 784)  # stand-ins for MNIST images
    labels = mg.tensor([3, 1, 4, 1, 5, 9, 2, 6][:batch])
    out = x
    for i, (weights, bias) in enumerate(params):
        out = Linear_Layer.apply(out, weights, bias)
        if i < len(params) - 1:
            out = out.relu()
    loss = F.cross_entropy(out, labels)
    loss.backward()
    print(f"loss = {loss.item():.6f}; the first layer's needs_input_grad = "
          f"{mg.autograd.tape(loss)[-1].needs_input_grad}: no gradient for the images")
    torch_grads = pytorch_gradients(params, x, labels)
    ok = True
    for i, ((w, b), (hand_w, hand_b)) in enumerate(
        zip(params, backward_by_hand(params, x, labels), strict=True)
    ):
        theirs = torch_grads[i] if torch_grads else (None, None)
        ok &= compare(f"w{i + 1}", w.grad.numpy(), {"by hand": hand_w, "torch": theirs[0]})
        ok &= compare(f"b{i + 1}", b.grad.numpy(), {"by hand": hand_b, "torch": theirs[1]})
    return ok


# ---- 4. gradcheck and gradgradcheck ---------------------------------------------------------


def gradcheck_test() -> bool:
    """Finite differences agree with Linear_Layer's backward, and with its derivative, in float64."""
    x = mg.randn(3, 4, dtype="float64", requires_grad=True)
    weights = mg.randn(4, 2, dtype="float64", requires_grad=True)
    bias = mg.randn(2, dtype="float64", requires_grad=True)
    first = mg.gradcheck(Linear_Layer.apply, (x, weights, bias))
    second = mg.gradgradcheck(Linear_Layer.apply, (x, weights, bias))
    print(f"gradcheck(Linear_Layer): {first}; gradgradcheck(Linear_Layer): {second}")
    return first and second


def main() -> int:
    mg.manual_seed(0)
    checks = [
        ("dummy input", "1. the tutorial's test: Linear_Layer.apply(dummy_input, dummy_weight)",
         dummy_input_test),
        ("tutorial network", "2. the tutorial's 3-layer network: by hand, backward(), PyTorch",
         tutorial_network_test),
        ("MNIST-sized network", "3. 784 -> 128 -> 64 -> 10: backward(), NumPy by hand, PyTorch",
         mnist_network_test),
        ("gradcheck", "4. gradcheck and gradgradcheck in float64", gradcheck_test),
    ]
    failed = []
    for name, title, check in checks:
        print(f"\n== {title}")
        try:
            ok = check()
        except RuntimeError as error:  # a check that fails names what differs
            print(error)
            ok = False
        if not ok:
            failed.append(name)
    print("\n" + ("all checks passed" if not failed else "FAILED: " + ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
