"""CapturedStep: a whole training step recorded once as a CUDA graph, then replayed (opt-in).

At batch 64 a step of the MNIST network is a few dozen tiny kernels: the GPU does each in
microseconds, and the time goes to Python and to launching them. A CUDA graph records the kernels
of one step (zero_grad, forward, loss, backward, optimizer.step) and launches them all again with
one call, so a replayed step costs two input copies and one graph launch.

    step = mg.cuda.CapturedStep(model, loss_fn, optimizer)
    for x, y in loader:                 # batches on the GPU
        loss = step(x, y)   # zero_grad, loss_fn(model(x), y), backward, optimizer.step

How it works (CuPy's Stream.begin_capture/end_capture and Graph.launch; the recipe of PyTorch's
torch.cuda.graphs):
1. The first call runs the step eagerly: every kernel gets compiled and the optimizer creates its
   momentum buffers (its first step is special, so it is never the captured one).
2. The second call runs eagerly on a side stream, allocating from a private memory pool: the pool
   then holds the blocks that the capture will ask for.
3. The third call copies the batch into static input buffers and captures the step on the side
   stream, allocating from the private pool. Capturing runs nothing; the graph is then launched.
4. Later calls copy the batch into the static buffers and launch the graph on the current stream.

What keeps it correct:
- A replay reads and writes exactly the arrays it was captured with. Every call checks that the
  model's parameters and the optimizer's buffers are still those arrays and that the optimizer's
  settings (lr, momentum, ...) are unchanged; if not (model.to, load_state_dict, a scheduler
  changing lr), the step is captured again.
- A batch of another shape or dtype (the last, smaller batch of an epoch) runs eagerly.
- Everything the graph allocates comes from its private pool, which nothing else allocates from,
  so a replay never overwrites an array made outside the graph.
- The loss returned is a copy: the graph's own output is overwritten by the next replay. After a
  replay, each parameter's .grad is the graph's gradient buffer (valid until the next call).
- Nothing in the step may read a value on the host (.item(), int(), bool()): CUDA forbids it while
  capturing. minigrad's Linear/ReLU/cross-entropy/SGD step reads nothing when the fused kernels
  are on (the array code's cross-entropy target check reads one number), and the capture fails
  with a clear error otherwise.
"""

from __future__ import annotations

from .. import backend
from . import kernels


class CapturedStep:
    """zero_grad, loss_fn(model(inputs), targets), backward and optimizer.step as one CUDA graph."""

    def __init__(self, model, loss_fn, optimizer):
        from ..tensor import Tensor  # here: minigrad.tensor imports the ops, which import this

        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self._wrap = Tensor._wrap
        self._cupy = backend.cupy_module()
        self._stream = self._cupy.cuda.Stream(non_blocking=True)  # capture needs a real stream
        self._pool = self._cupy.cuda.MemoryPool()  # the graph's memory, and only the graph's
        self._eager_calls = 0
        self._graph = None
        self._captured = None  # what the graph was captured with; see _fingerprint

    def __call__(self, inputs, targets):
        """One training step on a batch; returns the loss (a 0-d tensor on the GPU)."""
        if inputs.device.type != "cuda":
            raise ValueError(f"CapturedStep needs a batch on a CUDA device, got {inputs.device}")
        batch = (inputs.shape, inputs.dtype, targets.shape, targets.dtype, str(inputs.device))
        if self._graph is not None and batch != self._captured[0]:
            return self._step(inputs, targets)  # another shape: the graph cannot take it
        if self._graph is not None and self._fingerprint(batch) == self._captured:
            return self._replay(inputs, targets)
        self._eager_calls += 1
        if self._eager_calls == 1:
            return self._step(inputs, targets)
        if self._eager_calls == 2:
            return self._warm_up(inputs, targets)
        return self._capture(inputs, targets, batch)

    def _step(self, inputs, targets):
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(inputs), targets)
        loss.backward()
        self.optimizer.step()
        return loss

    def _fingerprint(self, batch) -> tuple:
        """The batch layout, the arrays a replay touches (by identity) and the settings."""
        arrays = [p.data for p in self.model.parameters()]
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                arrays.append(param.data)
                arrays += [v for v in self.optimizer.state.get(param, {}).values()
                           if backend.is_cuda_array(v)]
        settings = [sorted((k, v) for k, v in group.items() if k != "params")
                    for group in self.optimizer.param_groups]
        return batch, _Identities(arrays), settings, kernels.enabled

    def _warm_up(self, inputs, targets):
        """An eager step on the capture stream, filling the private pool."""
        cupy = self._cupy
        cupy.cuda.get_current_stream().synchronize()
        with cupy.cuda.using_allocator(self._pool.malloc), self._stream:
            loss = self._step(inputs, targets)
        self._stream.synchronize()
        return loss

    def _capture(self, inputs, targets, batch):
        cupy = self._cupy
        self._inputs = cupy.empty_like(inputs.data)  # held for the graph's life: never reused
        self._targets = cupy.empty_like(targets.data)
        cupy.copyto(self._inputs, inputs.data)
        cupy.copyto(self._targets, targets.data)
        static_inputs = self._wrap(self._inputs, inputs.device)
        static_targets = self._wrap(self._targets, targets.device)
        self._graph = None
        cupy.cuda.get_current_stream().synchronize()  # earlier steps and the copies are done
        with cupy.cuda.using_allocator(self._pool.malloc), self._stream:
            self._stream.begin_capture()
            try:
                loss = self._step(static_inputs, static_targets)
            except BaseException as error:
                try:
                    self._stream.end_capture()
                except Exception:  # the failed operation has already invalidated the capture
                    pass
                raise RuntimeError(
                    "CapturedStep: the step could not be captured as a CUDA graph. The likely "
                    "cause is a value read on the host during the step (.item(), int(), bool(), "
                    "or the cross-entropy target check when minigrad.cuda.kernels.enabled is "
                    f"False): {type(error).__name__}: {error}"
                ) from error
            graph = self._stream.end_capture()
        self._loss = loss.data
        self._grads = [(p, p.grad.data) for p in self.model.parameters() if p.grad is not None]
        self._graph, self._captured = graph, self._fingerprint(batch)
        return self._launch(inputs.device)

    def _replay(self, inputs, targets):
        self._cupy.copyto(self._inputs, inputs.data)
        self._cupy.copyto(self._targets, targets.data)
        return self._launch(inputs.device)

    def _launch(self, device):
        self._graph.launch()  # on the current stream, after the input copies
        for param, grad in self._grads:
            if param.grad is None or param.grad.data is not grad:
                param.grad = self._wrap(grad, device)
        return self._wrap(self._loss.copy(), device)


class _Identities:
    """A list of arrays compared by identity (==), not by value."""

    __slots__ = ("arrays",)

    def __init__(self, arrays):
        self.arrays = arrays

    def __eq__(self, other) -> bool:
        return len(self.arrays) == len(other.arrays) and all(
            a is b for a, b in zip(self.arrays, other.arrays, strict=True)
        )
