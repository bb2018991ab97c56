"""mg.func.vmap: f written for one example, run on a batch of them in one go.

    vmap(f)(xs)[i] == f(xs[i])        for every i, computed by ops on the whole batch

The arguments' batch dims (in_dims) move to the front and each batched argument is wrapped in
a BatchedTensor (func/batching.py); f runs once, every op it calls meets the batch through its
batching rule, and the results' batch dims move to out_dims.
"""

from __future__ import annotations

import functools

from ..tensor import Tensor
from ..tensor_functions import cat
from .batching import BatchedTensor, at, enter_level, exit_level


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """func applied to each slice of its batched arguments (along in_dims), results stacked
    along out_dims; the ops run on the whole batch at once through their batching rules."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError("Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    name = getattr(func, "__name__", repr(func))

    @functools.wraps(func)
    def vmapped(*args, **kwargs):
        if not args:
            raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add "
                             "inputs, or you are trying to vmap over a function with no inputs. "
                             "The latter is unsupported.")
        leaves = list(_leaves(args))
        dims = _flat_in_dims(in_dims, args, name)
        size = _batch_size(leaves, dims, in_dims, name)
        if chunk_size is None or chunk_size >= size:
            return _run(func, args, leaves, dims, size, out_dims, randomness, name, kwargs)
        chunks = []
        for start in range(0, size, chunk_size):
            stop = min(start + chunk_size, size)
            part = [x if d is None else x[(slice(None),) * (d % x.ndim) + (slice(start, stop),)]
                    for x, d in zip(leaves, dims, strict=True)]
            chunks.append(_run(func, _like(args, iter(part)), part, dims, stop - start, out_dims,
                               randomness, name, kwargs))
        return _joined(chunks, out_dims)

    return vmapped


def _run(func, args, leaves, dims, size, out_dims, randomness, name, kwargs):
    level = enter_level(randomness, size)
    try:
        batched = [x if d is None else BatchedTensor(_to_front(x, d), level)
                   for x, d in zip(leaves, dims, strict=True)]
        result = func(*_like(args, iter(batched)), **kwargs)
        outputs = list(_leaves(result))
        out = _flat_out_dims(out_dims, result, len(outputs), name)
        return _like(result, iter([_unbatched(o, d, level, size, name)
                                   for o, d in zip(outputs, out, strict=True)]))
    finally:
        exit_level(level)


def _to_front(x: Tensor, dim: int) -> Tensor:
    dim %= x.ndim
    if dim == 0:
        return x
    return x.permute(dim, *[d for d in range(x.ndim) if d != dim])


def _unbatched(output, out_dim, level: int, size: int, name: str):
    """A result of f: the batch dim at out_dim (a result that does not depend on the batch is
    copied along it, as in PyTorch)."""
    if out_dim is None:
        if at(output, level):
            raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when "
                             "out_dim is None")
        return output
    if not isinstance(output, Tensor):
        raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                         f"{type(output)}. Did you mean to set out_dims= to None for output?")
    value = output.value if at(output, level) else \
        output.unsqueeze(0).expand((size,) + tuple(output.shape))
    dim = out_dim % value.ndim
    if dim == 0:
        return value
    order = list(range(1, value.ndim))
    order.insert(dim, 0)
    return value.permute(*order)


def _batch_size(leaves, dims, in_dims, name) -> int:
    sizes = []
    for x, d in zip(leaves, dims, strict=True):
        if d is None:
            continue
        if not isinstance(d, int) or isinstance(d, bool):
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for "
                             "an input but in_dim must be either an integer dimension or None.")
        if not isinstance(x, Tensor):
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for "
                             f"an input but the input is of type {type(x)}. We cannot vmap over "
                             "non-Tensor arguments, please use None as the respective in_dim")
        if not -x.ndim <= d < x.ndim:
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for "
                             f"some input, but that input is a Tensor of dimensionality {x.ndim} "
                             f"so expected in_dim to satisfy -{x.ndim} <= in_dim < {x.ndim}.")
        sizes.append(x.shape[d])
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if len(set(sizes)) != 1:
        raise ValueError("vmap: Expected all tensors to have the same size in the mapped "
                         f"dimension, got sizes {sizes} for the mapped dimension")
    return sizes[0]


def _flat_in_dims(in_dims, args, name) -> list:
    """One in_dim per tensor leaf of args: an int or None stands for every leaf under it."""
    if isinstance(in_dims, (int, type(None))) and not isinstance(in_dims, bool):
        return [in_dims] * len(list(_leaves(args)))
    if not isinstance(in_dims, tuple):
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` to "
                         "be int or a (potentially nested) tuple matching the structure of "
                         f"inputs, got: {type(in_dims)}.")
    try:
        return _matched(in_dims, args)
    except _Mismatch:
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not "
                         "compatible with the structure of `inputs`.") from None


def _flat_out_dims(out_dims, result, count: int, name) -> list:
    if isinstance(out_dims, (int, type(None))) and not isinstance(out_dims, bool):
        return [out_dims] * count
    try:
        return _matched(out_dims, result)
    except _Mismatch:
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not "
                         "compatible with the structure of `outputs`.") from None


class _Mismatch(Exception):
    pass


def _matched(dims, tree) -> list:
    """The dims spread over the leaves of tree: a dims entry is an int/None for a whole subtree,
    or a tuple, list or dict of the subtree's own shape."""
    if dims is None or isinstance(dims, int):
        return [dims] * len(list(_leaves(tree)))
    if isinstance(dims, dict) and isinstance(tree, dict) and dims.keys() == tree.keys():
        return [d for key in tree for d in _matched(dims[key], tree[key])]
    if isinstance(dims, (tuple, list)) and isinstance(tree, (tuple, list)) \
            and len(dims) == len(tree):
        return [d for sub_dims, sub in zip(dims, tree, strict=True)
                for d in _matched(sub_dims, sub)]
    raise _Mismatch


def _leaves(tree):
    """The leaves of a tuple, list or dict of them (a pytree), in order."""
    if isinstance(tree, dict):
        for key in tree:
            yield from _leaves(tree[key])
    elif isinstance(tree, (list, tuple)):
        for item in tree:
            yield from _leaves(item)
    else:
        yield tree


def _like(tree, values):
    """The same structure as tree, its leaves taken in order from the iterator values."""
    if isinstance(tree, dict):
        return {key: _like(tree[key], values) for key in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_like(item, values) for item in tree)
    return next(values)


def _joined(chunks: list, out_dims):
    """The chunks' results, each leaf concatenated along its out_dim."""
    flat = [list(_leaves(c)) for c in chunks]
    dims = _matched(out_dims, chunks[0]) if not isinstance(out_dims, (int, type(None))) else \
        [out_dims] * len(flat[0])
    joined = [parts[0] if d is None else cat(list(parts), dim=d)
              for d, parts in zip(dims, zip(*flat, strict=True), strict=True)]
    return _like(chunks[0], iter(joined))
