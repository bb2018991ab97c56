"""The engine: order the graph into a tape, then run each node's backward once.

`run_backward(roots, grads)` walks the graph from the roots' grad_fns to the leaves and orders the
nodes so that every node comes after all the nodes that use its outputs (reverse topological
order). Walking that tape, each node receives, per output, the sum of the gradients sent to it,
runs its Function's backward, and sends one gradient along each edge: to the next node, or into a
leaf's `.grad`. The walk uses an explicit stack, so a 10,000-deep chain needs no recursion.

Two entry points call it, as in PyTorch: `backward(tensors)` (what `Tensor.backward` calls)
accumulates into the leaves' `.grad`; `grad(outputs, inputs)` returns d(outputs)/d(inputs)
without touching any `.grad`.

A leaf's `.grad` follows one rule for memory: it takes a gradient's array only when a built-in
op's backward just made it for that one edge (a new array: not a view, not a gradient the node
was given, not sent along two edges) and the leaf has no hooks; anything else is copied first.
So `.grad` never shares memory with anything the user, a hook or another gradient holds. Later
gradients are added into `.grad` in place, as in PyTorch.

Backward runs with grad mode set to `create_graph`. The derivative formulas are Tensor
operations, so with `create_graph=True` the backward pass records a graph of its own: the
gradients it returns have grad_fns, and differentiating them gives second derivatives.
"""

from __future__ import annotations

import threading

from .. import backend
from ..grad_mode import grad_mode
from ..tensor import Tensor, _post_accumulate_hooks, post_accumulate_hooks
from . import anomaly, forward
from .function import Context

_grad_lock = threading.Lock()  # accumulation into .grad is safe across threads, as in PyTorch


class Tape(list):
    """The nodes in the order backward runs them; printing shows one line per node."""

    def __str__(self) -> str:
        lines = []
        for step, node in enumerate(self):
            targets = ", ".join(_describe(t) for t, _ in node.next_functions if t is not None)
            shape = tuple(node.output_metadata[0][0]) if node.output_metadata[0] else ()
            lines.append(f"{step:3d}  {node.name():<22} out {str(shape):<14} -> {targets}")
        return "\n".join(lines)

    __repr__ = __str__  # (mg.viz.tape_table shows it as a table in a notebook)


def _describe(target) -> str:
    return target.name() if type(target) is Context else f"leaf {tuple(target.shape)}"


def tape(*roots) -> Tape:
    """The nodes behind the roots (Tensors or grad_fns) in the order backward will run them."""
    starts = [r if isinstance(r, Context) or r is None else r.grad_fn for r in roots]
    finished = []  # post-order: a node is appended after every node it sends gradients to
    visited = set()
    for start in starts:
        if start is None or start in visited:
            continue
        visited.add(start)
        stack = [(start, iter(start.next_functions))]
        while stack:
            node, children = stack[-1]
            for child, _ in children:
                if type(child) is Context and child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child.next_functions)))
                    break
            else:  # every child is finished
                stack.pop()
                finished.append(node)
    finished.reverse()  # now every node comes before the nodes it sends gradients to
    return Tape(finished)


class _Run:
    """The state of one backward pass: pending sums, where gradients end, what to capture."""

    def __init__(self, inputs, capture: bool, create_graph: bool, on_send=None):
        self.on_send = on_send  # None, or a function called with (node, number, grad) per edge
        self.pending = {}  # node -> [sum of the gradients sent to each of its outputs]
        self.create_graph = create_graph
        self.inputs = inputs  # None: every leaf; else only these get (or capture) gradients
        self.capture = capture
        self.captured = [None] * len(inputs) if inputs is not None else None
        self.leaf_index = {}  # id(leaf) -> its positions in inputs (an input may be repeated)
        self.node_index = {}  # (grad_fn, output_nr) -> positions in inputs
        self.hooked = {}  # id(leaf) -> [leaf, sum]: leaves with hooks see their summed gradient
        self.post = {}  # id(leaf) -> [leaf, edges still to come, received]: post-accumulate hooks
        for number, t in enumerate(inputs or ()):
            if t.grad_fn is None:
                self.leaf_index.setdefault(id(t), []).append(number)
            else:
                self.node_index.setdefault((t.grad_fn, t._output_nr), []).append(number)

    def add_pending(self, node: Context, output_nr: int, grad) -> None:
        sums = self.pending.get(node)
        if sums is None:
            sums = self.pending[node] = [None] * len(node.output_metadata)
        sums[output_nr] = grad if sums[output_nr] is None else sums[output_nr] + grad

    def deliver_to_leaf(self, leaf, grad, owned: bool = False) -> None:
        """A leaf's gradient: into .grad (or captured for grad()); a leaf with hooks first sums
        every edge's gradient, and its hooks see the sum once, at the end (finish_hooked).
        `owned`: nothing else holds the gradient's array (the rule above)."""
        if self.inputs is None and not leaf._hooks:  # the common case: straight into .grad
            _accumulate(leaf, grad, owned, self.create_graph)
            return
        if self.inputs is not None and id(leaf) not in self.leaf_index:
            return
        if leaf._hooks:
            entry = self.hooked.get(id(leaf))
            if entry is None:
                self.hooked[id(leaf)] = [leaf, grad]
            else:
                entry[1] = entry[1] + grad
            return
        self.receive(leaf, grad)

    def receive(self, leaf, grad) -> None:
        if self.inputs is not None and self.capture:
            for number in self.leaf_index[id(leaf)]:
                previous = self.captured[number]
                self.captured[number] = grad if previous is None else previous + grad
            return
        _accumulate(leaf, grad, False, self.create_graph)

    def finish_hooked(self) -> None:
        for leaf, grad in self.hooked.values():
            self.receive(leaf, _run_hooks(leaf._hooks, grad))
        for entry in self.post.values():  # leaves whose last edge never ran, or with hooks
            if entry[2]:
                entry[2] = False
                _run_post_accumulate_hooks(entry[0])

    def count_post_edges(self, order) -> None:
        """For leaves with post-accumulate hooks (backward only): the edges that lead to them,
        so that their hooks run as soon as the last one has been sent along."""
        if self.capture or not _post_accumulate_hooks:
            return
        for node in order:
            for target, _ in node.next_functions:
                if target is not None and type(target) is not Context \
                        and post_accumulate_hooks(target):
                    entry = self.post.setdefault(id(target), [target, 0, False])
                    entry[1] += 1

    def edge_done(self, leaf, received: bool) -> None:
        """One edge into a leaf with post-accumulate hooks was sent along (or was None)."""
        entry = self.post.get(id(leaf))
        if entry is None:
            return
        entry[1] -= 1
        entry[2] = entry[2] or received
        if entry[1] == 0 and entry[2] and not leaf._hooks:  # (hooked leaves: at the end)
            entry[2] = False
            _run_post_accumulate_hooks(leaf)


def run_backward(roots, grads, retain_graph=False, create_graph=False, inputs=None,
                 capture=False, on_send=None):
    """Send `grads` (Tensors shaped like the roots) back through the graph.

    Gradients go into the leaves' `.grad`; with `inputs`, only into those tensors' `.grad`, or,
    with `capture=True` (autograd.grad), into the returned list instead of any `.grad`.
    `on_send(node, number, grad)` sees the gradient sent along each edge (mg.viz draws them).
    """
    run = _Run(inputs, capture, create_graph, on_send)
    if grad_mode.tracer is not None:  # mg.compile: the starting gradients (compiler/trace.py)
        grad_mode.tracer.record_start(grads)
    previous = grad_mode.enabled
    grad_mode.enabled = create_graph  # backward's own operations are recorded only if asked
    try:
        for root, grad in zip(roots, grads, strict=True):
            if root.grad_fn is None:  # a leaf: its gradient is the given one
                run.deliver_to_leaf(root, grad)
            else:
                run.add_pending(root.grad_fn, root._output_nr, grad)
        order = tape(*roots)
        run.count_post_edges(order)
        if _post_accumulate_hooks and not capture:  # a root that is itself such a leaf
            for root in roots:
                if root.grad_fn is None and post_accumulate_hooks(root) and (
                        inputs is None or id(root) in run.leaf_index):
                    entry = run.post.setdefault(id(root), [root, 0, False])
                    entry[2] = True
        needed = _needed(order, run) if inputs is not None else None
        for node in order:
            sums = run.pending.pop(node, None)
            if sums is None:  # no path from a root carried a gradient here
                continue
            if node.hooks:
                sums = [_run_hooks(node.hooks.get(nr), g) for nr, g in enumerate(sums)]
            if run.node_index:
                _capture_at(node, sums, run)
            if needed is not None and node not in needed:
                continue
            _run_node(node, sums, run)
            if not retain_graph:
                node.release()
        run.finish_hooked()
    finally:
        grad_mode.enabled = previous
    return run.captured


def _run_node(node: Context, sums: list, run: _Run) -> None:
    if len(sums) > 1 and node.materialize_grads and any(g is None for g in sums):
        sums = [_zeros(meta) if g is None and meta else g for g, meta in
                zip(sums, node.output_metadata, strict=True)]
    if grad_mode.tracer is not None:  # mg.compile is writing this backward down (compiler/)
        grads = grad_mode.tracer.record_backward(node, sums)
    elif grad_mode.anomaly:  # the ops inside a backward are checked as that node's backward
        grad_mode.in_backward = True
        try:
            grads = node.function.backward(node, *sums)
        finally:
            grad_mode.in_backward = False
    else:
        grads = node.function.backward(node, *sums)
    grads = grads if type(grads) is tuple else (grads,)
    _send(node, grads, run, sums)


def _send(node: Context, grads: tuple, run: _Run, sums: list) -> None:
    """Send each input gradient along its edge: into the next node's pending sum, or a leaf."""
    edges = node.next_functions
    if len(grads) != len(edges):
        if len(grads) < len(edges) or any(g is not None for g in grads[len(edges):]):
            raise RuntimeError(
                f"{node.function.__name__}.backward returned an incorrect number of gradients "
                f"(expected {len(edges)}, got {len(grads)}): one per forward input"
            )
        grads = grads[:len(edges)]  # extra trailing Nones are accepted, as in PyTorch
    if grad_mode.anomaly:
        anomaly.check_backward(node, grads)
    for number, ((target, output_nr), grad) in enumerate(zip(edges, grads, strict=False)):
        if target is None:
            continue
        if grad is None:
            if run.post and type(target) is not Context:
                run.edge_done(target, False)
            continue
        # The gradient must look like what it is sent to: that output of the next node (as
        # forward recorded it), or the leaf itself.
        if type(target) is Context:
            shape, dtype, device = target.output_metadata[output_nr]
        else:
            array = target.array
            shape, dtype, device = array.shape, array.dtype, target.device
        if not (type(grad) is Tensor and grad.array.shape == shape
                and grad.array.dtype is dtype and grad.device is device):
            grad = _check_gradient(node, number, grad, shape, dtype, device)
        if run.on_send is not None:
            run.on_send(node, number, grad)
        if type(target) is Context:
            run.add_pending(target, output_nr, grad)
        else:
            run.deliver_to_leaf(target, grad, _made_for_this_edge(node, grad, grads, sums))
            if run.post:
                run.edge_done(target, run.inputs is None or id(target) in run.leaf_index)


def _made_for_this_edge(node: Context, grad, grads: tuple, sums: list) -> bool:
    """Whether a built-in op's backward made this gradient's array for this one edge (the rule
    in the module docstring): then a leaf's .grad may take it without a copy."""
    if type(grad) is not Tensor:  # a batched gradient (vmap over a vjp): not an array here
        return False
    array = grad.array
    if not node.function.built_in or array.base is not None:
        return False  # a user's backward may return what it keeps; a view shares memory
    if any(s is not None and s.array is array for s in sums):
        return False  # passed through (Add, Clone): the caller or a hook may hold it
    return sum(1 for g in grads if isinstance(g, Tensor) and g.array is array) == 1


def _check_gradient(node: Context, number: int, grad, shape, dtype, device):
    """The gradient for input `number` must be a Tensor shaped, typed and placed like it."""
    if not isinstance(grad, Tensor):
        raise TypeError(
            f"{node.function.__name__}.backward returned a {type(grad).__name__} as the gradient "
            f"of input {number}; expected a Tensor or None"
        )
    if grad.shape != shape and node.function.built_in:
        raise RuntimeError(
            f"{node.name()} (a built-in op) returned a gradient of shape {list(grad.shape)} "
            f"for input {number}, which has shape {list(shape)}: its backward must undo "
            "broadcasting itself (unbroadcast in ops/reduce.py)"
        )
    if grad.shape != shape:  # a user's Function: PyTorch sums a broadcast gradient down
        try:
            expandable = backend.broadcast_shapes(shape, grad.shape) == grad.shape
        except ValueError:
            expandable = False
        if not expandable:
            raise RuntimeError(
                f"Function {node.name()} returned an invalid gradient at index {number} - got "
                f"{list(grad.shape)} but expected shape compatible with {list(shape)}"
            )
        grad = grad.sum_to_size(shape)
    if grad.device is not device:
        raise RuntimeError(
            f"Function {node.name()} returned a gradient on {grad.device} for input {number}, "
            f"which is on {device}"
        )
    if grad.dtype != dtype:
        grad = grad.to(dtype)
    return grad


def _needed(order, run: _Run) -> set:
    """The nodes whose backward must run to reach the requested inputs."""
    targets = {node for node, _ in run.node_index}
    needed = set()
    for node in reversed(order):  # leaves' side first
        for target, _ in node.next_functions:
            if target is None:
                continue
            if type(target) is Context:
                if target in needed or target in targets:
                    needed.add(node)
                    break
            elif id(target) in run.leaf_index:
                needed.add(node)
                break
    return needed


def _capture_at(node: Context, sums: list, run: _Run) -> None:
    """Non-leaf inputs: their gradient is the sum arriving at their grad_fn's output."""
    for output_nr, grad in enumerate(sums):
        numbers = run.node_index.get((node, output_nr))
        if numbers is None or grad is None:
            continue
        if run.capture:
            for number in numbers:
                run.captured[number] = grad
        else:  # backward(inputs=[a non-leaf]): accumulate into its .grad
            target = run.inputs[numbers[0]]
            _accumulate(target, grad, False, run.create_graph)


def _run_hooks(hooks, grad):
    """Each hook sees the gradient and may return a replacement (which a leaf's .grad copies:
    the hook may keep it)."""
    for hook in hooks or ():
        if grad is None:
            break
        result = hook(grad)
        if result is not None:
            grad = result
    return grad


def _run_post_accumulate_hooks(leaf) -> None:
    for hook in list(post_accumulate_hooks(leaf)):
        if hook(leaf) is not None:
            raise RuntimeError("Tensor post accumulate grad hooks should return None.")


def _zeros(metadata):
    shape, dtype, device = metadata
    return Tensor._wrap_no_copy_no_checks(backend.module_for(device).zeros(shape, dtype), device)


def _accumulate(leaf, grad, owned: bool, create_graph: bool) -> None:
    """leaf.grad += grad: the first gradient becomes .grad (a copy unless `owned`), later ones are
    added into it in place; with create_graph, out of place, so .grad keeps its graph."""
    tracer = grad_mode.tracer
    if tracer is not None:  # mg.compile writes the accumulation down (compiler/trace.py)
        tracer.record_accumulate(leaf, grad)
    _add_into_grad(leaf, grad, owned, create_graph)
    if tracer is not None:
        tracer.accumulated(leaf)


def _add_into_grad(leaf, grad, owned: bool, create_graph: bool) -> None:
    if grad_mode.vmap_level and grad_mode.batching.is_batched(grad):
        raise RuntimeError("vmap: backward() sent a batched gradient into .grad, which would "
                           "mix the slices; use autograd.grad (or mg.func.vjp) inside vmap")
    with _grad_lock:
        if create_graph:  # keep the graph: .grad itself can be differentiated
            leaf._grad = grad.clone() if leaf._grad is None else leaf._grad + grad
            return
        array = grad.array
        if leaf._grad is not None:
            total = leaf._grad.array
            if getattr(total.flags, "writeable", True) and total.dtype == array.dtype:
                total += array  # in place, as PyTorch's AccumulateGrad: .grad stays the object
                leaf._grad._bump_version()
            else:  # a .grad the user set to something read-only: a new sum
                leaf._grad = Tensor._wrap_no_copy_no_checks(total + array, leaf.device)
            return
        if type(array) is not type(leaf.array):  # a numpy scalar: 0-d arithmetic gives those
            array, owned = backend.ensure_array(array, backend.array_module(leaf.array)), True
        if not owned:
            array = array.copy()
        leaf._grad = Tensor._wrap_no_copy_no_checks(array, leaf.device)


# ---- the entry points: autograd.grad and autograd.backward ------------------------------------


def _as_tuple(value, name: str) -> tuple:
    if isinstance(value, Tensor):
        return (value,)
    if value is None:
        return ()
    try:
        result = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a Tensor or a sequence of Tensors, got "
                        f"{type(value).__name__}") from None
    for item in result:
        if not isinstance(item, Tensor):
            raise TypeError(f"{name} must hold Tensors, got a {type(item).__name__}")
    return result


def _root_grads(outputs: tuple, grad_outputs, op: str) -> tuple:
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif type(grad_outputs) is not tuple and (isinstance(grad_outputs, Tensor)
                                              or backend.is_array(grad_outputs)):
        grad_outputs = (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"{op}: grad_outputs has {len(grad_outputs)} entries, but there are "
            f"{len(outputs)} outputs"
        )
    for number, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"{op}: element {number} of tensors does not require grad and does not have a "
                "grad_fn; did you create the inputs with requires_grad=True, or run under "
                "no_grad()?"
            )
    return tuple([_root_gradient(out, g, op) for out, g in zip(outputs, grad_outputs, strict=True)])


def _root_gradient(root, gradient, op: str) -> Tensor:
    """The gradient backward starts from: ones for a one-element root, else the given one."""
    if gradient is None:
        if root.array.size != 1:
            raise RuntimeError(
                f"{op}: grad can be implicitly created only for scalar outputs (a tensor with "
                f"one element), but this one has shape {root.shape}; pass gradient="
            )
        ones = backend.module_for(root.device).empty(root.array.shape, root.array.dtype)
        ones.fill(1)  # (numpy.ones is a Python function that does the same, more slowly)
        return Tensor._wrap_no_copy_no_checks(ones, root.device)
    if not isinstance(gradient, Tensor):
        gradient = Tensor(gradient, dtype=root.dtype, device=root.device)
    if gradient.shape != root.shape:
        raise RuntimeError(
            f"{op}: gradient has shape {gradient.shape}, but the tensor has shape {root.shape}; "
            "they must match"
        )
    if gradient.device is not root.device:
        raise RuntimeError(f"{op}: gradient is on {gradient.device}, the tensor on {root.device}")
    return gradient if gradient.dtype == root.dtype else gradient.to(root.dtype)


def _inputs(inputs, op: str) -> tuple:
    """The tensors to differentiate with respect to: at least one, each requiring grad."""
    inputs = _as_tuple(inputs, "inputs")
    if not inputs:
        raise RuntimeError(f"{op}: inputs= was given as an empty sequence")
    for number, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"{op}: input {number} of inputs (One of the differentiated "
                               "Tensors) does not require grad")
    return inputs


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs`, as a tuple of Tensors; an input the
    outputs do not depend on gets None with allow_unused=True, zeros with materialize_grads."""
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads="
                         "True, but got: allow_unused=False.")
    allow_unused = materialize_grads if allow_unused is None else allow_unused
    outputs = _as_tuple(outputs, "outputs")
    inputs = _inputs(inputs, "grad")
    if grad_mode.vmap_level:  # batched outputs: differentiated underneath (func/batching.py)
        seeds = None if grad_outputs is None else _as_tuple(grad_outputs, "grad_outputs")
        batched = grad_mode.batching.grad(
            outputs, inputs, seeds,
            retain_graph=retain_graph, create_graph=create_graph, allow_unused=allow_unused,
            materialize_grads=materialize_grads)
        if batched is not None:
            return batched
    roots = _root_grads(outputs, grad_outputs, "grad")
    retain = create_graph if retain_graph is None else retain_graph
    captured = run_backward(outputs, roots, retain, create_graph, inputs, capture=True)
    for number, g in enumerate(captured):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {number}: One of the differentiated Tensors appears to not have "
                "been used in the graph. Set allow_unused=True if this is the desired behavior."
            )
    if not create_graph:  # plain gradients: cut from the graph of the backward pass
        captured = [g if g is None else _detached(g) for g in captured]
    if materialize_grads:
        captured = [_zeros((t.array.shape, t.array.dtype, t.device)) if g is None else g
                    for g, t in zip(captured, inputs, strict=True)]
    return tuple(captured)


def _detached(gradient):
    """A gradient cut from the backward pass's graph, keeping its forward-mode tangent (the
    Hessian-vector product of forward-over-reverse)."""
    result = gradient.detach()
    if grad_mode.dual_level:
        tangent = forward.tangent_of(gradient)
        if tangent is not None:
            forward.set_tangent(result, tangent)
    return result


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of `tensors` into the leaves' (or `inputs`') `.grad`."""
    tensors = _as_tuple(tensors, "tensors")
    if grad_mode.vmap_level and any(grad_mode.batching.is_batched(t) for t in tensors):
        raise RuntimeError("vmap: backward() of a batched tensor is not supported: .grad "
                           "would add up every slice's gradient. Use mg.func.grad or "
                           "autograd.grad inside vmap")
    roots = _root_grads(tensors, grad_tensors, "backward")
    inputs = None if inputs is None else _inputs(inputs, "backward")
    retain = create_graph if retain_graph is None else retain_graph
    run_backward(tensors, roots, retain, create_graph, inputs)
