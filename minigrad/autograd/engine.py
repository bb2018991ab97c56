"""The engine: order the graph into a tape, then run each node's backward once.

`backward(root, gradient)` walks the graph from the root's grad_fn to the leaves and orders the
nodes so that every node comes after all the nodes that use its output (reverse topological
order). Walking that tape, each node receives the sum of the gradients sent to it, runs its
Function's backward, and sends one gradient along each edge: to the next node, or into a leaf's
`.grad`. The walk uses an explicit stack, so a 10,000-deep chain needs no recursion.
"""

from __future__ import annotations

from .. import backend
from . import anomaly
from .function import Context
from .grad_mode import grad_mode


class Tape(list):
    """The nodes in the order backward runs them; printing shows one line per node."""

    def __str__(self) -> str:
        lines = []
        for step, node in enumerate(self):
            targets = ", ".join(_describe_target(t) for t in node.next_nodes if t is not None)
            shape = tuple(node.output_shape)
            lines.append(f"{step:3d}  {node.name():<22} out {str(shape):<14} -> {targets}")
        return "\n".join(lines)


def _describe_target(target) -> str:
    if isinstance(target, Context):
        return target.name()
    return f"leaf {tuple(target.shape)}"


def tape(root) -> Tape:
    """The nodes behind `root` (a Tensor or a grad_fn) in the order backward will run them."""
    start = root if isinstance(root, Context) or root is None else root.grad_fn
    if start is None:
        return Tape()
    finished = []  # post-order: a node is appended after every node it sends gradients to
    visited = {start}
    stack = [(start, iter(start.next_nodes))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if type(child) is Context and child not in visited:
                visited.add(child)
                stack.append((child, iter(child.next_nodes)))
                break
        else:  # every child is finished
            stack.pop()
            finished.append(node)
    finished.reverse()  # now every node comes before the nodes it sends gradients to
    return Tape(finished)


def backward(root, gradient, retain_graph: bool = False) -> None:
    """Send `gradient` (an array shaped like root) back through the graph into the leaves."""
    held = {id(gradient)}  # arrays someone else holds: a leaf's .grad must not be one of them
    if root.grad_fn is None:  # a leaf: its gradient is the given one
        _accumulate(root, gradient, held)
        return
    pending = {root.grad_fn: gradient}  # node -> sum of the gradients sent to it so far
    for node in tape(root.grad_fn):
        grad_output = pending.pop(node, None)
        if grad_output is not None:  # None: no path from the root carried a gradient here
            grads = node.function.backward(node, grad_output)
            _send(node, grads if type(grads) is tuple else (grads,), pending, held)
        if not retain_graph:
            node.release()


def _send(node: Context, grads: tuple, pending: dict, held: set) -> None:
    """Send each input gradient along its edge: into the next node's pending sum, or a leaf."""
    if len(grads) != len(node.next_nodes):
        raise RuntimeError(
            f"{node.function.__name__}.backward returned {len(grads)} gradients, "
            f"expected {len(node.next_nodes)} (one per forward input)"
        )
    if grad_mode.anomaly:
        anomaly.check_backward(node, grads)
    for target, grad in zip(node.next_nodes, grads, strict=False):  # lengths checked above
        if target is None or grad is None:
            continue
        if type(target) is Context:
            previous = pending.get(target)
            pending[target] = grad if previous is None else previous + grad
        else:
            _accumulate(target, grad, held)


def _accumulate(leaf, grad, held: set) -> None:
    """leaf.grad += grad, leaving .grad an array of its own that the user may write to."""
    data = leaf.array
    if grad.shape != data.shape:
        raise RuntimeError(
            f"gradient of shape {tuple(grad.shape)} does not match its tensor's shape "
            f"{tuple(data.shape)}"
        )
    if grad.dtype != data.dtype:
        grad = grad.astype(data.dtype)
    if leaf.grad is not None:
        grad = leaf.grad.array + grad
    elif grad.base is not None or id(grad) in held:
        # A view (a broadcast from Sum is read-only), the caller's gradient, or an array another
        # leaf got too (Add sends one array to both inputs): copy, so .grad owns its memory.
        grad = grad.copy()
    if type(grad) is not type(data):  # a numpy scalar: 0-d arithmetic gives those
        grad = backend.ensure_array(grad, backend.array_module(data))
    held.add(id(grad))
    leaf.grad = leaf._wrap(grad, leaf.device)
