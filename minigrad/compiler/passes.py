"""Passes: small functions that rewrite a traced program, each printed in its name.

    dead_code   drop instructions whose results nothing reads
    lower       put NumPy kernels (kernels.py) in place of the ops a training step is made of:
                Linear, ReLU and cross-entropy, forward and backward, in place where an
                input is dead
    relayout_weights  with mode="max-autotune": keep each Linear weight as (in, out) memory,
                the layout x @ W.T reads fastest; the weight's shape stays (out, in)
    capture     on a GPU, a whole MLP training step (Linear and ReLU layers, mean
                cross-entropy, SGD) becomes one CUDA graph, replayed with one launch

run_all runs them in order and notes their names in program.passes_run; `print(step.program)`
shows the result, and `step.program.before_passes` the program as traced.
"""

from __future__ import annotations

from .. import backend
from ..cuda.graphed import CapturedMLP
from ..fused import kernels as cuda_kernels
from ..ops.activation import ReLU
from ..ops.loss import CrossEntropy
from ..ops.matmul import Linear, LinearReLU
from ..optim import SGD
from ..tensor import Tensor
from . import kernels
from .program import Accumulate, Backward, Call, Forward, _output_slots, _reads


def run_all(program, relayout: bool = False) -> None:
    """The passes in order; relayout only when asked (mg.compile(mode="max-autotune"))."""
    rewrites = (dead_code, capture, lower, relayout_weights) if relayout else \
        (dead_code, capture, lower)
    for rewrite in rewrites:
        rewrite(program)
        program.passes_run.append(rewrite.__name__)
    program.finalize()


def dead_code(program) -> None:
    """Drop a built-in op's Forward or Backward whose outputs no later instruction reads, nor
    the result (a loss computed and never used; a gradient no leaf receives). A Forward whose
    Context a Backward still needs stays; so does anything that writes in place."""
    needed = set(_output_slots(program.output))
    kept = []
    for instruction in reversed(program.instructions):
        if isinstance(instruction, (Forward, Backward)) and _removable(instruction, needed):
            continue
        kept.append(instruction)
        needed.update(_reads(instruction))
        if isinstance(instruction, Backward):
            instruction.forward.keeps_ctx = True  # (its Forward must stay: it is needed)
            needed.add(("ctx", id(instruction.forward)))
    kept.reverse()
    program.instructions[:] = kept


def _removable(instruction, needed: set) -> bool:
    cls = instruction.cls if isinstance(instruction, Forward) else instruction.forward.cls
    if not cls.built_in:
        return False  # a user's Function may do anything
    if isinstance(instruction, Forward):
        if ("ctx", id(instruction)) in needed:
            return False
        if set(instruction.out_slots) & {s for s in instruction.arg_slots if s is not None}:
            return False  # in place
        if instruction.ctx is not None and instruction.ctx._dirty:
            return False
    return not any(s in needed for s in instruction.out_slots if s is not None)


def lower(program) -> None:
    """Replace each Linear, ReLU and CrossEntropy (with its Backward) by kernels, where the
    arrays are NumPy's and the shapes the common ones; anything else stays as traced."""
    backwards = {}  # Forward -> its Backward instructions
    for instruction in program.instructions:
        if isinstance(instruction, Backward):
            backwards.setdefault(id(instruction.forward), []).append(instruction)
    replaced = {}  # id(instruction) -> its kernel
    for instruction in program.instructions:
        if isinstance(instruction, Forward) and instruction.cls in _LOWERINGS:
            pair = _LOWERINGS[instruction.cls](instruction, backwards.get(id(instruction), []),
                                               program)
            if pair is not None:
                forward_kernel, backward_kernels = pair
                replaced[id(instruction)] = forward_kernel
                for backward, kernel in zip(backwards.get(id(instruction), []),
                                            backward_kernels, strict=True):
                    replaced[id(backward)] = kernel
    program.instructions[:] = [replaced.get(id(i), i) for i in program.instructions]
    _choose_in_place(program)


def _on_cpu(program, *slots) -> bool:
    return all(s is None or (program.devices.get(s) is backend.CPU
                             and program.slots[s].dtype.kind in "fiub") for s in slots)


def _lower_linear(forward, backwards, program):
    x, weight, bias = forward.arg_slots
    if not _on_cpu(program, x, weight, bias) or len(program.slots[x].shape) != 2 \
            or program.slots[x].dtype.kind != "f" or len(backwards) > 1:
        return None
    (out,) = forward.out_slots
    kernel = kernels.LinearKernel(x, weight, bias, out, program.slots)
    grads = []
    for backward in backwards:
        (g,) = backward.in_slots
        outs = tuple(backward.out_slots) + (None,) * (3 - len(backward.out_slots))
        fresh = [s for s in outs if s is not None and _escapes(program, s)]
        grads.append(kernels.LinearGrad(g, x if outs[1] is not None else None,
                                        weight if outs[0] is not None else None, outs, fresh,
                                        program.slots, weight_layout=weight))
    return kernel, grads


def _lower_relu(forward, backwards, program):
    (x,) = forward.arg_slots
    (z,) = forward.out_slots
    if not _on_cpu(program, x) or program.slots[x].dtype.kind != "f" or len(backwards) > 1:
        return None
    grads = [kernels.ReLUGrad(b.in_slots[0], z, b.out_slots[0], False, program.slots)
             for b in backwards]
    return kernels.ReLUKernel(x, z, program.slots, False), grads


def _lower_cross_entropy(forward, backwards, program):
    logits, target = forward.arg_slots[:2]
    reduction = forward.consts[2] if len(forward.consts) > 2 else "mean"
    if not _on_cpu(program, logits, target) or reduction not in ("mean", "sum") \
            or len(program.slots[logits].shape) != 2 or len(backwards) > 1 \
            or any(b.in_slots[1] is not None for b in backwards):
        return None
    batch = program.slots[logits].shape[0]
    scale = (1.0 / batch if batch else float("nan")) if reduction == "mean" else 1.0
    loss, probs = forward.out_slots
    grads = [kernels.CrossEntropyGrad(b.in_slots[0], probs, target, scale, b.out_slots[0], False,
                                      program.slots) for b in backwards]
    return kernels.CrossEntropyKernel(logits, target, scale, loss, probs, program.slots), grads


_LOWERINGS = {Linear: _lower_linear, ReLU: _lower_relu, CrossEntropy: _lower_cross_entropy}


def _escapes(program, slot) -> bool:
    """Whether a slot's array outlives the replay: it becomes a .grad or is returned."""
    if slot in set(_output_slots(program.output)):
        return True
    return any(isinstance(i, Accumulate) and i.slot == slot for i in program.instructions)


def _choose_in_place(program) -> None:
    """A kernel may write over an input that a kernel of this program made (a buffer, not an
    input or a view) and that nothing else reads, now or later."""
    readers = {}
    for instruction in program.instructions:
        for slot in _reads(instruction):
            readers[slot] = readers.get(slot, 0) + 1
    returned = set(_output_slots(program.output))
    buffers = {s for i in program.instructions if isinstance(i, kernels.Kernel)
               for s in i.out_slots if s is not None and s not in i.fresh}
    for instruction in program.instructions:
        candidate = None
        if isinstance(instruction, kernels.ReLUKernel):
            candidate = instruction.x
        elif isinstance(instruction, kernels.CrossEntropyGrad):
            candidate = instruction.probs
        elif isinstance(instruction, kernels.ReLUGrad):
            candidate = instruction.grad
        if candidate is not None and candidate in buffers and readers.get(candidate) == 1 \
                and candidate not in returned:
            (out,) = instruction.out_slots
            instruction.in_place = {out: candidate}


def relayout_weights(program) -> None:
    """Store each Linear weight that the program reads live as (in, out) memory: its array
    becomes the transpose of a C-ordered (in, out) array, so `x @ W.T` reads contiguous rows
    (measured about 1.4x faster at batch 64 on AVX-512 OpenBLAS) and dW is made in the same
    layout. Shapes, values and state_dict() do not change; the optimiser's state for that
    weight (a momentum buffer) follows the new layout."""
    live = {slot: tensor for tensor, slot, _ in program.live}
    owners = [i.obj for i in program.instructions if hasattr(getattr(i, "obj", None), "state")]
    for instruction in program.instructions:
        if not isinstance(instruction, kernels.LinearKernel):
            continue
        weight = live.get(instruction.weight)
        if weight is None or weight.grad_fn is not None or weight.device is not backend.CPU:
            continue
        array = weight.array
        if array.ndim != 2 or not array.flags.c_contiguous or array.flags.f_contiguous:
            continue  # already done, or a layout someone chose
        weight.array = _transposed_layout(array)
        for owner in owners:
            for key, value in owner.state.get(weight, {}).items():
                if backend.is_array(value) and value.shape == array.shape:
                    owner.state[weight][key] = _transposed_layout(value)


def _transposed_layout(array):
    """The same values and shape, stored as the C-ordered transpose."""
    return backend.numpy.ascontiguousarray(array.T).T


def capture(program) -> None:
    """On a GPU, replace a whole MLP training step by one CapturedStep: Linear layers with ReLU
    between them, mean cross-entropy on the logits, backward, each gradient into .grad, and one
    SGD group's step, with zero_grad before the backward. Anything else stays as traced."""
    step = _mlp_step(program)
    if step is None:
        return
    program.finalize()  # (numbers the Contexts the traced instructions use when they run)
    program.instructions[:] = [CapturedStep(step, list(program.instructions),
                                            program.n_contexts)]


def _mlp_step(program):
    """The pieces of an MLP training step, when the program is exactly one (else None)."""
    forwards = [i for i in program.instructions if isinstance(i, Forward)]
    backwards = [i for i in program.instructions if isinstance(i, Backward)]
    accumulates = [i for i in program.instructions if isinstance(i, Accumulate)]
    calls = [i for i in program.instructions if isinstance(i, Call)]
    if len(forwards) < 2 or not cuda_kernels.enabled:
        return None
    if len(forwards) + len(backwards) + len(accumulates) + len(calls) != \
            len(program.instructions):
        return None
    *layers, loss = forwards
    if loss.cls is not CrossEntropy or loss.consts[2:3] not in (("mean",), ()):
        return None
    linears = _mlp_layers(layers)  # the Linear (or LinearReLU) forwards, when it is an MLP
    if linears is None or loss.arg_slots[0] != linears[-1].out_slots[0]:
        return None
    x = linears[0].arg_slots[0]
    if program.devices.get(x) is backend.CPU or \
            any(a is None for f in linears for a in f.arg_slots):
        return None
    live = {slot: tensor for tensor, slot, _ in program.live}
    weights = [live.get(f.arg_slots[1]) for f in linears]
    biases = [live.get(f.arg_slots[2]) for f in linears]
    params = weights + biases
    if any(p is None or p.grad_fn is not None or not p.requires_grad for p in params):
        return None
    steps = [c for c in calls if c.method.__name__ == "step"]
    zeroes = [c for c in calls if c.method.__name__ == "zero_grad"]
    if len(steps) != 1 or len(zeroes) != 1 or len(calls) != 2:
        return None
    optimizer = steps[0].obj
    if type(optimizer) is not SGD or len(optimizer.param_groups) != 1 \
            or {id(p) for p in optimizer.param_groups[0]["params"]} != {id(p) for p in params}:
        return None
    order = program.instructions
    if not (order.index(zeroes[0]) < order.index(backwards[0]) and order[-1] is steps[0]):
        return None
    if {id(a.leaf) for a in accumulates} != {id(p) for p in params} \
            or len(accumulates) != len(params):
        return None
    returned = set(_output_slots(program.output))
    if not returned <= {loss.out_slots[0], linears[-1].out_slots[0]}:
        return None
    batch = program.slots[x].shape[0]
    target = loss.arg_slots[1]
    return dict(weights=weights, biases=biases, optimizer=optimizer, batch=batch, x=x,
                y=target, loss=loss.out_slots[0], logits=linears[-1].out_slots[0])


def _mlp_layers(forwards):
    """The forwards of Linear layers with ReLU between them, each fed by the one before (a
    Linear then a ReLU, or one LinearReLU, per hidden layer), or None."""
    linears, index, previous = [], 0, None
    while index < len(forwards):
        node = forwards[index]
        if previous is not None and node.arg_slots[0] != previous:
            return None
        last = index == len(forwards) - 1
        if node.cls is LinearReLU and not last:
            linears.append(node)
            previous, index = node.out_slots[0], index + 1
        elif node.cls is Linear and last:
            linears.append(node)
            index += 1
        elif node.cls is Linear and index + 1 < len(forwards) and forwards[index + 1].cls is ReLU \
                and forwards[index + 1].arg_slots[0] == node.out_slots[0]:
            linears.append(node)
            previous, index = forwards[index + 1].out_slots[0], index + 2
        else:
            return None
    return linears


class CapturedStep:
    """A whole MLP training step as one CUDA graph (cuda/graphed.py's CapturedMLP).

    Its first replay (and any after the arrays or settings the graph baked in changed) runs the
    traced instructions, which make the optimizer's momentum buffers, then captures the graph;
    later replays copy the batch in and launch it. Each parameter's .grad is then a copy of the
    graph's gradient, as the eager step leaves it (all made by one copy: views of one array)."""

    name = "captured_mlp_step"

    def __init__(self, step: dict, traced: list, n_contexts: int):
        self.step, self.traced, self.n_contexts = step, traced, n_contexts
        self.mlp = None
        self.buffers = {}  # (the loss and the logits are the graph's buffers: copied out)
        self.out_slots, self.fresh = (step["loss"], step["logits"]), ()
        self.reads = (step["x"], step["y"])
        self.launches = 0

    def run(self, env, contexts) -> None:
        step = self.step
        if self.mlp is None:
            self.mlp = CapturedMLP(step["weights"], step["biases"], step["optimizer"],
                                   step["batch"])
        mlp = self.mlp
        if not mlp.captured():
            own = [None] * self.n_contexts
            for instruction in self.traced:  # the step as traced, once
                instruction.run(env, own)
            mlp.set_batch(env[step["x"]], env[step["y"]])
            mlp.set_lr()
            mlp.capture()  # for the next replay (the momentum buffers exist now)
            return
        mlp.set_batch(env[step["x"]], env[step["y"]])
        mlp.set_lr()
        mlp.launch()
        self.launches += 1
        env[step["loss"]], env[step["logits"]] = mlp.loss, mlp.outputs[-1]
        for param, grad in zip(mlp.params, mlp.fresh_grads(), strict=True):
            param._grad = Tensor._wrap_no_copy_no_checks(grad, param.device)

    def describe(self, program) -> str:
        layers = len(self.step["weights"])
        return (f"%{self.step['loss']}, %{self.step['logits']} = captured_mlp_step("
                f"%{self.step['x']}, %{self.step['y']}): {layers} Linear layers, cross-entropy, "
                "SGD, as one CUDA graph")
