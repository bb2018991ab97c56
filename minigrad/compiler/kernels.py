"""Kernels: the instructions the `lower` pass puts where a training step spends its time.

Each does on NumPy arrays what an op's forward or backward does, with the same formula, into
arrays the program keeps from one replay to the next (no Tensor, no Context, no new array), and
in place where the pass found the input dead:

    LinearKernel          y = x @ W.T + b
    ReLUKernel            z = max(y, 0)                       (in place on y when y is dead)
    CrossEntropyKernel    loss = mean(-log softmax(x)[t]), p = softmax(x)
    CrossEntropyGrad      dL/dx = (p - onehot(t)) * g * s     (in place on p)
    ReLUGrad              g' = g where z > 0, else 0          (in place on g)
    LinearGrad            dX = G @ W, dW = G^T @ X, db = sum of G over the batch

A gradient that goes into a leaf's .grad is a new array each replay (it becomes .grad, as in
eager); every other output lives in a buffer that the next replay overwrites.
"""

from __future__ import annotations

from .. import backend
from ..ops.loss import check_targets, labels_in_range
from ..optim.sgd import _numbers as sgd_numbers
from ..optim.sgd import _update as sgd_update

numpy = backend.numpy  # these kernels run on the CPU (the lower pass picks NumPy arrays only)


class Kernel:
    """An instruction: reads some slots, writes out_slots (see Program.run)."""

    name = "kernel"
    reads: tuple = ()
    out_slots: tuple = ()
    fresh: tuple = ()  # outputs made new on every replay (they may become a leaf's .grad)
    in_place: dict = {}  # output slot -> the input slot whose array it overwrites

    def buffer(self, slot, program_slots, like=None, dtype=None):
        """The array kept for an output slot (or a scratch array shaped like `like`), made on
        first use."""
        array = self.buffers.get(slot)
        if array is None:
            shape, kind = (like.shape, dtype) if like is not None else \
                (program_slots[slot].shape, program_slots[slot].dtype)
            array = self.buffers[slot] = numpy.empty(shape, kind)
        return array

    def describe(self, program) -> str:
        outs = ", ".join("_" if s is None else f"%{s}" for s in self.out_slots)
        args = ", ".join(f"%{s}" for s in self.reads)
        note = "  (in place)" if self.in_place else ""
        return f"{outs} = {self.name}({args}){note}"


class LinearKernel(Kernel):
    name = "linear"

    def __init__(self, x, weight, bias, out, slots):
        self.x, self.weight, self.bias, self.out = x, weight, bias, out
        self.reads = tuple(s for s in (x, weight, bias) if s is not None)
        self.out_slots, self.slots, self.buffers = (out,), slots, {}

    def run(self, env, contexts) -> None:
        y = self.buffer(self.out, self.slots)
        numpy.matmul(env[self.x], env[self.weight].T, out=y)
        if self.bias is not None:
            y += env[self.bias]
        env[self.out] = y


class ReLUKernel(Kernel):
    name = "relu"

    def __init__(self, x, out, slots, in_place: bool):
        self.x, self.out, self.reads, self.out_slots = x, out, (x,), (out,)
        self.slots, self.buffers = slots, {}
        self.in_place = {out: x} if in_place else {}

    def run(self, env, contexts) -> None:
        x = env[self.x]
        z = x if self.in_place else self.buffer(self.out, self.slots)
        numpy.maximum(x, 0, out=z)
        env[self.out] = z


class CrossEntropyKernel(Kernel):
    name = "cross_entropy"

    def __init__(self, logits, target, scale, loss, probs, slots):
        self.logits, self.target, self.scale = logits, target, scale
        self.loss, self.probs = loss, probs
        self.reads, self.out_slots = (logits, target), (loss, probs)
        self.slots, self.buffers, self.rows = slots, {}, None

    def run(self, env, contexts) -> None:
        x, t = env[self.logits], env[self.target]
        if not labels_in_range(t, x.shape[1]):  # (the shapes and dtypes are the trace's)
            check_targets(x, t)  # raises, naming the bad label
        p = self.buffer(self.probs, self.slots)
        if self.rows is None or self.rows.shape[0] != x.shape[0]:
            self.rows = numpy.arange(x.shape[0])
        numpy.subtract(x, x.max(axis=1, keepdims=True), out=p)  # shifted
        picked = p[self.rows, t].sum()
        numpy.exp(p, out=p)
        total = p.sum(axis=1, keepdims=True)
        # the sum of -log softmax(x)[t] = log(sum(exp(shifted))) - shifted[t], no one-hot built
        losses = numpy.log(total).sum() - picked
        p /= total  # now the softmax
        loss = self.buffer(self.loss, self.slots)
        loss[...] = losses * x.dtype.type(self.scale)
        env[self.loss], env[self.probs] = loss, p


class CrossEntropyGrad(Kernel):
    name = "cross_entropy_grad"

    def __init__(self, grad, probs, target, scale, out, in_place: bool, slots):
        self.grad, self.probs, self.target, self.scale, self.out = grad, probs, target, scale, out
        self.reads, self.out_slots = (grad, probs, target), (out,)
        self.in_place = {out: probs} if in_place else {}
        self.slots, self.buffers = slots, {}

    def run(self, env, contexts) -> None:
        p, t = env[self.probs], env[self.target]
        out = p if self.in_place else self.buffer(self.out, self.slots)
        if out is not p:
            numpy.copyto(out, p)
        out[numpy.arange(t.shape[0]), t] -= 1
        out *= env[self.grad] * self.scale
        env[self.out] = out


class ReLUGrad(Kernel):
    name = "relu_grad"

    def __init__(self, grad, z, out, in_place: bool, slots):
        self.grad, self.z, self.out = grad, z, out
        self.reads, self.out_slots = (grad, z), (out,)
        self.in_place = {out: grad} if in_place else {}
        self.slots, self.buffers = slots, {}

    def run(self, env, contexts) -> None:
        g, z = env[self.grad], env[self.z]
        out = g if self.in_place else self.buffer(self.out, self.slots)
        kept = self.buffer(("kept", self.out), self.slots, like=z, dtype=bool)
        numpy.less_equal(z, 0, out=kept)  # PyTorch's threshold rule: 0 where z <= 0, the
        numpy.logical_not(kept, out=kept)  # gradient elsewhere (a NaN z passes it)
        if numpy.isfinite(g).all():
            numpy.multiply(g, kept, out=out)
        else:  # inf or NaN where ReLU is flat must give 0, not inf * 0
            numpy.copyto(out, numpy.where(kept, g, g.dtype.type(0)))
        env[self.out] = out


class LinearGrad(Kernel):
    name = "linear_grad"

    def __init__(self, grad, x, weight, outs, fresh, slots, weight_layout=None):
        self.grad, self.x, self.weight = grad, x, weight
        self.flat_outputs = {}  # slot -> (FlatGrads, offset): written into one array (FlatSGD)
        self.weight_layout = weight if weight_layout is None else weight_layout
        self.out_x, self.out_w, self.out_b = outs
        self.reads = tuple(s for s in (grad, x, weight) if s is not None)
        self.out_slots, self.fresh = outs, tuple(fresh)
        self.slots, self.buffers = slots, {}

    def run(self, env, contexts) -> None:
        g = env[self.grad]
        if self.out_x is not None:
            env[self.out_x] = self._into(self.out_x, numpy.matmul, g, env[self.weight])
        if self.out_w is not None:
            weight = env[self.weight_layout]
            if weight.flags.f_contiguous and not weight.flags.c_contiguous:
                # W kept as (in, out) memory (the relayout in passes.py): dW in the same layout
                env[self.out_w] = self._into(self.out_w, numpy.matmul, env[self.x].T, g,
                                             transposed=True)
            else:
                env[self.out_w] = self._into(self.out_w, numpy.matmul, g.T, env[self.x])
        if self.out_b is not None:
            env[self.out_b] = self._into(self.out_b, numpy.sum, g, axis=0)

    def _into(self, slot, function, *args, transposed=False, **kwargs):
        if slot in self.flat_outputs:  # a view of this replay's one array of gradients
            flat, offset = self.flat_outputs[slot]
            view = flat.view(offset, self.slots[slot].shape, transposed)
            function(*args, out=view.T if transposed else view, **kwargs)
            return view
        if slot in self.fresh:  # it becomes a leaf's .grad: a new array, as eager makes
            result = function(*args, **kwargs)
            return result.T if transposed else result
        out = self.buffer(slot, self.slots)
        function(*args, out=out.T if transposed else out, **kwargs)
        return out


class FlatGrads:
    """One array that holds every parameter's gradient of a step, made anew each replay: the
    gradients are views of it (they become the parameters' .grad), and FlatSGD updates all the
    parameters in a few NumPy calls over it."""

    def __init__(self, size: int, dtype):
        self.size, self.dtype, self.array = size, dtype, None

    def view(self, offset: int, shape: tuple, transposed: bool):
        """The gradient of the parameter stored at `offset`, in that parameter's layout."""
        count = 1
        for n in shape:
            count *= n
        block = self.array[offset:offset + count]
        return block.reshape(shape[::-1]).T if transposed else block.reshape(shape)


class NewFlatGrads:
    """A new FlatGrads array for this replay (placed before the first gradient is made)."""

    name = "new_flat_grads"
    reads, out_slots = (), ()

    def __init__(self, flat: FlatGrads):
        self.flat = flat

    def run(self, env, contexts) -> None:
        self.flat.array = numpy.empty(self.flat.size, self.flat.dtype)

    def describe(self, program) -> str:
        return f"new_flat_grads({self.flat.size} {self.flat.dtype} numbers)"


class FlatSGD:
    """The optimiser's step (torch.optim.SGD's update, optim/sgd.py's _update) over every
    parameter at once: the parameters are views of one array, their gradients of another
    (FlatGrads), their momentum buffers of a third. Where that does not hold at a replay (a
    .grad set by hand, a loaded state, a changed group), the optimiser's own step runs."""

    name = "sgd_flat"
    reads, out_slots = (), ()

    def __init__(self, call, params, flat_params, offsets, flat_grads: FlatGrads):
        self.call, self.optimizer, self.params = call, call.obj, list(params)
        self.flat_params, self.offsets, self.flat_grads = flat_params, offsets, flat_grads
        self.buffers, self.buffer_views = None, None  # the momentum buffers, one array
        xp = numpy
        self.scratch = (xp.empty_like(flat_params), xp.empty_like(flat_params))

    def run(self, env, contexts) -> None:
        group = self.optimizer.param_groups[0] if len(self.optimizer.param_groups) == 1 else None
        grads = self.flat_grads.array
        if group is None or group["params"] != self.params or any(
                p._grad is None or p._grad.array.base is not grads for p in self.params):
            self.call.run(env, contexts)  # the step as the optimiser takes it
            return
        settings = (group["lr"], group["momentum"], group["dampening"], group["weight_decay"],
                    group["nesterov"], group["maximize"])
        buffer = self._momentum_buffers() if settings[1] else None
        if buffer is False:
            self.call.run(env, contexts)
            return
        numbers = sgd_numbers(settings, self.flat_params)
        made = sgd_update(self.flat_params, grads, buffer, self.scratch, settings, numbers)
        if settings[1] and buffer is None:  # the first step: b = d, kept as one array
            self._keep_buffers(made)
        for param in self.params:
            param._bump_version()

    def _momentum_buffers(self):
        """The one array of momentum buffers; None before the first step; False when the
        optimiser's state does not fit (then its own step runs)."""
        state = self.optimizer.state
        found = [state.get(p, {}).get("momentum_buffer") for p in self.params]
        if all(b is None for b in found):
            return None
        if self.buffer_views is not None and all(
                b is v for b, v in zip(found, self.buffer_views, strict=True)):
            return self.buffers
        if any(b is None or b.shape != p.shape for b, p in zip(found, self.params, strict=True)):
            return False
        merged = numpy.empty_like(self.flat_params)  # (a loaded state: copied in once)
        for b, p, offset in zip(found, self.params, self.offsets, strict=True):
            merged[offset:offset + p.array.size] = backend.to_host(b).reshape(-1) if \
                p.array.flags.c_contiguous else backend.to_host(b).T.reshape(-1)
        self._keep_buffers(merged)
        return self.buffers

    def _keep_buffers(self, flat) -> None:
        self.buffers = flat
        views = []
        for p, offset in zip(self.params, self.offsets, strict=True):
            block = flat[offset:offset + p.array.size]
            transposed = not p.array.flags.c_contiguous
            views.append(block.reshape(p.shape[::-1]).T if transposed else block.reshape(p.shape))
        self.buffer_views = views
        for p, view in zip(self.params, views, strict=True):
            self.optimizer.state.setdefault(p, {})["momentum_buffer"] = view

    def describe(self, program) -> str:
        return (f"{self.call.describe(program)}, as one update over "
                f"{self.flat_params.size} numbers")

