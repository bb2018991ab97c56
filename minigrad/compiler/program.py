"""A compiled program: slots of arrays, and a flat list of instructions that fill them.

    %0  input 0     float32 (64, 784)
    %2  fc1.weight  float32 (128, 784)   read live
    %8  = Linear(%0, %2, %3)             float32 (64, 128)
    ...
    fc1.weight.grad += %16
    call SGD.step()

A replay runs the instructions in order on an `env` list (slot number -> array). No Tensor is
made for the graph, no Context is recorded, no tape is walked and no version is checked: the
trace did all of that once. What the instructions do:

    Forward     an op's forward on the arrays of its slots (a Context is made only when a later
                Backward needs what the forward saved)
    Backward    that op's backward, on the gradients' slots, with the Context its Forward made
    Accumulate  leaf.grad += a slot, as the engine's _accumulate does
    Call        a recorded method call (an optimiser's step), made again as it was

passes.py rewrites the list (dead code, fused kernels); kernels.py holds the fused instructions.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import backend
from ..engine.function import Context
from ..grad_mode import grad_mode
from ..tensor import Tensor

_wrap = Tensor._wrap_no_copy_no_checks


@dataclass
class Slot:
    """One array of the program: where it comes from, and what the trace saw in it."""

    number: int
    kind: str  # "input", "live" (a tensor read at each replay), "const" or "value"
    label: str
    shape: tuple
    dtype: object
    value: object = None  # a constant's array

    def describe(self) -> str:
        return f"{self.dtype} {self.shape}"


@dataclass(frozen=True)
class SlotRef:
    """Inside a constant argument (an index), the array of a slot."""

    slot: int


def _fill(value, env):
    """A constant argument with its SlotRefs replaced by their slots' arrays."""
    if isinstance(value, SlotRef):
        return env[value.slot]
    if type(value) in (tuple, list):
        return type(value)(_fill(v, env) for v in value)
    return value


def _refs(value):
    """The slots a constant argument refers to."""
    if isinstance(value, SlotRef):
        yield value.slot
    elif type(value) in (tuple, list):
        for item in value:
            yield from _refs(item)


class Stale(Exception):
    """A replay found a live tensor changed (shape, dtype, device or requires_grad): retrace."""


class Forward:
    """One op's forward: out_slots = cls.forward(ctx, *(arrays of arg_slots, or constants))."""

    def __init__(self, cls, arg_slots, consts, needs, out_slots, tuple_result, ctx=None):
        self.cls, self.arg_slots, self.consts = cls, arg_slots, consts
        self.needs, self.out_slots, self.tuple_result = needs, out_slots, tuple_result
        self.ctx = ctx  # the trace's Context (read by passes), not used by a replay
        self.keeps_ctx = False  # a Backward reads this op's Context
        self.ctx_index = None  # where the replay keeps it (Program.finalize numbers them)
        self.devices = ()  # per argument, the device its Tensor is made on
        self.refs = tuple(s for c in consts for s in _refs(c))  # slots inside constant args

    def run(self, env, contexts) -> None:
        consts = [_fill(c, env) for c in self.consts] if self.refs else self.consts
        args = [const if slot is None else _wrap(env[slot], device) for slot, const, device
                in zip(self.arg_slots, consts, self.devices, strict=True)]
        ctx = Context(self.cls, self.needs)
        raw = self.cls.forward(ctx, *args)
        outputs = raw if type(raw) is tuple else (raw,)
        for slot, out in zip(self.out_slots, outputs, strict=False):
            if slot is not None:
                env[slot] = _array(out)
        if self.keeps_ctx:
            ctx._saved = tuple(_saved(value) for value in ctx._to_save)
            ctx._to_save = ()
            contexts[self.ctx_index] = ctx

    def describe(self, program) -> str:
        args = ", ".join(f"%{s}" if s is not None else _describe_const(c)
                         for s, c in zip(self.arg_slots, self.consts, strict=True))
        return f"{_results(self.out_slots)} = {self.cls.__name__}({args})"


class Backward:
    """The backward of a Forward's op: out_slots = cls.backward(ctx, *(gradient slots))."""

    def __init__(self, forward: Forward, in_slots, out_slots, tuple_result):
        self.forward, self.in_slots, self.out_slots = forward, in_slots, out_slots
        self.tuple_result = tuple_result
        self.devices = ()

    def run(self, env, contexts) -> None:
        ctx = contexts[self.forward.ctx_index]
        grads = [None if slot is None else _wrap(env[slot], device)
                 for slot, device in zip(self.in_slots, self.devices, strict=True)]
        raw = self.forward.cls.backward(ctx, *grads)
        outputs = raw if type(raw) is tuple else (raw,)
        for slot, out in zip(self.out_slots, outputs, strict=False):
            if slot is not None:
                env[slot] = out.array

    def describe(self, program) -> str:
        grads = ", ".join("None" if s is None else f"%{s}" for s in self.in_slots)
        return f"{_results(self.out_slots)} = {self.forward.cls.__name__}Backward({grads})"


class Accumulate:
    """leaf.grad += env[slot]: the first gradient becomes .grad, later ones add in place; the
    .grad's array is then out_slots[0] (for a function that reads .grad afterwards)."""

    def __init__(self, leaf, slot: int, name: str):
        self.leaf, self.slot, self.name = leaf, slot, name
        self.out_slots = ()
        self.input_position = None  # the leaf is this argument of the call
        self.fresh_leaf = False  # the leaf was made in the traced call: its .grad starts empty
        self.owned = False  # the slot's array is new on each replay and read nowhere else
        self.owned_view = False  # ... even when it is a view (a kernel's transposed result)

    def run(self, env, contexts) -> None:
        array = env[self.slot]
        leaf = self.leaf
        if leaf._grad is None:
            owned = self.owned and (array.base is None or self.owned_view)
            leaf._grad = _wrap(array if owned else array.copy(), leaf.device)
        else:
            total = leaf._grad.array
            if getattr(total.flags, "writeable", True) and total.dtype == array.dtype:
                total += array
                leaf._grad._bump_version()
            else:
                leaf._grad = _wrap(total + array, leaf.device)
        if self.out_slots:
            env[self.out_slots[0]] = leaf._grad.array

    def describe(self, program) -> str:
        return f"{self.name}.grad += %{self.slot}"


class CopyArray:
    """env[out] = a copy of env[slot] (an in-place op keeping the old values)."""

    def __init__(self, slot: int, out: int):
        self.slot, self.out_slots, self.reads = slot, (out,), (slot,)

    def run(self, env, contexts) -> None:
        env[self.out_slots[0]] = env[self.slot].copy()

    def describe(self, program) -> str:
        return f"%{self.out_slots[0]} = copy(%{self.slot})"


class Write:
    """env[target][index] = source: an in-place op writing into a tensor's memory."""

    def __init__(self, target: int, index, is_tuple: bool, source, live_tensor=None):
        self.target, self.index, self.is_tuple, self.source = target, index, is_tuple, source
        self.live_tensor = live_tensor  # a parameter written: its version moves, as in eager
        self.reads = tuple([target] + [v for k, v in (*index, source) if k == "slot"])
        self.out_slots = ()

    def run(self, env, contexts) -> None:
        parts = tuple(env[v] if k == "slot" else v for k, v in self.index)
        index = parts if self.is_tuple else parts[0]
        kind, value = self.source
        env[self.target][index] = env[value] if kind == "slot" else value
        if self.live_tensor is not None:
            self.live_tensor._bump_version()

    def describe(self, program) -> str:
        parts = ", ".join(f"%{v}" if k == "slot" else ("..." if v is Ellipsis else repr(v))
                          for k, v in self.index)
        kind, value = self.source
        return f"%{self.target}[{parts}] = " + (f"%{value}" if kind == "slot" else repr(value))


class Call:
    """A recorded method call (an optimiser's step, zero_grad), made again at each replay."""

    def __init__(self, method, obj, args, kwargs):
        self.method, self.obj, self.args, self.kwargs = method, obj, args, kwargs

    def run(self, env, contexts) -> None:
        self.method(self.obj, *self.args, **self.kwargs)

    def describe(self, program) -> str:
        args = ", ".join([repr(a) for a in self.args]
                         + [f"{k}={v!r}" for k, v in self.kwargs.items()])
        return f"call {type(self.obj).__name__}.{self.method.__name__}({args})"


class Program:
    """Slots, instructions, and where the function's result comes from."""

    def __init__(self, name: str):
        self.name = name
        self.slots: list[Slot] = []
        self.instructions: list = []
        self.inputs: list = []  # (argument position, slot)
        self.live: list = []  # (tensor, slot, its version when the trace first read it)
        self.consts: list = []  # (slot, array)
        self.copied_consts: set = set()  # constants a replay writes into: copied each call
        self.live_requires_grad: dict = {}  # slot -> requires_grad when traced
        self.live_grads: list = []  # (parameter, slot): its .grad as the call begins
        self.output = ("constant", None)
        self.n_contexts = 0
        self.devices = {}  # slot -> device
        self.passes_run: list = []  # the names of the passes that rewrote this program
        self.accumulates: list = []  # (finalize) the Accumulate instructions
        self.buffer_slots: set = set()  # kept from replay to replay: a result is copied out
        self.before_passes = ""  # the printed program as traced

    def finalize(self) -> None:
        """Number the Contexts a replay keeps, note each slot's device, mark owned gradients."""
        self.n_contexts = 0
        for instruction in self.instructions:
            if isinstance(instruction, Forward) and instruction.keeps_ctx:
                instruction.ctx_index = self.n_contexts
                self.n_contexts += 1
            if isinstance(instruction, Forward):
                instruction.devices = tuple(self.devices.get(s) for s in instruction.arg_slots)
            elif isinstance(instruction, Backward):
                instruction.devices = tuple(self.devices.get(s) for s in instruction.in_slots)
        self.buffer_slots = {s for i in self.instructions if hasattr(i, "buffers")
                             for s in i.out_slots if s is not None and s not in i.fresh}
        self.accumulates = [i for i in self.instructions if isinstance(i, Accumulate)]
        self._mark_owned()

    def _mark_owned(self) -> None:
        """An accumulated gradient may become .grad without a copy when a built-in op's forward
        or backward makes it new on every replay and nothing else reads it (the engine's rule,
        docs/architecture.md)."""
        made_by = {}
        kernel_made = set()
        readers = {}
        for index, instruction in enumerate(self.instructions):
            for slot in _reads(instruction):
                readers.setdefault(slot, []).append(index)
            if isinstance(instruction, Forward | Backward):
                reads = set(_reads(instruction))
                cls = instruction.cls if isinstance(instruction, Forward) else \
                    instruction.forward.cls
                for slot in instruction.out_slots:
                    if slot is not None and slot not in reads and cls.built_in:
                        made_by[slot] = index
            for slot in getattr(instruction, "fresh", ()):  # a kernel's new arrays
                made_by[slot] = index
                kernel_made.add(slot)
        returned = set(_output_slots(self.output))
        for instruction in self.instructions:
            if isinstance(instruction, Accumulate):
                slot = instruction.slot
                instruction.owned = (slot in made_by and slot not in returned
                                     and len(readers.get(slot, ())) == 1
                                     and self.slots[slot].kind == "value")
                instruction.owned_view = instruction.owned and slot in kernel_made

    def run(self, args):
        """Replay: fill the slots, run every instruction, return the result as Tensors."""
        env = [None] * len(self.slots)
        for position, slot in self.inputs:
            env[slot] = args[position].array
        self._read_live(env, check=True)
        for slot, value in self.consts:
            env[slot] = value.copy() if slot in self.copied_consts else value
        for instruction in self.accumulates:
            if instruction.input_position is not None:
                instruction.leaf = args[instruction.input_position]
            elif instruction.fresh_leaf:  # a leaf made in the call starts each call empty
                instruction.leaf._grad = None
        contexts = [None] * self.n_contexts
        previous = grad_mode.enabled
        grad_mode.enabled = False  # nothing a replay does is recorded
        try:
            for instruction in self.instructions:
                instruction.run(env, contexts)
                if type(instruction) is Call:  # a step may rebind a parameter's array
                    self._read_live(env, check=False)
        finally:
            grad_mode.enabled = previous
        return _build(self.output, env, args, self)

    def _read_live(self, env, check: bool) -> None:
        for leaf, slot in self.live_grads:
            if leaf._grad is None:
                if check:
                    raise RuntimeError(
                        f"mg.compile: the function read {self.slots[slot].label}, which is None "
                        "now (it was set when the function was traced)")
                continue
            env[slot] = leaf._grad.array
        for tensor, slot, _ in self.live:
            array = tensor.array
            if check:
                known = self.slots[slot]
                if array.shape != known.shape or array.dtype != known.dtype \
                        or tensor.device is not self.devices.get(slot, tensor.device) \
                        or tensor._requires_grad != self.live_requires_grad[slot]:
                    raise Stale(known.label)
            env[slot] = array

    def __str__(self) -> str:
        counts = [_count(len(self.inputs), "input"), _count(len(self.live), "live tensor"),
                  _count(len(self.consts), "constant"),
                  _count(len(self.instructions), "instruction")]
        lines = [f"program {self.name}: " + ", ".join(counts)]
        for slot in self.slots:
            if slot.kind == "input":
                lines.append(f"  %{slot.number:<3} {slot.label:<24} {slot.describe()}")
            elif slot.kind == "live":
                lines.append(f"  %{slot.number:<3} {slot.label:<24} {slot.describe()}  read live")
            elif slot.kind == "const":
                value = f" = {slot.value.tolist()}" if slot.value.size <= 4 else ""
                lines.append(f"  %{slot.number:<3} {slot.label:<24} {slot.describe()}{value}")
        for instruction in self.instructions:
            text = instruction.describe(self)
            outputs = () if isinstance(instruction, Accumulate) else \
                getattr(instruction, "out_slots", ())
            shapes = [self.slots[s].describe() for s in outputs if s is not None]
            lines.append(f"  {text:<56} {', '.join(shapes)}".rstrip())
        lines.append(f"  return {_describe_output(self.output)}")
        return "\n".join(lines)


# ---- helpers ---------------------------------------------------------------------------------


def _array(out):
    """What a forward returned, as an array (Tensors unwrapped, NumPy scalars made 0-d)."""
    if isinstance(out, Tensor):
        return out.array
    if out is None or backend.is_array(out):
        return out
    if backend.is_scalar(out):
        return backend.ensure_array(out, backend.array_module(out))
    return out


def _saved(value):
    """What a forward saved, as its backward reads it from ctx.saved_tensors."""
    if value is None or isinstance(value, Tensor) or type(value) in (int, float, bool):
        return value
    array = _array(value)
    return _wrap(array, backend.device_of(array))


def _describe_const(value) -> str:
    if isinstance(value, SlotRef):
        return f"%{value.slot}"
    if type(value) in (tuple, list):
        inner = ", ".join(_describe_const(v) for v in value)
        return f"({inner})" if type(value) is tuple else f"[{inner}]"
    if backend.is_array(value):
        return f"<{value.dtype} array {tuple(value.shape)}>"
    return repr(value)


def _reads(instruction) -> list:
    if isinstance(instruction, Forward):
        return [s for s in instruction.arg_slots if s is not None] + list(instruction.refs)
    if isinstance(instruction, Backward):
        return [s for s in instruction.in_slots if s is not None]
    if isinstance(instruction, Accumulate):
        return [instruction.slot]
    return list(getattr(instruction, "reads", ()))


def _count(number: int, what: str) -> str:
    return f"{number} {what}{'' if number == 1 else 's'}"


def _results(slots) -> str:
    return ", ".join("_" if s is None else f"%{s}" for s in slots)


def _output_slots(spec):
    kind = spec[0]
    if kind == "tensor":
        yield spec[1]
    elif kind in ("tuple", "list"):
        for item in spec[1]:
            yield from _output_slots(item)
    elif kind == "dict":
        for item in spec[1].values():
            yield from _output_slots(item)


def _build(spec, env, args, program):
    kind = spec[0]
    if kind == "tensor":
        slot, device = spec[1], spec[2]
        known = program.slots[slot]
        if known.kind == "live":  # the function returned a tensor it read: that same tensor
            for tensor, live_slot, _ in program.live:
                if live_slot == slot:
                    return tensor
            return next(leaf._grad for leaf, s in program.live_grads if s == slot)
        if known.kind == "input":
            return next(args[p] for p, s in program.inputs if s == slot)
        array = env[slot]
        # A buffer the next replay overwrites, a view (of one, perhaps), a constant the next
        # call would hand out again: the caller gets an array of its own, as eager gives.
        if slot in program.buffer_slots or array.base is not None or known.kind == "const":
            array = array.copy()
        return _wrap(array, device)
    if kind in ("tuple", "list"):
        items = [_build(item, env, args, program) for item in spec[1]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: _build(v, env, args, program) for k, v in spec[1].items()}
    return spec[1]


def _describe_output(spec) -> str:
    kind = spec[0]
    if kind == "tensor":
        return f"%{spec[1]}"
    if kind in ("tuple", "list"):
        inner = ", ".join(_describe_output(item) for item in spec[1])
        return f"({inner})" if kind == "tuple" else f"[{inner}]"
    if kind == "dict":
        return "{" + ", ".join(f"{k!r}: {_describe_output(v)}" for k, v in spec[1].items()) + "}"
    return repr(spec[1])
