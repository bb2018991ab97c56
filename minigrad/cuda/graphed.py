"""The whole training step of a small MLP as one CUDA graph, replayed per batch (opt-in).

    step = mg.cuda.graphed_step(model, loss_fn, optimizer, batch_size=64)
    for x, y in loader:
        loss = step(x, y)  # as: zero_grad(); loss_fn(model(x), y).backward(); step()

An eager step on the GPU is bound by the CPU: Python, the engine and CuPy spend some microseconds
on each of its few dozen kernel launches, while the GPU needs less. A CUDA graph records the
kernels of a step once and replays them with one launch. CuPy refuses to record its matrix
products (cuBLAS, CuPy issue 6290), so the captured step is written out with our own kernels:
for a network of Linear layers with ReLU between them (the tutorial's MLP), cross-entropy
(mean) and SGD, it is 3 * layers + 1 launches: a GEMM with bias (+ ReLU) per layer, one fused
cross-entropy forward and backward, per layer a GEMM for the weight gradient that also sums the
bias gradient, and one for the input gradient times the ReLU mask, then one SGD launch for every
parameter.

What stays fixed in the graph: every array it touches (the batch is copied into static buffers,
the parameters and momentum buffers are the model's and the optimizer's own arrays, updated in
place), the batch size and the optimizer's settings. The learning rate is read on the device, so
a scheduler works. A batch of another size or dtype (the last, smaller one) runs the eager step.
Replaced parameter or buffer arrays, or changed settings, make the next step capture again.
Parameters' .grad are not filled by a captured step.
"""

from __future__ import annotations

from .. import backend
from ..fused import gemm, kernels
from ..fused.sources import MAX_BLOCKS
from ..grad_mode import no_grad
from ..nn import CrossEntropyLoss, Linear, ReLU, Sequential
from ..optim import SGD
from ..tensor import Tensor


def graphed_step(model, loss_fn, optimizer, batch_size: int, layers=None) -> GraphedStep:
    """A GraphedStep for `model`: a Sequential of Linear and ReLU, or an MLP given by `layers`.

    `layers` lists the model's Linear layers in order, when its forward is ReLU between them but
    it is not a Sequential (the tutorial's NeuralNet: [model.fc1, model.fc2, model.fc3]).
    """
    return GraphedStep(model, loss_fn, optimizer, batch_size, layers)


def _linear_layers(model, layers) -> list:
    if layers is None:
        if not isinstance(model, Sequential):
            raise TypeError(f"graphed_step: pass layers=[...] (the Linear layers in order) for a "
                            f"{type(model).__name__}; only a Sequential is read by itself")
        modules = list(model)
        shape_ok = modules and len(modules) % 2 == 1 and all(
            isinstance(m, Linear if i % 2 == 0 else ReLU) for i, m in enumerate(modules))
        if not shape_ok:
            names = ", ".join(type(m).__name__ for m in modules)
            raise TypeError(f"graphed_step: expected Linear, ReLU, Linear, ..., Linear; got "
                            f"Sequential({names})")
        layers = modules[::2]
    for layer in layers:
        if not isinstance(layer, Linear) or layer.bias is None:
            raise TypeError(f"graphed_step: every layer must be a Linear with a bias, got {layer}")
    return list(layers)


def _check_loss_and_optimizer(loss_fn, optimizer, params) -> None:
    if not isinstance(loss_fn, CrossEntropyLoss) or loss_fn.reduction != "mean":
        raise TypeError(f"graphed_step: the loss must be CrossEntropyLoss() (mean), got {loss_fn}")
    if type(optimizer) is not SGD or len(optimizer.param_groups) != 1:
        raise TypeError("graphed_step: the optimizer must be one mg.optim.SGD with one param group")
    if optimizer.param_groups[0]["maximize"]:
        raise ValueError("graphed_step: SGD(maximize=True) is not supported; use the eager step")
    if {id(p) for p in optimizer.param_groups[0]["params"]} != {id(p) for p in params}:
        raise ValueError("graphed_step: the optimizer must update exactly the layers' parameters")
    dtype = params[0].dtype
    for param in params:
        if param.device.type != "cuda" or param.dtype != dtype or param.dtype not in (
                backend.float32, backend.float64) or not param.array.flags.c_contiguous:
            raise ValueError(f"graphed_step: parameters must be contiguous float32/float64 CUDA "
                             f"arrays of one dtype; got {param.dtype} on {param.device}")


class CapturedMLP:
    """The kernels of one MLP training step and the CUDA graph that records them.

    Linear layers (weights, biases) with ReLU between them, mean cross-entropy and one SGD
    group: every array the graph touches is made here, before the capture. GraphedStep (below)
    and mg.compile's capture pass (minigrad/compiler/passes.py) both run a step through it:
    put the batch in, `launch()`, read `loss`, `outputs[-1]` (the logits) and `grads`.
    """

    def __init__(self, weights, biases, optimizer, batch_size: int):
        self.weights, self.biases, self.optimizer = list(weights), list(biases), optimizer
        self.params = [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]
        self.batch_size, self.dtype = batch_size, self.params[0].dtype
        self.device = self.params[0].device
        self.graph, self._captured_for = None, None
        xp, b, dt = backend.module_for(self.device), batch_size, self.dtype
        sizes = [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]
        with xp.cuda.Device(self.device.index):
            self.x = xp.empty((b, sizes[0]), dtype=dt)
            self.y = xp.empty(b, dtype=backend.int64)
            self.outputs = [xp.empty((b, n), dtype=dt) for n in sizes[1:]]  # ReLU'd, then logits
            self.output_grads = [xp.empty((b, n), dtype=dt) for n in sizes[1:]]  # pre-activation
            # The gradients, one after another in one array: a replay hands out a copy of them
            # all in one launch (fresh_grads).
            self.flat_grads = xp.empty(sum(p.array.size for p in self.params), dtype=dt)
            self.grads = _split(self.flat_grads, self.params)
            self.loss = xp.empty((), dtype=dt)
            self.lr = xp.empty((), dtype=dt)
            self.space = (xp.zeros(1, dtype=backend.uint64), xp.empty(MAX_BLOCKS, dtype=dt))
            # One split-K workspace for every product: they run one after another.
            layers = list(zip(sizes, sizes[1:], strict=False))  # (fan_in, fan_out) per layer
            needs = [gemm.space_needed(*mnk) for fan_in, fan_out in layers for mnk in (
                (b, fan_out, fan_in),  # forward: x @ W.T
                (fan_out, fan_in, b),  # weight gradient: grad.T @ x
                (b, fan_in, fan_out))]  # input gradient: grad @ W
            self.gemm_space = gemm.make_space(xp, max(s for s, _ in needs),
                                              max(c for _, c in needs), dt)
        self._lr_value = None
        self._rows = None  # 0, 1, ..., batch_size - 1 on the device (set_batch's gather order)

    def fresh_grads(self) -> list:
        """A copy of every parameter's gradient (views of one new array: one launch)."""
        return _split(self.flat_grads.copy(), self.params)

    def set_batch(self, x, y) -> None:
        """Copy a batch (arrays) into the graph's input buffers: one gather_batch launch (rows
        0..b-1 of the batch, in order) where it takes the arrays, else two copies."""
        if (x.ndim == 2 and y.ndim == 1 and y.dtype == backend.int64 and y.flags.c_contiguous
                and kernels.applies(x, self.x)):
            if self._rows is None:
                self._rows = backend.module_for(self.device).arange(self.batch_size,
                                                                    dtype=backend.int64)
            kernels.gather_batch(x, y, self._rows, 0, self.batch_size, out=(self.x, self.y))
            return
        xp = backend.module_for(self.device)
        xp.copyto(self.x, x)
        xp.copyto(self.y, y)

    def set_lr(self) -> None:
        """The learning rate lives on the device, so a scheduler's change reaches the graph."""
        group = self.optimizer.param_groups[0]
        if group["maximize"]:  # set after the graph was made: the kernels do not know it
            raise ValueError("graphed_step: SGD(maximize=True) is not supported; use the eager "
                             "step")
        if group["lr"] != self._lr_value:
            self.lr.fill(group["lr"])
            self._lr_value = group["lr"]

    def launch(self) -> None:
        xp = backend.module_for(self.device)
        self.graph.launch(stream=xp.cuda.get_current_stream())

    def signature(self) -> tuple:
        """What the graph has baked in: the optimizer's settings and the very array objects of
        the parameters and momentum buffers (an array object never moves, so comparing them by
        identity is enough, and cheaper at every replay than asking each for its address)."""
        group = self.optimizer.param_groups[0]
        state = self.optimizer.state
        buffers = (state.get(param, {}).get("momentum_buffer") for param in self.params)
        return (group["momentum"], group["dampening"], group["weight_decay"], group["nesterov"],
                *(param.array for param in self.params), *buffers)  # (read only: a missing
        # buffer is made by the eager step before a capture, never here)

    def captured(self) -> bool:
        """Whether the graph is there and still fits the arrays and settings it baked in."""
        if self.graph is None:
            return False
        now = self.signature()
        return len(now) == len(self._captured_for) and all(
            a is b or (not backend.is_array(a) and not backend.is_array(b) and a == b)
            for a, b in zip(now, self._captured_for, strict=True))

    def _sgd_arrays(self) -> list:
        """param, grad, momentum buffer per parameter (the parameter again without momentum)."""
        momentum = self.optimizer.param_groups[0]["momentum"]
        found = []
        for param, grad in zip(self.params, self.grads, strict=True):
            state = self.optimizer.state.setdefault(param, {})
            buffer, first_step = kernels._momentum_buffer(param.array, state, momentum)
            if first_step:  # the eager step before a capture always makes the buffers
                raise RuntimeError("graphed_step: a momentum buffer is missing after a step")
            found += [param.array, grad, buffer]
        return found

    def forward(self) -> None:
        if not kernels.enabled:  # switched off after the step was made
            raise RuntimeError("graphed_step: the captured step is made of minigrad's fused CUDA "
                               "kernels, which were switched off; switch them on again: "
                               "mg.cuda.kernels.enabled = True")
        inputs = self.x
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            hidden = index < len(self.weights) - 1
            gemm.matmul(inputs, weight.array, self.outputs[index], transpose_b=True,
                        bias=bias.array, relu=hidden, space=self.gemm_space)
            inputs = self.outputs[index]

    def _launch_step(self) -> None:
        """Every kernel of one step, on the current stream (what the graph records)."""
        self._launch_gradients()
        self._launch_sgd()

    def _launch_gradients(self) -> None:
        """The forward, the loss and the gradients, into the graph's own buffers."""
        self.forward()
        kernels.cross_entropy_forward(self.outputs[-1], self.y, 1.0 / self.batch_size,
                                      out=self.output_grads[-1], as_gradient=True,
                                      space=self.space, loss=self.loss)
        for index in reversed(range(len(self.weights))):
            grad = self.output_grads[index]
            inputs = self.x if index == 0 else self.outputs[index - 1]
            gemm.matmul(grad, inputs, self.grads[2 * index], transpose_a=True,
                        row_sum=self.grads[2 * index + 1], space=self.gemm_space)
            if index:  # the input gradient, times the earlier ReLU's mask
                gemm.matmul(grad, self.weights[index].array, self.output_grads[index - 1],
                            mask=self.outputs[index - 1], space=self.gemm_space)

    def _launch_sgd(self) -> None:
        group = self.optimizer.param_groups[0]
        real, flag = self.dtype.type, kernels._int
        for tensors, total, count in self._sgd_launches:
            kernels.launch("sgd_update_many", self.dtype, total, (
                tensors, flag(count), kernels._long(total), self.lr, real(group["momentum"]),
                real(group["dampening"]), real(group["weight_decay"]),
                flag(bool(group["nesterov"])), flag(0)))

    def capture(self) -> None:
        """Record the step's kernels as a CUDA graph (after a real step made the momentum
        buffers)."""
        xp = backend.module_for(self.device)
        arrays = self._sgd_arrays()
        # (SgdTensors struct, elements, tensors) per launch: the addresses are baked in
        self._sgd_launches = kernels.sgd_launches(arrays[0::3], arrays[1::3], arrays[2::3])
        # Each kernel is compiled, and with CUDA's lazy loading loaded, at its first launch:
        # launch each once before the capture. The gradients go to the graph's own buffers
        # (harmless); the SGD launch has no elements.
        self._launch_gradients()
        kernels.launch("sgd_update_many", self.dtype, 0, (
            self._sgd_launches[0][0], kernels._int(0), kernels._long(0), self.lr,
            *(self.dtype.type(0),) * 3, kernels._int(0), kernels._int(0)))
        stream = xp.cuda.Stream(non_blocking=True)
        with stream:
            stream.begin_capture()
            try:
                self._launch_step()
            except BaseException:
                try:  # end the broken capture, but report what broke it, not end_capture's error
                    stream.end_capture()
                except Exception:  # noqa: S110
                    pass
                raise
            graph = stream.end_capture()
        self.graph, self._captured_for = graph, self.signature()


def _split(flat, params) -> list:
    """Consecutive pieces of a flat array, shaped like the parameters (C-contiguous views)."""
    pieces, start = [], 0
    for param in params:
        size = param.array.size
        pieces.append(flat[start:start + size].reshape(param.array.shape))
        start += size
    return pieces


class GraphedStep:
    """One training step (forward, backward, SGD) of an MLP, captured once and replayed."""

    def __init__(self, model, loss_fn, optimizer, batch_size: int, layers=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"graphed_step: batch_size must be a positive int, got {batch_size!r}")
        if not kernels.enabled:
            raise RuntimeError(
                "graphed_step: the captured step is made of minigrad's fused CUDA kernels, which "
                "are switched off; switch them on first: mg.cuda.kernels.enabled = True"
            )
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.layers = _linear_layers(model, layers)
        self.params = [p for layer in self.layers for p in (layer.weight, layer.bias)]
        _check_loss_and_optimizer(loss_fn, optimizer, self.params)
        self.batch_size, self.dtype = batch_size, self.params[0].dtype
        self.device = self.params[0].device
        self.replays = 0  # steps run by the graph (the others ran eagerly)
        self.mlp = CapturedMLP([layer.weight for layer in self.layers],
                               [layer.bias for layer in self.layers], optimizer, batch_size)

    # ---- the step ------------------------------------------------------------------------------

    def __call__(self, x, y):
        """Train on one batch; returns the loss (a 0-d Tensor of its own)."""
        if not self._fits(x, y):
            return self._eager_step(x, y)  # the last, smaller batch, or another dtype
        self.mlp.set_batch(x.array, y.array)
        self.mlp.set_lr()
        if not self.mlp.captured():
            return self._first_step(x, y)
        self.mlp.launch()
        self.replays += 1
        return Tensor._wrap_no_copy_no_checks(self.mlp.loss.copy(), self.device)

    def _fits(self, x, y) -> bool:
        return (tuple(x.shape) == self.mlp.x.shape and tuple(y.shape) == self.mlp.y.shape
                and x.dtype == self.dtype and x.device == self.device
                and y.device == self.device and y.dtype.kind in "iu")

    def _eager_step(self, x, y):
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss

    def _first_step(self, x, y):
        """Check the kernels against the model, run this step eagerly, then capture the graph."""
        self._check_forward(x)
        loss = self._eager_step(x, y)  # SGD makes the momentum buffers, as on any first step
        self.mlp.capture()
        return loss

    def _check_forward(self, x) -> None:
        """Refuse a model whose forward is not the MLP these kernels compute (checked once)."""
        self.mlp.forward()
        with no_grad():
            expected = self.model(x).array
        tolerance = 1e-4 if self.dtype == backend.float32 else 1e-10
        scale = float(abs(expected).max()) + 1.0
        gap = float(abs(expected - self.mlp.outputs[-1]).max())
        if not gap <= tolerance * scale:
            raise ValueError(f"graphed_step: the model's forward differs from Linear layers with "
                             f"ReLU between them (largest gap {gap:.3g}); pass the right layers=")
