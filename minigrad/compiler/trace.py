"""Tracing: run a function once, eagerly, and write down what it did as a flat program.

While a Tracer is active (`grad_mode.tracer`), four places report to it instead of only doing
their work:

    Function.apply                  a top-level op call          -> Forward instruction
    the engine, before a backward   one node's backward          -> Backward instruction
    the engine, into a leaf's .grad one accumulation             -> Accumulate instruction
    @recorded_as_one_call methods   an optimiser's step, zero_grad -> Call instruction

Each reports from the outside: the Tracer switches itself off while the call runs, so the ops a
forward or a backward performs inside are part of its one instruction, not instructions of their
own. Every array the call reads is given a *slot*: an input of the function, a tensor read live
at each replay (a parameter), a constant copied now, or the output of an earlier instruction.
Arrays are known by identity, so the Tracer keeps each one alive until the trace ends (a freed
array's id could be reused by a new one).

What a trace cannot see it refuses, with a message saying why: backward with create_graph,
tensor hooks (Python that a replay would skip), an optimiser step with a closure, a graph built
before the call. Python control flow is frozen at trace time, as in jax.jit and CUDA graphs.
"""

from __future__ import annotations

import copy

from .. import backend
from ..engine.function import Context
from ..grad_mode import grad_mode
from ..tensor import Tensor, post_accumulate_hooks
from .program import (
    Accumulate,
    Backward,
    Call,
    CopyArray,
    Forward,
    Program,
    Slot,
    SlotRef,
    Write,
)


class TraceError(RuntimeError):
    """What mg.compile cannot record, and why."""


class Tracer:
    """Records one eager run of a function as a Program (see the module docstring)."""

    def __init__(self, name: str, names: dict | None = None):
        self.program = Program(name)
        self.made_here = {}  # id -> tensor made during the call (a factory, the engine)
        self.grad_owners = {}  # id(.grad tensor) -> the tensor whose .grad it is
        self.inputs = {}  # id(argument tensor) -> its position
        self.snapshot = Snapshot()  # the state before the trace changed it (see Snapshot)
        self.live_arrays = {}  # slot -> the array a live tensor held when first read
        self.slot_of = {}  # id(array) -> slot number
        self.keep = []  # every array seen, alive until the trace ends (ids stay unique)
        self.live = {}  # id(tensor) -> slot of a tensor read at each replay
        self.forward_of = {}  # Context -> the Forward instruction that made it
        self.names = names or {}  # id(tensor) -> a name to print (parameters)

    # ---- slots ---------------------------------------------------------------------------

    def input_slot(self, tensor: Tensor, position: int) -> int:
        """The slot of the function's argument `position`."""
        self.inputs.setdefault(id(tensor), position)
        slot = self._new_slot(tensor.array, "input", f"input {position}")
        self.program.inputs.append((position, slot))
        return slot

    def slot_for(self, value) -> int | None:
        """The slot of a Tensor or array an instruction reads (made on first sight)."""
        array = value.array if isinstance(value, Tensor) else value
        slot = self.slot_of.get(id(array))
        if slot is not None:
            return slot
        if isinstance(value, Tensor):  # a tensor from outside: read it live at each replay
            owner = self._grad_owner(value)
            if owner is not None:  # a parameter's .grad, as it was when the call began
                return self._live_grad_slot(owner)
            if value.grad_fn is not None:
                raise TraceError(
                    f"mg.compile: the function used a tensor made by {value.grad_fn.name()} "
                    "outside it (a graph built before the call, or a result of a write the "
                    "trace cannot see). Compute it inside the compiled function"
                )
            if id(value) in self.made_here:  # made in the call: a constant of the program
                slot = self._new_slot(array.copy(), "const", "made in the call")
                self.slot_of[id(array)] = slot
                self.keep.append(array)
                self.program.consts.append((slot, self.program.slots[slot].value))
                return slot
            if id(value) in self.live:
                raise TraceError(
                    f"mg.compile: the array of a tensor of shape {tuple(value.shape)} was replaced "
                    "during the call (`.data = ...`?), which a replay cannot repeat. Write into "
                    "it instead (`.copy_()` under mg.no_grad())"
                )
            self.snapshot.add_tensor(value)
            name = self.names.get(id(value), "tensor")
            slot = self._new_slot(array, "live", name)
            self.live[id(value)] = slot
            self.program.live.append((value, slot, value._version_counter[0]))
            self.live_arrays[slot] = array
            self.program.live_requires_grad[slot] = value.requires_grad
            return slot
        # an array made outside any op (the engine's starting ones, zeros): a constant
        slot = self._new_slot(array.copy(), "const", "constant")
        self.program.consts.append((slot, self.program.slots[slot].value))
        self.slot_of[id(array)] = slot
        self.keep.append(array)
        return slot

    def _new_slot(self, array, kind: str, label: str) -> int:
        number = len(self.program.slots)
        self.program.slots.append(Slot(number, kind, label, tuple(array.shape), array.dtype,
                                       array if kind == "const" else None))
        self.program.devices[number] = backend.device_of(array)
        self.slot_of[id(array)] = number
        self.keep.append(array)
        return number

    def output_slots(self, outputs, inputs_slots=()) -> tuple:
        """Slots for what an instruction returned: a new one per new array; an input returned
        as it is (an in-place op, a backward that passes its gradient on) keeps its slot."""
        slots = []
        for out in outputs:
            if out is None or not (isinstance(out, Tensor) or hasattr(out, "shape")):
                slots.append(None)
                continue
            array = out.array if isinstance(out, Tensor) else out
            slot = self.slot_of.get(id(array))
            if slot is None:
                slot = self._new_slot(array, "value", "")
            slots.append(slot)
        return tuple(slots)

    # ---- what the engine and the optimisers report ---------------------------------------

    def record_apply(self, cls, args):
        """A top-level Function.apply: run it with the tracer off, then write it down."""
        if grad_mode.saved_hooks is not None:
            raise TraceError("mg.compile: saved_tensors_hooks run Python at every op, which a "
                             "replay would skip; trace without them")
        arg_slots = tuple(self.slot_for(a) if isinstance(a, Tensor) else None for a in args)
        consts = tuple(None if isinstance(a, Tensor) else self._template(a) for a in args)
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        grad_mode.tracer = None
        try:
            result = cls.apply(*args)
        finally:
            grad_mode.tracer = self
        outputs = result if type(result) is tuple else (result,)
        ctx = None
        for out in outputs:
            if isinstance(out, Tensor) and isinstance(out.grad_fn, Context) \
                    and out.grad_fn.function is cls:
                ctx = out.grad_fn
                break
        instruction = Forward(cls, arg_slots, consts, needs, self.output_slots(outputs),
                              tuple_result=type(result) is tuple, ctx=ctx)
        self.program.instructions.append(instruction)
        if ctx is not None:
            self.forward_of[ctx] = instruction
        return result

    def record_backward(self, node, sums):
        """One node's backward, as the engine runs it: with the tracer off, then written down."""
        if grad_mode.enabled:
            raise TraceError(
                "mg.compile does not trace backward(create_graph=True): the gradients' own "
                "graph is not part of a compiled program. Compile the first-order step, or run "
                "this function eagerly"
            )
        forward = self.forward_of.get(node)
        if forward is None:
            raise TraceError(
                f"mg.compile: backward reached {node.name()}, a node made outside the compiled "
                "function (its graph was built before the call). Build the graph inside the "
                "function you compile"
            )
        if node.hooks:
            raise TraceError(
                f"mg.compile: {node.name()}'s output has a hook (register_hook): a hook is Python "
                "that a replay would skip. Remove the hook, or run this function eagerly"
            )
        in_slots = tuple(None if g is None else self.slot_for(g) for g in sums)
        grad_mode.tracer = None
        try:
            grads = node.function.backward(node, *sums)
        finally:
            grad_mode.tracer = self
        outputs = grads if type(grads) is tuple else (grads,)
        forward.keeps_ctx = True
        self.program.instructions.append(Backward(forward, in_slots, self.output_slots(outputs),
                                                  tuple_result=type(grads) is tuple))
        return grads

    def record_start(self, grads) -> None:
        """backward's starting gradients: made by the engine (ones) they are constants; given
        by the function (an input, a computed tensor) they keep the slot they have."""
        for grad in grads:
            if id(grad.array) not in self.slot_of and grad.grad_fn is None \
                    and not grad.requires_grad:
                slot = self._new_slot(grad.array.copy(), "const", "start gradient")
                self.slot_of[id(grad.array)] = slot
                self.keep.append(grad.array)
                self.program.consts.append((slot, self.program.slots[slot].value))

    def _template(self, value):
        """A non-Tensor argument, with every array an earlier instruction made replaced by a
        reference to its slot (an index computed from a tensor, such as x[x < 0] = 0's mask)."""
        if backend.is_array(value) and id(value) in self.slot_of:
            return SlotRef(self.slot_of[id(value)])
        if type(value) in (tuple, list):
            items = [self._template(v) for v in value]
            if any(isinstance(i, (SlotRef, tuple, list)) for i in items):
                return type(value)(items)
        return value

    def made(self, tensor) -> None:
        """A Tensor was made outside any op during the call (Tensor.__init__ and _wrap...)."""
        self.made_here[id(tensor)] = tensor

    def grad_read(self, tensor) -> None:
        """The function read tensor.grad: remember whose .grad that tensor is."""
        self.grad_owners[id(tensor._grad)] = tensor

    def _grad_owner(self, tensor):
        """The tensor whose .grad `tensor` is, if the function read it as such."""
        owner = self.grad_owners.get(id(tensor))
        return owner if owner is not None and owner._grad is tensor else None

    def _live_grad_slot(self, leaf) -> int:
        array = leaf._grad.array
        self.snapshot.add_tensor(leaf)
        slot = self._new_slot(array, "live", f"{self.names.get(id(leaf), 'leaf')}.grad")
        self.program.live_grads.append((leaf, slot))
        return slot

    def record_copy(self, source, copy) -> None:
        """An in-place op copied a tensor's old values (ops/inplace.py's snapshot)."""
        slot = self.slot_for(source)
        out = self._new_slot(copy, "value", "")
        self.program.instructions.append(CopyArray(slot, out))

    def record_write(self, tensor, index, value) -> None:
        """An in-place op wrote into a tensor's memory: tensor.array[index] = value."""
        target = self.slot_for(tensor)
        parts = index if isinstance(index, tuple) else (index,)
        index_spec = tuple(("slot", self.slot_for(p)) if hasattr(p, "shape") else ("value", p)
                           for p in parts)
        source = ("slot", self.slot_for(value)) if isinstance(value, Tensor) or \
            hasattr(value, "shape") else ("value", value)
        live = next((t for t, s, _ in self.program.live if s == target), None)
        if self.program.slots[target].kind == "const":  # a tensor made in the call, written:
            self.program.copied_consts.add(target)  # each replay starts from a fresh copy
        self.program.instructions.append(
            Write(target, index_spec, type(index) is tuple, source, live))

    def record_accumulate(self, leaf, grad) -> None:
        """The engine is about to add `grad` into `leaf.grad`."""
        self.snapshot.add_tensor(leaf)
        if leaf._hooks or post_accumulate_hooks(leaf):
            raise TraceError(
                "mg.compile: a leaf of shape "
                f"{tuple(leaf.shape)} has a hook (register_hook): a hook is Python that a replay "
                "would skip. Remove the hook, or run this function eagerly"
            )
        accumulate = Accumulate(leaf, self.slot_for(grad), self.names.get(id(leaf), "leaf"))
        if id(leaf) in self.inputs:  # an argument (x.requires_grad_()): the call's own
            accumulate.input_position = self.inputs[id(leaf)]
            accumulate.name = f"input {accumulate.input_position}"
        elif id(leaf) in self.made_here:  # made in the call: a new leaf each call, as eager
            accumulate.fresh_leaf = True
        self.program.instructions.append(accumulate)

    def accumulated(self, leaf) -> None:
        """The engine has added into `leaf.grad`: the .grad array gets a slot of its own."""
        accumulate = self.program.instructions[-1]
        array = leaf._grad.array
        slot = self.slot_of.get(id(array))
        if slot is None:
            slot = self._new_slot(array, "value", "")
        accumulate.out_slots = (slot,)

    def record_call(self, method, obj, args, kwargs):
        """A method that changes state outside the graph (an optimiser's step): run it now, and
        make the same call at every replay."""
        if any(callable(a) for a in args) or any(callable(v) for v in kwargs.values()):
            raise TraceError(
                f"mg.compile: {type(obj).__name__}.{method.__name__} was given a function (a "
                "closure): a replay would run it eagerly, outside the program. Do the closure's "
                "work in the compiled function itself"
            )
        if any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
            raise TraceError(
                f"mg.compile: {type(obj).__name__}.{method.__name__} was given a Tensor; a "
                "replay would pass the same one again. Pass numbers, or call it outside"
            )
        self.snapshot.add_object(obj)
        grad_mode.tracer = None
        try:
            result = method(obj, *args, **kwargs)
        finally:
            grad_mode.tracer = self
        self.program.instructions.append(Call(method, obj, args, kwargs))
        for tensor, slot, _ in self.program.live:  # a replay reads them again after a call
            self.slot_of[id(tensor.array)] = slot
            self.keep.append(tensor.array)
        return result

    # ---- the end of the trace ------------------------------------------------------------

    def finish(self, result) -> Program:
        """Write down where the function's result comes from, and check what the trace missed."""
        self.program.output = self._output_spec(result)
        explained = set()
        for instruction in self.program.instructions:
            if isinstance(instruction, Call):
                explained.update(id(t) for t in _tensors_changed_by(instruction.obj))
            elif isinstance(instruction, Forward) and instruction.ctx is not None \
                    and instruction.ctx._dirty:
                explained.update(id(t) for t in instruction.ctx._dirty)
        for tensor, slot, version in self.program.live:
            if tensor.array is not self.live_arrays[slot]:
                raise TraceError(
                    f"mg.compile: the array of {self.program.slots[slot].label} (shape "
                    f"{tuple(tensor.shape)}) was replaced during the call (`.data = ...`), which "
                    "a replay cannot repeat. Write into it instead: `p.sub_(...)` or "
                    "`p.copy_(...)` under mg.no_grad()"
                )
            if tensor._version_counter[0] != version and id(tensor) not in explained \
                    and not self._written_in_place(slot):
                raise TraceError(
                    f"mg.compile: a tensor the function reads ({self.program.slots[slot].label}, "
                    f"shape {tuple(tensor.shape)}) was changed in place by something the trace "
                    "cannot record (an optimiser or method without @recorded_as_one_call, or "
                    "a write to .array). A replay would skip that change; run this function "
                    "eagerly"
                )
        self.keep = []
        return self.program

    def _written_in_place(self, slot: int) -> bool:
        """Whether a recorded instruction writes into the slot's array (an in-place op)."""
        return any((isinstance(i, Forward) and slot in i.out_slots and slot in i.arg_slots)
                   or (isinstance(i, Write) and i.target == slot)
                   for i in self.program.instructions)

    def _output_spec(self, value):
        """The function's result as a structure whose Tensors are slots."""
        if isinstance(value, Tensor):
            return ("tensor", self.slot_for(value), value.device)
        if isinstance(value, (tuple, list)):
            return (type(value).__name__, [self._output_spec(v) for v in value])
        if isinstance(value, dict):
            return ("dict", {k: self._output_spec(v) for k, v in value.items()})
        if value is None or isinstance(value, (bool, int, str)):
            return ("constant", value)
        raise TraceError(
            f"mg.compile: the function returned a {type(value).__name__}; a compiled function "
            "returns Tensors (or tuples, lists and dicts of them), because a replay does not run "
            "the Python that computed anything else. Return the loss Tensor and call .item() "
            "outside the compiled function"
        )


def _tensors_changed_by(obj):
    """The tensors a recorded call may change: an optimiser's (or a module's) parameters."""
    groups = getattr(obj, "param_groups", None)
    if groups is not None:
        return [p for group in groups for p in group["params"]]
    parameters = getattr(obj, "parameters", None)
    return list(parameters()) if callable(parameters) else []


class Snapshot:
    """What a traced call changes, as it was before: tensors' values and gradients, objects'
    state (an optimiser's momentum buffers), the CPU generator. mg.compile puts it back after
    the trace and lets the program make the call, so that every call's result comes from the
    same program, whichever call traced it (a resumed run repeats an uninterrupted one bit for
    bit)."""

    def __init__(self):
        self.tensors = {}  # id -> (tensor, array copy, grad array copy or None)
        self.objects = {}  # id -> (object, copy of its state)
        self.rng = backend.get_rng_state(backend.CPU)

    def add_tensor(self, tensor) -> None:
        if id(tensor) not in self.tensors:
            grad = tensor._grad
            self.tensors[id(tensor)] = (tensor, tensor.array.copy(order="K"),
                                        None if grad is None else grad.array.copy(order="K"))

    def add_object(self, obj) -> None:
        """An optimiser (or module) about to change: its parameters and its state."""
        for tensor in _tensors_changed_by(obj):
            self.add_tensor(tensor)
        if id(obj) in self.objects:
            return
        state = getattr(obj, "state", None)
        groups = getattr(obj, "param_groups", None)
        if isinstance(state, dict):  # an optimiser: its state and its settings
            settings = [{k: v for k, v in g.items() if k != "params"} for g in groups or ()]
            self.objects[id(obj)] = (obj, ("optimizer", copy_state(state), settings))
        elif hasattr(obj, "optimizer") and hasattr(obj, "last_epoch"):  # a scheduler
            self.objects[id(obj)] = (obj, ("scheduler", copy.copy(vars(obj)), None))
            self.add_object(obj.optimizer)

    def restore(self) -> None:
        for tensor, array, grad in self.tensors.values():
            backend.module_for(tensor.device).copyto(tensor.array, array)
            tensor._grad = None if grad is None else Tensor._wrap_no_copy_no_checks(
                grad, tensor.device)
        for obj, (kind, state, settings) in self.objects.values():
            if kind == "optimizer":
                obj.state.clear()
                obj.state.update(state)
                for group, saved in zip(obj.param_groups, settings, strict=True):
                    group.update(saved)
            else:
                vars(obj).clear()
                vars(obj).update(state)
        backend.set_rng_state(backend.CPU, self.rng)


def copy_state(state: dict) -> dict:
    """An optimiser's state with its arrays copied; the keys stay the parameters themselves."""
    return {key: copy.deepcopy(value) for key, value in state.items()}
