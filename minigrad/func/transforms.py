"""torch.func's function transforms, on minigrad's engine: functions in, functions out.

    mg.func.grad(f)(x)                 the gradient of a scalar f at x
    mg.func.vjp(f, x) -> (f(x), vjp_fn)     vjp_fn(v) = v^T J
    mg.func.jvp(f, (x,), (v,))         (f(x), J v), by forward mode (docs/forward-mode.md)
    mg.func.jacrev(f)(x), jacfwd(f)(x) the Jacobian: vmap over the rows (vjp) or columns (jvp)
    mg.func.hessian(f)(x)              jacfwd(jacrev(f)): forward over reverse
    mg.func.functional_call(model, params, x)   the model with other parameters
    (mg.func.vmap is in vmap.py)

PyTorch's transforms work on plain tensors and compose (grad(grad(f)), vmap(grad(f))); so do
these: an input that does not require grad is made a leaf for the call, and gradients are taken
with create_graph=True, so that an outer transform can differentiate them again. Inside vmap,
the inputs a transform differentiates are batched first (batching.lift), so that each slice
gets its own gradient: per-sample gradients.
"""

from __future__ import annotations

import contextlib

from ..autograd import forward_ad
from ..engine import forward
from ..engine.backward import grad as autograd_grad
from ..factories import eye
from ..grad_mode import enable_grad, grad_mode
from ..nn.module import Module
from ..tensor import Tensor
from . import batching
from .vmap import vmap


def grad(func, argnums=0, has_aux: bool = False):
    """A function that returns the gradient of `func` (a scalar) with respect to its argnums."""
    with_value = grad_and_value(func, argnums, has_aux)

    def gradient(*args, **kwargs):
        result, value = with_value(*args, **kwargs)
        return (result, value[1]) if has_aux else result

    return gradient


def grad_and_value(func, argnums=0, has_aux: bool = False):
    """A function that returns (gradient, value) of `func` (a scalar) at its arguments."""

    def gradient_and_value(*args, **kwargs):
        args, inputs, plain = _leaves(args, argnums, "grad_and_value")
        with enable_grad():
            output = func(*args, **kwargs)
            value, aux = (output if has_aux else (output, None))
            _check_scalar(value, "grad_and_value(f)(*args)")
            flat = [leaf for tree in inputs for leaf in _tree_leaves(tree)]
            grads = autograd_grad(value, flat, create_graph=True, allow_unused=True,
                                  materialize_grads=True)
        grads = iter([_plain(g, plain) for g in grads])
        trees = tuple(_tree_like(tree, grads) for tree in inputs)  # (a dict of parameters too)
        result = trees if isinstance(argnums, tuple) else trees[0]
        value = _plain(value, plain)
        return (result, (value, aux)) if has_aux else (result, value)

    return gradient_and_value


def vjp(func, *primals, has_aux: bool = False):
    """(func(*primals), vjp_fn), where vjp_fn(cotangents) gives v^T J for each primal."""
    args, inputs, plain = _leaves(primals, tuple(range(len(primals))), "vjp")
    with enable_grad():
        output = func(*args)
    output, aux = output if has_aux else (output, None)
    outputs = output if isinstance(output, tuple) else (output,)

    def vjp_fn(*cotangents):
        if len(cotangents) == 1 and isinstance(cotangents[0], tuple):
            cotangents = cotangents[0]
        if len(cotangents) != len(outputs):
            raise RuntimeError(f"vjp: expected {len(outputs)} cotangents, got {len(cotangents)}")
        with enable_grad():
            grads = autograd_grad(outputs, inputs, cotangents, retain_graph=True,
                                  create_graph=True, allow_unused=True, materialize_grads=True)
        return tuple(_plain(g, plain) for g in grads)

    shown = tuple(_plain(o, plain) for o in outputs)
    shown = shown if isinstance(output, tuple) else shown[0]
    return (shown, vjp_fn, aux) if has_aux else (shown, vjp_fn)


def jvp(func, primals, tangents, *, has_aux: bool = False):
    """(func(*primals), J v) for tangents v, by forward mode: one pass, no backward."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise RuntimeError(f"jvp: expected as many tangents as primals ({len(primals)}), got "
                           f"{len(tangents)}")
    flat_tangents = list(_tree_leaves(tangents))  # (primals may be dicts of parameters)
    if len(flat_tangents) != len(list(_tree_leaves(primals))):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have "
                           "the same python structure")
    if grad_mode.dual_level:  # an outer jvp is open: minigrad has one level; use two vjps
        return _jvp_by_two_vjps(func, primals, flat_tangents, has_aux)
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(p, t) for p, t in
                 zip(_tree_leaves(primals), flat_tangents, strict=True)]
        output = func(*_tree_like(primals, iter(duals)))
        output, aux = output if has_aux else (output, None)
        outputs = output if isinstance(output, tuple) else (output,)
        unpacked = [forward_ad.unpack_dual(o) for o in outputs]
    plain = not any(isinstance(p, Tensor) and p.requires_grad for p in _tree_leaves(primals))
    values = tuple(_plain(u.primal, plain) for u in unpacked)
    jvps = tuple(_plain(u.tangent if u.tangent is not None else u.primal * 0, plain)
                 for u in unpacked)
    if not isinstance(output, tuple):
        values, jvps = values[0], jvps[0]
    return (values, jvps, aux) if has_aux else (values, jvps)


def _jvp_by_two_vjps(func, primals, tangents, has_aux):
    """J v as the derivative of the linear map u -> u^T J along v (nested forward mode):
    u^T J by one backward with a graph, then its gradient with respect to u, seeded with v."""
    args, inputs, plain = _leaves(primals, tuple(range(len(primals))), "jvp")
    with enable_grad():
        found = func(*args)
        output, aux = found if has_aux else (found, None)
        outputs = output if isinstance(output, tuple) else (output,)
        dummies = [(o.detach() * 0).requires_grad_() for o in outputs]  # u
        flat = [leaf for tree in inputs for leaf in _tree_leaves(tree)]
        pulled = autograd_grad(outputs, flat, dummies, create_graph=True, allow_unused=True)
        used = [(p, v) for p, v in zip(pulled, tangents, strict=True)
                if p is not None and p.requires_grad]
        if used:
            jvps = autograd_grad([p for p, _ in used], dummies, [v for _, v in used],
                                 create_graph=True, allow_unused=True, materialize_grads=True)
        else:  # the outputs do not depend on the primals
            jvps = [o.detach() * 0 for o in outputs]
    values = tuple(_plain(o, plain) for o in outputs)
    jvps = tuple(_plain(j, plain) for j in jvps)
    if not isinstance(output, tuple):
        values, jvps = values[0], jvps[0]
    return (values, jvps, aux) if has_aux else (values, jvps)


def jacrev(func, argnums=0, *, has_aux: bool = False):
    """The Jacobian by reverse mode: vmap of the vjp over the rows of the identity (each row
    of J is one v^T J, all of them in one batched backward)."""

    def jacobian(*args):
        columns = _argnums(argnums, len(args))
        chosen = [args[i] for i in columns]

        def of_chosen(*values):  # func of the argnums arguments only: the others stay constants
            full = list(args)
            for i, value in zip(columns, values, strict=True):
                full[i] = value
            return func(*full)

        output, vjp_fn, *aux = vjp(of_chosen, *chosen, has_aux=has_aux)
        if batching.is_batched(output):  # inside an outer vmap: each row runs func again
            def row(v):
                return vjp(of_chosen, *chosen, has_aux=has_aux)[1](v)
        else:
            row = vjp_fn
        rows = vmap(row)(_basis(output))
        result = [rows[k].reshape(tuple(output.shape) + tuple(x.shape))
                  for k, x in enumerate(chosen)]
        result = tuple(result) if isinstance(argnums, tuple) else result[0]
        return (result, aux[0]) if has_aux else result

    return jacobian


def jacfwd(func, argnums=0, *, has_aux: bool = False, randomness: str = "error"):
    """The Jacobian by forward mode: vmap of the jvp over the columns of the identity (each
    column of J is one J v, all of them in one batched forward pass)."""

    def jacobian(*args):
        found = func(*args)
        output, aux = found if has_aux else (found, None)
        result = []
        for i in _argnums(argnums, len(args)):
            def column(v, i=i):
                def along(x):
                    return func(*args[:i], x, *args[i + 1:])
                found = jvp(along, (args[i],), (v,), has_aux=has_aux)
                return found[1]
            columns = vmap(column, randomness=randomness)(_basis(args[i]))
            moved = columns.permute(*range(1, columns.ndim), 0)  # the column index last
            result.append(moved.reshape(tuple(output.shape) + tuple(args[i].shape)))
        result = tuple(result) if isinstance(argnums, tuple) else result[0]
        return (result, aux) if has_aux else result

    return jacobian


def hessian(func, argnums=0):
    """The Hessian of a scalar function: jacfwd(jacrev(func)), forward over reverse."""
    return jacfwd(jacrev(func, argnums), argnums)


def functional_call(module: Module, parameter_and_buffer_dicts, args=(), kwargs=None, *,
                    tie_weights: bool = True, strict: bool = False):
    """module(*args, **kwargs) with its parameters and buffers replaced by the given tensors
    (by name, as in named_parameters()), then put back."""
    dicts = parameter_and_buffer_dicts
    merged = {}
    for d in (dicts if isinstance(dicts, (tuple, list)) else (dicts,)):
        for name in d:
            if name in merged:
                raise ValueError(f"functional_call: {name} appeared in multiple dictionaries")
        merged.update(d)
    known = dict(module.named_parameters())
    known.update(dict(module.named_buffers()))
    if strict:
        missing = sorted(set(known) - set(merged))
        unexpected = sorted(set(merged) - set(known))
        if missing or unexpected:
            raise RuntimeError(f"functional_call: missing {missing}, unexpected {unexpected}")
    args = args if isinstance(args, tuple) else (args,)
    with _swapped(module, merged):
        return module(*args, **(kwargs or {}))


@contextlib.contextmanager
def _swapped(module, tensors: dict):
    """Put `tensors` in the module's places (by dotted name) for the duration of a call."""
    saved = []
    try:
        for name, tensor in tensors.items():
            owner, attribute = _owner(module, name)
            saved.append((owner, attribute, owner.__dict__[attribute]))
            _set(owner, attribute, tensor)
        yield
    finally:
        for owner, attribute, tensor in reversed(saved):
            _set(owner, attribute, tensor)


def _owner(module, name: str):
    *path, attribute = name.split(".")
    for part in path:
        module = getattr(module, part)
    if attribute not in module.__dict__:
        raise AttributeError(f"functional_call: the module has no parameter or buffer {name!r}")
    return module, attribute


def _set(owner, attribute: str, tensor) -> None:
    """Replace a parameter or buffer in place in the module's tables (no type checks: a plain
    tensor stands in for a Parameter during the call, as in PyTorch)."""
    for table in (owner._parameters, owner._buffers):
        if attribute in table:
            table[attribute] = tensor
    object.__setattr__(owner, attribute, tensor)


# ---- helpers ---------------------------------------------------------------------------------


def _argnums(argnums, count: int) -> tuple:
    numbers = argnums if isinstance(argnums, tuple) else (argnums,)
    for number in numbers:
        if not isinstance(number, int) or not -count <= number < count:
            raise RuntimeError(f"Got argnums={argnums!r}, but only {count} positional inputs")
    return tuple(n % count for n in numbers)


def _leaves(args, argnums, who: str):
    """The arguments, those at argnums made leaves that require grad where they did not."""
    numbers = _argnums(argnums, len(args))
    args = list(args)
    plain = True
    for number in numbers:
        leaves = list(_tree_leaves(args[number]))
        if not leaves or not all(isinstance(x, Tensor) for x in leaves):
            raise TypeError(f"{who}: argument {number} must be a Tensor (or a dict, list or "
                            f"tuple of them), got {type(args[number]).__name__}")
        made = []
        for x in leaves:
            if grad_mode.vmap_level:  # each slice its own input, so its own gradient
                x = batching.lift(x, batching.merged(batching.active(), batching.structure(x)))
            if x.requires_grad:
                plain = False  # an outer transform's input: keep the graph to it
                made.append(x)
                continue
            leaf = x.detach().requires_grad_()
            tangent = forward.tangent_of(x)  # inside jvp/jacfwd: forward over reverse
            if tangent is not None:
                forward.set_tangent(leaf, tangent)
            made.append(leaf)
        args[number] = _tree_like(args[number], iter(made))
    return tuple(args), [args[n] for n in numbers], plain


def _tree_leaves(tree):
    """The tensors of a Tensor, or of a dict, list or tuple of them (a pytree), in order."""
    if isinstance(tree, dict):
        for key in tree:
            yield from _tree_leaves(tree[key])
    elif isinstance(tree, (list, tuple)):
        for item in tree:
            yield from _tree_leaves(item)
    else:
        yield tree


def _tree_like(tree, values):
    """The same structure as `tree`, its leaves taken in order from the iterator `values`."""
    if isinstance(tree, dict):
        return {key: _tree_like(tree[key], values) for key in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_tree_like(item, values) for item in tree)
    return next(values)


def _plain(tensor, plain: bool):
    """A result cut from the graph when nothing outside needs it (its tangent kept)."""
    if not (plain and isinstance(tensor, Tensor)):
        return tensor
    result = tensor.detach()
    tangent = forward.tangent_of(tensor)
    if tangent is not None:
        forward.set_tangent(result, tangent)
    return result


def _check_scalar(value, who: str) -> None:
    if not isinstance(value, Tensor) or value.numel() != 1:
        dims = value.ndim if isinstance(value, Tensor) else type(value).__name__
        raise RuntimeError(f"{who}: Expected f(*args) to return a scalar Tensor, got tensor "
                           f"with {dims} dims. Maybe you wanted to use the vjp or jacrev APIs "
                           "instead?")


def _basis(tensor):
    """The identity as len-n rows shaped like `tensor` (n = its number of elements)."""
    count = tensor.numel()
    return eye(count, dtype=tensor.dtype, device=tensor.device).reshape(
        (count,) + tuple(tensor.shape))


__all__ = ["functional_call", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "jvp",
           "vjp"]
