"""autograd.functional: vjp, jvp, jacobian, hessian, vhp and hvp, built on autograd.grad.

Each takes a function and its inputs (a Tensor or a tuple of Tensors), as in PyTorch, and answers
in the same shape: a Tensor where the caller gave a Tensor, a tuple where the caller gave a tuple.
Without `create_graph`, each input is replaced by a detached tensor on the same memory that
requires grad, so nothing reaches the caller's graph. With `create_graph=True`, an input that
requires grad enters through an identity view (`view_as`), so the results stay connected to it:
a loss built from a Jacobian or a Hessian-vector product trains what the input depends on.

minigrad has reverse mode only (no forward-mode AD, no vmap), so the products that PyTorch's
forward mode would give are computed by the "double backward trick", as PyTorch's own
autograd.functional does: for u a dummy cotangent that requires grad, w(u) = J^T u is linear in
u, and the gradient of <w(u), v> with respect to u is J v.
"""

from __future__ import annotations

from ..engine.backward import grad
from ..factories import zeros, zeros_like
from ..grad_mode import enable_grad
from ..tensor import Tensor
from ..tensor_functions import stack

_STRATEGIES = ("forward-mode", "reverse-mode")

# What strict=True reports; {i} is the number of the input (or entry) in question.
_OUTPUT_INDEPENDENT = ("The output of the user-provided function is independent of input {i}. "
                       "This is not allowed in strict mode.")
_OUTPUT_CONSTANT = ("Output {i} of the user-provided function does not require gradients. The "
                    "outputs must be computed in a differentiable manner from the input when "
                    "running in strict mode.")
_GRADIENT_CONSTANT = ("The gradient with respect to input {i} is independent of the inputs of the "
                      "user-provided function. This is not allowed in strict mode.")
_JACOBIAN_CONSTANT_IN_HESSIAN = (
    "While computing the hessian, found that the jacobian of the user-provided function with "
    "respect to input {i} is independent of the input. This is not allowed in strict mode. You "
    "should ensure that your function is twice differentiable and that the jacobian depends on "
    "the inputs (this would be violated by a linear function for example).")
_COTANGENT_UNUSED = ("The gradient with respect to the input is independent of entry {i} in the "
                     "grad_outputs when using the double backward trick to compute forward mode "
                     "gradients. This is not allowed in strict mode.")
_JACOBIAN_INDEPENDENT = ("The jacobian of the user-provided function is independent of input {i}. "
                         "This is not allowed in strict mode.")
_GRAD_JACOBIAN_UNUSED = (
    "The hessian of the user-provided function is independent of entry {i} in the grad_jacobian. "
    "This is not allowed in strict mode as it prevents from using the double backward trick to "
    "replace forward mode AD.")
_JACOBIAN_CONSTANT = ("The jacobian of the user-provided function is independent of input {i}. "
                      "This is not allowed in strict mode when create_graph=True.")
_HESSIAN_CONSTANT = ("The hessian of the user-provided function is independent of input {i}. "
                     "This is not allowed in strict mode when create_graph=True.")


# ---- helpers: tuples in and out, fresh inputs, the checks strict=True makes -------------------


def _tensor_tuple(value, what: str, function: str) -> tuple[bool, tuple]:
    """(was it a tuple, the Tensors as a tuple); anything but a Tensor or a tuple of them fails."""
    was_tuple = isinstance(value, tuple)
    items = value if was_tuple else (value,)
    for number, item in enumerate(items):
        if not isinstance(item, Tensor):
            where = f"the value at index {number}" if was_tuple else f"the given {what}"
            raise TypeError(f"The {what} given to {function} must be either a Tensor or a tuple of "
                            f"Tensors but {where} has type {type(item)}.")
    return was_tuple, items


def _fresh(tensors: tuple, create_graph: bool, need_graph: bool) -> tuple:
    """New Tensor objects for the inputs: a view (create_graph) or a detached copy of each.

    Always a new object, so the function's arguments differ from the same tensors captured in a
    closure: gradients are taken with respect to the arguments only.
    """
    with enable_grad():
        return tuple(t.view_as(t) if create_graph and t.requires_grad
                     else t.detach().requires_grad_(need_graph) for t in tensors)


def _check_v(v: tuple, targets: tuple, targets_were_tuple: bool) -> None:
    """v must hold one tensor per target, each of the target's shape."""
    if len(v) != len(targets):
        if targets_were_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(targets)} but got "
                               f"{len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for number, (vector, target) in enumerate(zip(v, targets, strict=True)):
        if vector.shape != target.shape:
            entry = f"Entry {number} in " if targets_were_tuple else ""
            raise RuntimeError(f"{entry}v has invalid size: should be {target.shape} but got "
                               f"{vector.shape}.")


def _require_grad(tensors: tuple, strict: bool, constant_message: str) -> None:
    """In strict mode, every tensor must exist (be reached) and require grad."""
    if not strict:
        return
    for number, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(_OUTPUT_INDEPENDENT.format(i=number))
        if not t.requires_grad:
            raise RuntimeError(constant_message.format(i=number))


def _grad_through_connected(outputs: tuple, inputs: tuple, grad_outputs=None,
                            create_graph: bool = False, retain_graph=None) -> tuple:
    """autograd.grad over the outputs that have a graph; None for each input nothing reaches."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    kept = [(out, g) for out, g in zip(outputs, grad_outputs, strict=True)
            if out is not None and out.requires_grad]
    if not kept:  # nothing to differentiate: every input is unreached
        return (None,) * len(inputs)
    return grad(tuple(out for out, _ in kept), inputs, tuple(g for _, g in kept),
                retain_graph=retain_graph, create_graph=create_graph, allow_unused=True)


def _zeros_for_unreached(grads: tuple, like: tuple, strict: bool, create_graph: bool,
                         unreached_message: str, constant_message: str) -> tuple:
    """Zeros where a gradient is None (an error in strict mode, as is a constant one)."""
    filled = []
    for number, (g, reference) in enumerate(zip(grads, like, strict=True)):
        if g is None:
            if strict:
                raise RuntimeError(unreached_message.format(i=number))
            g = zeros_like(reference)
        elif strict and create_graph and not g.requires_grad:
            raise RuntimeError(constant_message.format(i=number))
        filled.append(g)
    return tuple(filled)


def _finish(tensors: tuple, create_graph: bool) -> tuple:
    """Detach the results unless the caller asked for a graph."""
    return tensors if create_graph else tuple(t.detach() for t in tensors)


def _unpack(tensors: tuple, was_tuple: bool):
    return tensors if was_tuple else tensors[0]


# ---- vector products ----------------------------------------------------------------------------


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product, what one backward pass computes."""
    with enable_grad():
        inputs_were_tuple, inputs = _tensor_tuple(inputs, "inputs", "vjp")
        inputs = _fresh(inputs, create_graph, need_graph=True)
        outputs_were_tuple, outputs = _tensor_tuple(
            func(*inputs), "outputs of the user-provided function", "vjp")
        _require_grad(outputs, strict, _OUTPUT_CONSTANT)
        if v is not None:
            _, v = _tensor_tuple(v, "v", "vjp")
            v = _fresh(v, create_graph, need_graph=False)
            _check_v(v, outputs, outputs_were_tuple)
        elif len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
    grads = _grad_through_connected(outputs, inputs, v, create_graph=create_graph)
    products = _zeros_for_unreached(grads, inputs, strict, create_graph,
                                    _OUTPUT_INDEPENDENT, _JACOBIAN_CONSTANT)
    return (_unpack(_finish(outputs, create_graph), outputs_were_tuple),
            _unpack(_finish(products, create_graph), inputs_were_tuple))


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product, by the double backward trick.

    With u a zero cotangent that requires grad, one backward pass gives w = J^T u with a graph;
    w is linear in u, so a second pass, of w against v with respect to u, gives J v. (u's value
    never shows in the result; zeros keep inf and nan out.)
    """
    with enable_grad():
        inputs_were_tuple, inputs = _tensor_tuple(inputs, "inputs", "jvp")
        inputs = _fresh(inputs, create_graph, need_graph=True)
        if v is not None:
            _, v = _tensor_tuple(v, "v", "jvp")
            v = _fresh(v, create_graph, need_graph=False)
            _check_v(v, inputs, inputs_were_tuple)
        elif len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the input to the user-provided "
                               "function is a single Tensor with a single element.")
        outputs_were_tuple, outputs = _tensor_tuple(
            func(*inputs), "outputs of the user-provided function", "jvp")
        _require_grad(outputs, strict, _OUTPUT_CONSTANT)
        cotangents = tuple(zeros_like(out, requires_grad=True) for out in outputs)
        transposed = _grad_through_connected(outputs, inputs, cotangents, create_graph=True)
        _require_grad(transposed, strict, _GRADIENT_CONSTANT)
    grads = _grad_through_connected(transposed, cotangents, v, create_graph=create_graph)
    products = _zeros_for_unreached(grads, outputs, strict, create_graph,
                                    _COTANGENT_UNUSED, _JACOBIAN_CONSTANT)
    return (_unpack(_finish(outputs, create_graph), outputs_were_tuple),
            _unpack(_finish(products, create_graph), outputs_were_tuple))


def _scalar_function_gradient(func, inputs, v, create_graph: bool, strict: bool, name: str):
    """Shared start of vhp and hvp: (fresh inputs, v, output, grad func with a graph, ...)."""
    inputs_were_tuple, inputs = _tensor_tuple(inputs, "inputs", name)
    inputs = _fresh(inputs, create_graph, need_graph=True)
    if v is not None:
        _, v = _tensor_tuple(v, "v", name)
        v = _fresh(v, create_graph, need_graph=False)
        _check_v(v, inputs, inputs_were_tuple)
    elif len(inputs) != 1 or inputs[0].numel() != 1:
        raise RuntimeError("The vector v can only be None if the input to the user-provided "
                           "function is a single Tensor with a single element.")
    outputs_were_tuple, outputs = _tensor_tuple(
        func(*inputs), "outputs of the user-provided function", name)
    _require_grad(outputs, strict, _OUTPUT_CONSTANT)
    if outputs_were_tuple:
        raise RuntimeError(f"The function given to {name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {name} should contain "
                           f"a single element")
    gradient = _grad_through_connected(outputs, inputs, create_graph=True)
    _require_grad(gradient, strict, _JACOBIAN_CONSTANT_IN_HESSIAN)
    return inputs_were_tuple, inputs, v, outputs[0], gradient


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H): the gradient of <grad func, v>, two backward passes, no Hessian."""
    with enable_grad():
        inputs_were_tuple, inputs, v, output, gradient = _scalar_function_gradient(
            func, inputs, v, create_graph, strict, "vhp")
    grads = _grad_through_connected(gradient, inputs, v, create_graph=create_graph)
    products = _zeros_for_unreached(grads, inputs, strict, create_graph,
                                    _JACOBIAN_INDEPENDENT, _HESSIAN_CONSTANT)
    return (output if create_graph else output.detach(),
            _unpack(_finish(products, create_graph), inputs_were_tuple))


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v): the Jacobian-vector product of grad func, by the double backward trick.

    Equal to vhp wherever H is symmetric (f twice continuously differentiable), at the cost of
    a third backward pass: w = H^T u for a dummy u, then the gradient of <w, v> in u.
    """
    with enable_grad():
        inputs_were_tuple, inputs, v, output, gradient = _scalar_function_gradient(
            func, inputs, v, create_graph, strict, "hvp")
        cotangents = tuple(zeros_like(t, requires_grad=True) for t in inputs)
        transposed = _grad_through_connected(gradient, inputs, cotangents, create_graph=True)
    grads = _grad_through_connected(transposed, cotangents, v, create_graph=create_graph)
    products = _zeros_for_unreached(grads, inputs, strict, create_graph,
                                    _GRAD_JACOBIAN_UNUSED, _HESSIAN_CONSTANT)
    return (output if create_graph else output.detach(),
            _unpack(_finish(products, create_graph), inputs_were_tuple))


# ---- whole matrices -----------------------------------------------------------------------------


def _jacobian_rows(outputs: tuple, inputs: tuple, create_graph: bool, strict: bool) -> tuple:
    """J[i][j] = d outputs[i] / d inputs[j], of shape outputs[i].shape + inputs[j].shape.

    One backward pass per element of each output gives one row (of every J[i][j]) at a time.
    """
    jacobian = []
    for i, out in enumerate(outputs):
        flat = out.reshape(-1)
        rows = [[] for _ in inputs]
        for element in range(out.numel()):
            grads = _grad_through_connected((flat[element],), inputs, retain_graph=True,
                                            create_graph=create_graph)
            for j, (g, t) in enumerate(zip(grads, inputs, strict=True)):
                if g is None:
                    if strict:
                        raise RuntimeError(f"Output {i} of the user-provided function is "
                                           f"independent of input {j}. This is not allowed in "
                                           "strict mode.")
                    g = zeros_like(t)
                elif strict and create_graph and not g.requires_grad:
                    raise RuntimeError(_JACOBIAN_CONSTANT.format(i=j))
                rows[j].append(g)
        jacobian.append(tuple(
            stack(row).reshape(out.shape + t.shape) if row
            else zeros(out.shape + t.shape, dtype=t.dtype, device=t.device)  # an empty output
            for row, t in zip(rows, inputs, strict=True)))
    return tuple(jacobian)


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """d func(inputs) / d inputs: J[i][j] of shape output[i].shape + input[j].shape.

    A Tensor when func takes and returns one Tensor; a tuple when either side is a tuple; a
    tuple of tuples when both are. `vectorize` and `strategy` are accepted with PyTorch's checks,
    but minigrad has neither vmap nor forward mode: every combination computes the same rows by
    backward passes, so the values are the same. As with PyTorch's forward mode, a forward-mode
    result stays connected to the inputs that require grad (but not to tensors that func only
    captures, which PyTorch's forward mode would also reach).
    """
    if strategy not in _STRATEGIES:
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode". '
                             'Hint: If your function has more outputs than inputs, "forward-mode" '
                             'tends to be more performant. Otherwise, prefer to use '
                             '"reverse-mode".')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(
                "minigrad.autograd.functional.jacobian: `create_graph=True` and "
                '`strategy="forward-mode"` are not supported together (yet). Please either set '
                '`create_graph=False` or `strategy="reverse-mode"`.')
        if strict:
            raise RuntimeError(
                "minigrad.autograd.functional.jacobian: `strict=True` and "
                '`strategy="forward-mode"` are not supported together (yet). Please either set '
                '`strict=False` or `strategy="reverse-mode"`.')
        _, given = _tensor_tuple(inputs, "inputs", "jacobian")
        if not vectorize:
            raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse "
                                      "Hessian is only implemented for `vectorize=True`.")
        # forward mode's tangents are differentiable in the primal: keep a graph to the inputs
        create_graph = any(t.requires_grad for t in given)
    with enable_grad():
        inputs_were_tuple, inputs = _tensor_tuple(inputs, "inputs", "jacobian")
        inputs = _fresh(inputs, create_graph, need_graph=True)
        outputs_were_tuple, outputs = _tensor_tuple(
            func(*inputs), "outputs of the user-provided function", "jacobian")
        _require_grad(outputs, strict, _OUTPUT_CONSTANT)
        if vectorize and strict:
            raise RuntimeError("minigrad.autograd.functional.jacobian: `strict=True` and "
                               "`vectorized=True` are not supported together. Please either set "
                               "`strict=False` or `vectorize=False`.")
        rows = _jacobian_rows(outputs, inputs, create_graph, strict)
    result = tuple(_unpack(_finish(row, create_graph), inputs_were_tuple) for row in rows)
    return _unpack(result, outputs_were_tuple)


def hessian(func, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """d^2 func / d inputs^2 of a one-element func: H[i][j], of shape in[i].shape + in[j].shape.

    The Jacobian of the gradient: the inner Jacobian is taken with a graph, the outer one with
    `vectorize` and `outer_jacobian_strategy` (checked as jacobian checks them).
    """
    inputs_were_tuple, inputs = _tensor_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in _STRATEGIES:
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def single_output(*xs):
        output = func(*xs)
        output_was_tuple, outputs = _tensor_tuple(
            output, "outputs of the user-provided function", "hessian")
        _require_grad(outputs, strict, _OUTPUT_CONSTANT)
        if output_was_tuple:
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if output.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should "
                               "contain a single element")
        return output.reshape(())

    def gradient(*xs):
        grads = jacobian(single_output, xs, create_graph=True)
        _require_grad(grads, strict, _JACOBIAN_CONSTANT_IN_HESSIAN)
        return grads

    result = jacobian(gradient, inputs, create_graph=create_graph, strict=strict,
                      vectorize=vectorize, strategy=outer_jacobian_strategy)
    return result if inputs_were_tuple else result[0][0]
