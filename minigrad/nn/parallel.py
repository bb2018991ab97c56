"""DistributedDataParallel: the same model on every rank, gradients averaged during backward.

Each rank runs forward and backward on its share of the batch. The average of the ranks'
gradients is the gradient of the whole batch's mean loss, so after the all-reduce every rank
takes the same optimiser step and the copies stay identical. The all-reduce hangs on autograd:

- at construction, rank 0's parameters and buffers are broadcast (and every rank's parameter
  names and shapes compared: a mismatch is an error naming the rank), and the parameters are
  grouped into buckets of about bucket_cap_mb, last layers first (their gradients are ready
  first in backward);
- a post-accumulate-grad hook on each parameter marks it ready; when a bucket's last gradient
  is in, the bucket's gradients are copied into one flat buffer and its all-reduce starts (not
  waiting: the rest of backward goes on meanwhile), in bucket order on every rank;
- when the last bucket has started, the hook waits for all of them and writes the averages
  back into each .grad.

`no_sync()` skips the all-reduce (gradients accumulate locally, for gradient accumulation);
`find_unused_parameters=True` finds, after forward, the parameters the output does not depend
on and counts them as ready with a zero gradient.
"""

from __future__ import annotations

import contextlib

from .. import backend
from .. import distributed as dist
from ..engine.function import Context
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor
from .module import Module


class DistributedDataParallel(Module):
    """module on every rank, its gradients averaged over the ranks during backward."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb=25,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: call minigrad.distributed."
                               "init_process_group first")
        self.module = module
        self.find_unused_parameters = find_unused_parameters
        self.broadcast_buffers = broadcast_buffers
        self.bucket_cap_mb = 25 if bucket_cap_mb is None else bucket_cap_mb
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        _same_on_every_rank([(n, tuple(p.shape), str(p.dtype)) for n, p in named],
                            "parameters (name, shape, dtype)")
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor if tensor.grad_fn is None else tensor.detach(), 0)
        self._params = [p for _, p in named]
        self._buckets = _buckets(self._params, self.bucket_cap_mb * 2**20)
        self._bucket_of = {id(p): b for b, bucket in enumerate(self._buckets) for p in bucket}
        self._sync, self._checked_inputs = True, False
        self._reset()
        for p in self._params:
            p.register_post_accumulate_grad_hook(self._ready)

    # ---- forward -------------------------------------------------------------------------

    def forward(self, *inputs, **kwargs):
        """module(*inputs); starts a new iteration of the gradient reduction."""
        if not self._checked_inputs:  # a mismatch across ranks, reported at the first step
            shapes = [tuple(x.shape)[1:] for x in inputs if isinstance(x, Tensor)]
            _same_on_every_rank(shapes, "input shapes (past the batch dim)")
            self._checked_inputs = True
        if self._sync and self._pending and any(self._ready_count):
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a "
                "new one. This error indicates that your module has parameters that were not "
                "used in producing loss. You can enable unused parameter detection by passing "
                "the keyword argument `find_unused_parameters=True` to "
                "`torch.nn.parallel.DistributedDataParallel`")
        self._reset()
        output = self.module(*inputs, **kwargs)
        if self._sync and self.find_unused_parameters and is_grad_enabled():
            used = _leaves_reached(output)
            for p in self._params:
                if id(p) not in used:
                    self._unused.add(id(p))
            for p in self._params:
                if id(p) in self._unused:
                    self._mark(p)
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Inside: backward accumulates gradients locally, no all-reduce (the step after the
        block's last backward, outside it, reduces the accumulated sum)."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    # ---- the reduction ---------------------------------------------------------------------

    def _reset(self) -> None:
        self._ready_count = [0] * len(self._buckets)
        self._launched, self._works, self._unused = 0, [], set()
        self._pending = self._sync

    def _ready(self, param: Tensor) -> None:
        """A parameter's gradient is complete (its post-accumulate-grad hook)."""
        if not self._sync or id(param) in self._unused:
            return
        self._mark(param)

    def _mark(self, param: Tensor) -> None:
        bucket = self._bucket_of[id(param)]
        self._ready_count[bucket] += 1
        while (self._launched < len(self._buckets)  # buckets start in order on every rank
               and self._ready_count[self._launched] == len(self._buckets[self._launched])):
            self._launch(self._launched)
            self._launched += 1
        if self._launched == len(self._buckets):
            self._finish()

    def _launch(self, number: int) -> None:
        params = self._buckets[number]
        first = params[0]
        xp = backend.module_for(first.device)
        flat = xp.empty(sum(p.numel() for p in params), dtype=first.dtype)
        start = 0
        for p in params:
            size = p.numel()
            flat[start:start + size] = 0 if p.grad is None else p.grad.array.reshape(-1)
            start += size
        buffer = Tensor._wrap_no_copy_no_checks(flat, first.device)
        self._works.append((params, buffer, dist.all_reduce(buffer, dist.ReduceOp.AVG,
                                                            async_op=True)))

    def _finish(self) -> None:
        for params, buffer, work in self._works:
            work.wait()
            start = 0
            for p in params:
                size = p.numel()
                average = buffer.array[start:start + size].reshape(p.shape)
                if p.grad is None:
                    p.grad = Tensor._wrap_no_copy_no_checks(average.copy(), p.device)
                else:
                    p.grad.array[...] = average
                    p.grad._bump_version()
                start += size
        self._works, self._pending = [], False


def _buckets(params: list, cap_bytes: float) -> list:
    """The parameters, last registered first, in groups of at most cap_bytes (one parameter
    larger than the cap is a bucket of its own)."""
    buckets, current, size = [], [], 0
    for p in reversed(params):
        nbytes = p.numel() * p.dtype.itemsize
        if current and (size + nbytes > cap_bytes or p.dtype != current[0].dtype):
            buckets.append(current)
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(current)
    return buckets


def _same_on_every_rank(value, what: str) -> None:
    """Every rank's `value` equal to rank 0's, or an error naming the first rank that differs."""
    group = dist._current()
    values = group.comm.allgather(value)
    for rank, other in enumerate(values):
        if other != values[0]:
            raise RuntimeError(
                f"DistributedDataParallel: rank {rank} has different {what} from rank 0: "
                f"{_first_difference(values[0], other)}; every rank must run the same model on "
                "batches of the same shape")


def _first_difference(a, b) -> str:
    for number, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"item {number}: {x} on rank 0, {y} there"
    return f"{len(a)} items on rank 0, {len(b)} there"


def _leaves_reached(output) -> set:
    """ids of the leaf tensors the output's graph reaches (for find_unused_parameters)."""
    tensors = output if isinstance(output, (tuple, list)) else [output]
    todo = [t.grad_fn for t in tensors if isinstance(t, Tensor) and t.grad_fn is not None]
    seen, leaves = set(), set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for target, _ in node.next_functions:
            if target is None:
                continue
            if type(target) is Context:
                todo.append(target)
            else:
                leaves.add(id(target))
    return leaves
