"""The floor: the tutorial's network trained in plain NumPy, forward and backward written by hand.

No tape, no Tensor, no Function objects: just the array operations that any engine on NumPy has
to run for Linear -> ReLU -> ... -> Linear, cross-entropy and SGD. The code is what a careful
person writes by hand: float32 throughout, in-place updates where they are the obvious way to
write it, nothing an engine could not also do. How far minigrad is above this is its overhead.
"""

from __future__ import annotations

import numpy as np


class NumpyMLP:
    """Linear layers with ReLU between them, cross-entropy loss and torch.optim.SGD's update.

    `layers` is a list of (weight (out, in), bias (out,)) arrays; they are copied. A training
    step is forward, backward and step, kept apart so that the benchmark can time each one.
    """

    def __init__(
        self,
        layers,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        self.weights = [np.array(w, dtype=np.float32) for w, _ in layers]
        self.biases = [np.array(b, dtype=np.float32) for _, b in layers]
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.weight_decay = weight_decay
        # Starting from zero, the first update b = momentum * 0 + g is torch's b = g exactly.
        self.buffers = [np.zeros_like(p) for p in self.weights + self.biases]

    def forward(self, x):
        """The logits, and the input of every layer (kept for backward)."""
        inputs = []
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            inputs.append(x)
            x = x @ w.T
            x += b
            if i < last:
                np.maximum(x, 0, out=x)  # ReLU; its output is also the mask for backward
        return x, inputs

    def backward(self, grad, inputs) -> list:
        """The gradients of weights then biases, from the logits' gradient and forward's inputs."""
        weight_grads, bias_grads = [], []
        for i in reversed(range(len(self.weights))):
            weight_grads.append(grad.T @ inputs[i])
            bias_grads.append(grad.sum(axis=0))
            if i:  # the gradient for the layer below, through its ReLU
                grad = grad @ self.weights[i]
                grad *= inputs[i] > 0
        return weight_grads[::-1] + bias_grads[::-1]

    def step(self, grads) -> None:
        """torch.optim.SGD's update of every parameter, in place (`grads` is used up)."""
        params = self.weights + self.biases
        for param, g, buffer in zip(params, grads, self.buffers, strict=True):
            if self.weight_decay:
                g += self.weight_decay * param
            buffer *= self.momentum
            buffer += g
            if self.nesterov:
                g += self.momentum * buffer
            else:
                g = buffer
            param -= self.lr * g

    def train_step(self, x, target) -> float:
        """One SGD step on a batch; returns the batch's mean cross-entropy before the step."""
        logits, inputs = self.forward(x)
        loss, grad = cross_entropy(logits, target)
        self.step(self.backward(grad, inputs))
        return loss

    def predict(self, x):
        """The predicted class of each row."""
        return self.forward(x)[0].argmax(axis=1)


def cross_entropy(logits, target):
    """Mean of -log softmax(logits)[target], and its gradient (softmax - onehot) / N."""
    rows = np.arange(len(target))
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    loss = (np.log(total[:, 0]) - shifted[rows, target]).mean()
    exp /= total  # the softmax, which becomes the gradient
    exp[rows, target] -= 1
    exp *= 1.0 / len(target)
    return loss, exp
