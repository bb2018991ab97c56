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
        if slot in self.fresh:  # it becomes a leaf's .grad: a new array, as eager makes
            result = function(*args, **kwargs)
            return result.T if transposed else result
        out = self.buffer(slot, self.slots)
        function(*args, out=out.T if transposed else out, **kwargs)
        return out
