"""vmap's batched tensors and batching rules: one op on every slice at once.

Inside `mg.func.vmap(f)(xs)`, f gets a BatchedTensor. It looks like one slice (its shape, ndim
and dtype are a slice's) and holds every slice in `value`, the batch dimension first:

    xs.shape == (B, 3, 4)   inside f:  x.shape == (3, 4)   x.value.shape == (B, 3, 4)

When an op gets a batched input, Function.apply hands it to `dispatch` (through
grad_mode.batching, so the engine imports nothing from here). The op's *batching rule* runs it
once on the values: dims shift by one (sum over dim 1 of a slice is sum over dim 2 of the value),
shapes line up for broadcasting (a slice of 2 dims against one of 3 gets a 1 after the batch
dim), and the result is wrapped again. An op without a rule runs once per slice and the results
are stacked: the same numbers, more slowly (PyTorch's "fallback").

Nested vmaps nest the wrappers: each vmap is a *level*, and a tensor batched by two of them is
BatchedTensor(BatchedTensor(plain, level 1), level 2). A rule unwraps only the innermost level it
sees; the op it calls on the values meets the next level the same way.

Autograd and forward mode work on the plain tensors underneath (`plain`): the graph is recorded
on them, so the gradient of a batched computation is batched. That is what per-sample gradients
need, with one rule: a tensor differentiated inside vmap must carry the batch too, or its
gradient would sum over the slices. mg.func.grad, vjp and jvp batch their inputs for that
(`lift`); autograd.grad says so when it is asked to sum (`grad` below).
"""

from __future__ import annotations

import threading

from .. import backend
from ..engine.backward import grad as autograd_grad
from ..factories import arange, ones_like
from ..grad_mode import grad_mode
from ..ops import activation, elementwise, loss, matmul, movement, reduce, selection
from ..ops.reduce import normalize_dims
from ..tensor import Tensor
from ..tensor_functions import stack


class BatchedTensor(Tensor):
    """One slice as f sees it; `value` holds every slice, the batch dimension first."""

    __slots__ = ("value", "level")

    def __init__(self, value: Tensor, level: int):  # (Tensor's constructor makes arrays)
        self.value, self.level = value, level
        self._grad = self._view_of = self._hooks = None
        self._output_nr, self._inference = 0, False

    # ---- what a slice looks like -----------------------------------------------------------

    @property
    def shape(self) -> tuple:
        return tuple(self.value.shape[1:])

    @property
    def ndim(self) -> int:
        return self.value.ndim - 1

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def device(self):
        return self.value.device

    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count

    @property
    def array(self):
        """A slice has no values of its own that Python could read (item(), bool(), numpy(),
        printing): they differ from slice to slice."""
        raise RuntimeError(
            "vmap: f reads the values of a batched tensor (item(), tolist(), numpy(), bool(), "
            "printing, or a Python `if` on a tensor). Each slice has its own, so there is no one "
            "value to return; PyTorch refuses this too. Compute with tensor operations instead "
            "(torch.where for data-dependent choices)."
        )

    # ---- autograd: the plain tensor underneath is what the graph records -------------------

    @property
    def requires_grad(self) -> bool:
        return self.value.requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.value.requires_grad = flag

    @property
    def _requires_grad(self) -> bool:
        return self.value._requires_grad

    @property
    def grad_fn(self):
        return self.value.grad_fn

    @property
    def _grad_fn(self):
        return self.value._grad_fn

    @property
    def grad(self):
        grad = self.value.grad
        return None if grad is None else BatchedTensor(grad, self.level)

    @property
    def _version_counter(self):
        return self.value._version_counter

    def _bump_version(self) -> None:
        self.value._bump_version()

    def detach(self) -> Tensor:
        return BatchedTensor(self.value.detach(), self.level)

    def is_contiguous(self) -> bool:
        return self.value.is_contiguous()

    def contiguous(self) -> Tensor:
        return BatchedTensor(self.value.contiguous(), self.level)

    def retain_grad(self) -> None:
        self.value.retain_grad()

    def register_hook(self, hook):
        raise RuntimeError("vmap: register_hook on a batched tensor is not supported in "
                           "minigrad; register it outside vmap")

    def __repr__(self) -> str:
        return f"BatchedTensor(lvl={self.level}, bdim=0, value=\n{self.value!r})"


# ---- levels -------------------------------------------------------------------------------


class _Levels(threading.local):
    randomness: dict = {}  # level -> "error" | "different" | "same"
    sizes: dict = {}  # level -> its batch size


_levels = _Levels()


def enter_level(randomness: str, size: int) -> int:
    grad_mode.vmap_level += 1
    if grad_mode.batching is None:
        grad_mode.batching = _Hooks
    level = grad_mode.vmap_level
    _levels.randomness = {**_levels.randomness, level: randomness}
    _levels.sizes = {**_levels.sizes, level: size}
    return level


def exit_level(level: int) -> None:
    grad_mode.vmap_level = level - 1
    _levels.randomness = {k: v for k, v in _levels.randomness.items() if k < level}
    _levels.sizes = {k: v for k, v in _levels.sizes.items() if k < level}


def active() -> tuple:
    """The open vmap levels and their batch sizes, the innermost vmap (highest level) first."""
    return tuple(sorted(_levels.sizes.items(), reverse=True))


def at(tensor, level: int) -> bool:
    """Whether `tensor` is batched at this level (the outermost wrapper it has)."""
    return type(tensor) is BatchedTensor and tensor.level == level


def structure(tensor) -> tuple:
    """The (level, batch size) pairs of a tensor's wrappers, outermost wrapper (the innermost
    vmap, the highest level) first."""
    found = []
    while type(tensor) is BatchedTensor:
        found.append((tensor.level, tensor.value.shape[0]))
        tensor = tensor.value
    return tuple(found)


def plain(tensor):
    """The plain tensor under every wrapper: its first dims are the batch dims, the outermost
    vmap's first."""
    while type(tensor) is BatchedTensor:
        tensor = tensor.value
    return tensor


def rewrap(tensor, like):
    """A plain tensor shaped like plain(like), wrapped in like's levels."""
    if type(like) is not BatchedTensor:
        return tensor
    return BatchedTensor(rewrap(tensor, like.value), like.level)


def merged(*structures) -> tuple:
    """Every level that any of the structures has, highest first (sizes must agree)."""
    sizes: dict = {}
    for levels in structures:
        for level, size in levels:
            if sizes.setdefault(level, size) != size:
                raise ValueError(f"vmap: batch sizes {sizes[level]} and {size} at one level")
    return tuple(sorted(sizes.items(), reverse=True))


def lift(tensor, levels: tuple):
    """`tensor` batched at every level in `levels` (highest first): copies along the levels it
    lacks (an expand, no memory), so that its gradient or tangent can be batched there."""
    if not levels:
        if type(tensor) is BatchedTensor:
            raise RuntimeError(f"vmap: a tensor batched at level {tensor.level} cannot be "
                               "lifted to fewer levels")
        return tensor
    (level, size), rest = levels[0], levels[1:]
    if at(tensor, level):
        return BatchedTensor(lift(tensor.value, rest), level)
    if type(tensor) is BatchedTensor and tensor.level > level:
        raise RuntimeError(f"vmap: a tensor batched at level {tensor.level} met level {level}")
    copies = tensor.unsqueeze(0).expand((size,) + tuple(tensor.shape))
    return BatchedTensor(lift(copies, rest), level)


# ---- dispatch: Function.apply calls this when an argument is batched ----------------------


def dispatch(cls, args):
    """The op's result on batched arguments, or None when none is batched."""
    level = 0
    for arg in args:
        if type(arg) is BatchedTensor and arg.level > level:
            level = arg.level
    if not level:
        return None
    if cls in _IN_PLACE:
        raise RuntimeError(
            f"vmap: {cls.__name__} changes a batched tensor in place, which minigrad's vmap does "
            "not support (PyTorch does); write f without in-place operations"
        )
    return _RULES.get(cls, one_slice_at_a_time)(cls, args, level)


def one_slice_at_a_time(cls, args, level):
    """The fallback: the op on each slice, the results stacked (correct for any op)."""
    size = _size(args, level)
    results = [cls.apply(*[arg.value[i] if at(arg, level) else arg for arg in args])
               for i in range(size)]
    if isinstance(results[0], tuple):
        return tuple(None if part is None else BatchedTensor(stack([r[k] for r in results]), level)
                     for k, part in enumerate(results[0]))
    return BatchedTensor(stack(results), level)


def _size(args, level) -> int:
    return next(arg.value.shape[0] for arg in args if at(arg, level))


def _wrapped(result, level):
    if isinstance(result, tuple):
        return tuple(None if r is None else BatchedTensor(r, level) for r in result)
    return BatchedTensor(result, level)


def _lined_up(arg, level: int, ndim: int):
    """A batched argument's value with 1s after the batch dim up to `ndim` slice dims, so that
    broadcasting lines the slice dims up from the right, as it does for the slices."""
    if not at(arg, level):
        return arg
    value, missing = arg.value, ndim - arg.ndim
    if missing > 0:
        value = value.reshape((value.shape[0],) + (1,) * missing + tuple(arg.shape))
    return value


def _value_or_copies(arg, level: int, size: int):
    """A batched argument's value; an unbatched tensor copied along a new batch dim."""
    if at(arg, level):
        return arg.value
    return arg.unsqueeze(0).expand((size,) + tuple(arg.shape))


# ---- the rules --------------------------------------------------------------------------------


def _elementwise(cls, args, level):
    """z = f(x, y, ...) elementwise with broadcasting: the values, lined up."""
    ndim = max(arg.ndim for arg in args if isinstance(arg, Tensor))
    return _wrapped(cls.apply(*[_lined_up(arg, level, ndim) for arg in args]), level)


def _reduction(cls, args, level):
    """sum/mean/amax/var... over dims of a slice: over those dims + 1 of the value."""
    x, dim, *rest = args
    dims = normalize_dims(dim, x.ndim, cls.__name__.lower())
    if x.ndim == 0 or not dims or not at(x, level):
        return one_slice_at_a_time(cls, args, level)
    return _wrapped(cls.apply(x.value, tuple(d + 1 for d in dims), *rest), level)


def _along_dim(cls, args, level):
    """softmax/log_softmax along one dim of a slice."""
    x, dim = args
    if x.ndim == 0 or not at(x, level):
        return one_slice_at_a_time(cls, args, level)
    (axis,) = normalize_dims(dim, x.ndim, cls.__name__.lower())
    return _wrapped(cls.apply(x.value, axis + 1), level)


def _transpose(cls, args, level):
    x, dim0, dim1 = args
    if x.ndim == 0:
        return one_slice_at_a_time(cls, args, level)
    first, second = (normalize_dims(d, x.ndim, "transpose")[0] for d in (dim0, dim1))
    return _wrapped(cls.apply(x.value, first + 1, second + 1), level)


def _permute(cls, args, level):
    x, dims = args
    if len(dims) != x.ndim or x.ndim == 0:
        return one_slice_at_a_time(cls, args, level)  # (for the op's own error)
    moved = tuple(normalize_dims(d, x.ndim, "permute")[0] + 1 for d in dims)
    return _wrapped(cls.apply(x.value, (0,) + moved), level)


def _reshape(cls, args, level):
    x, shape, *view = args
    return _wrapped(cls.apply(x.value, (x.value.shape[0],) + tuple(shape), *view), level)


def _broadcast_to(cls, args, level):
    x, shape = args
    if len(shape) < x.ndim:
        return one_slice_at_a_time(cls, args, level)
    value = _lined_up(x, level, len(shape))
    return _wrapped(cls.apply(value, (value.shape[0],) + tuple(shape)), level)


def _sum_to(cls, args, level):
    """Sum a slice down to `shape` (unbroadcast): the missing leading dims become 1s first, so
    that the batch dim is never summed."""
    x, shape = args
    missing = x.ndim - len(shape)
    if missing < 0:
        return one_slice_at_a_time(cls, args, level)
    size = x.value.shape[0]
    summed = cls.apply(x.value, (size,) + (1,) * missing + tuple(shape))
    if missing:
        summed = summed.reshape((size,) + tuple(shape))
    return BatchedTensor(summed, level)


def _getitem(cls, args, level):
    """x[index] for ints, slices, None and ...: the same index after the batch dim."""
    x, index = args
    parts = index if isinstance(index, tuple) else (index,)
    basic = all(p is None or p is Ellipsis or isinstance(p, (int, slice))
                and not isinstance(p, bool) for p in parts)
    if not basic or not at(x, level):
        return one_slice_at_a_time(cls, args, level)
    return BatchedTensor(cls.apply(x.value, (slice(None),) + parts), level)


def _cat(cls, args, level):
    dim, *tensors = args
    size = _size(tensors, level)
    if any(t.ndim == 0 for t in tensors):
        return one_slice_at_a_time(cls, args, level)
    (axis,) = normalize_dims(dim, tensors[0].ndim, "cat")
    values = [_value_or_copies(t, level, size) for t in tensors]
    return BatchedTensor(cls.apply(axis + 1, *values), level)


def _matmul(cls, args, level):
    """x @ y: a 1-D slice becomes a matrix first (as matmul treats it), the slices' batch dims
    are lined up, and the added dim is dropped from the result."""
    x, y = args
    if not (isinstance(x, Tensor) and isinstance(y, Tensor)) or x.ndim == 0 or y.ndim == 0:
        return one_slice_at_a_time(cls, args, level)
    if at(x, level) and not at(y, level) and y.ndim == 2:  # the batch folds into x's rows:
        value = x.value  # one matrix product, as for a batch that was never split
        rows = cls.apply(value.reshape(-1, x.shape[-1]), y)
        return BatchedTensor(rows.reshape(tuple(value.shape[:-1]) + (y.shape[1],)), level)
    x_vector, y_vector = x.ndim == 1, y.ndim == 1
    if x_vector:
        x = x.unsqueeze(0)
    if y_vector:
        y = y.unsqueeze(1)
    ndim = max(x.ndim, y.ndim)
    z = cls.apply(_lined_up(x, level, ndim), _lined_up(y, level, ndim))
    if x_vector:
        z = z.squeeze(-2)
    if y_vector:
        z = z.squeeze(-1)
    return BatchedTensor(z, level)


def _linear(cls, args, level):
    """Y = X @ W^T + b (then max(Y, 0) for LinearReLU): with one weight for every slice, the
    op on the batch folded into rows; with per-slice weights (mg.func.grad inside vmap makes
    them), written with the ops that have rules."""
    x, weight, bias = args
    if at(x, level) and not at(weight, level) and not at(bias, level) and x.ndim:
        value = x.value  # the batch folds into the rows: the op itself, one matrix product
        rows = cls.apply(value.reshape(-1, x.shape[-1]), weight, bias)
        return BatchedTensor(rows.reshape(tuple(value.shape[:-1]) + (weight.shape[0],)), level)
    y = x @ weight.transpose(0, 1)
    y = y if bias is None else y + bias
    return activation.ReLU.apply(y) if cls is matmul.LinearReLU else y


def _linear_backward(cls, args, level):
    """(dX, dW, db) = (G @ W, G^T @ X, sum_n G) with the ops that have rules."""
    grad, x, weight, (needs_x, needs_w, needs_b) = args
    rows = grad.reshape(-1, grad.shape[-1])
    return (grad @ weight if needs_x else None,
            rows.transpose(0, 1) @ x.reshape(-1, x.shape[-1]) if needs_w else None,
            rows.sum(0) if needs_b else None)


def _cross_entropy(cls, args, level):
    """Cross-entropy of a slice's (N, C) logits, written with ops that have rules:
    -sum_c onehot(t)_c log softmax(x)_c, averaged (or summed) over N; and softmax(x), the op's
    second output."""
    logits, target, reduction = args
    if logits.ndim != 2 or target.ndim != 1 or not _labels_fit(target, logits.shape[1]):
        return one_slice_at_a_time(cls, args, level)  # (the op names a bad label)
    log_probs = activation.LogSoftmax.apply(logits, 1)
    classes = arange(logits.shape[1], device=logits.device)
    onehot = (target.unsqueeze(1) == classes).to(log_probs.dtype)
    per_row = -(log_probs * onehot).sum(1)
    return (per_row.mean() if reduction == "mean" else per_row.sum()), log_probs.exp()


def _labels_fit(target, classes: int, ignore_index=None) -> bool:
    """Whether every slice's labels are class numbers (or ignore_index): read on all slices at
    once, as the op would check each slice's."""
    labels = plain(target).array
    fits = (labels >= 0) & (labels < classes)
    if ignore_index is not None:
        fits |= labels == ignore_index
    return bool(fits.all())


def _nll_loss(cls, args, level):
    """-x[n, t_n] w[t_n] (0 where t_n is ignored), reduced over the kept rows' weights, with
    ops that have rules: the label picked by a one-hot mask."""
    x, target, weight, reduction, ignore_index = args
    classes = x.shape[-1] if x.ndim else 0
    if x.ndim == 0 or target.ndim != x.ndim - 1 or at(weight, level) or not _labels_fit(
            target, classes, ignore_index):
        return one_slice_at_a_time(cls, args, level)
    onehot = (target.unsqueeze(-1) == arange(classes, device=x.device)).to(x.dtype) * (
        target != ignore_index).unsqueeze(-1).to(x.dtype)
    kept = onehot.sum(-1) if weight is None else (onehot * weight).sum(-1)  # w[t_n], 0 ignored
    losses = -(x * onehot).sum(-1) * (1 if weight is None else kept)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / kept.sum()


def _mse_loss(cls, args, level):
    """(x - y)**2 reduced, with ops that have rules."""
    x, y, reduction = args
    squares = (x - y) * (x - y)
    return squares.mean() if reduction == "mean" else squares.sum() if reduction == "sum" \
        else squares


def _extreme_of_all(cls, args, level):
    """max() / min() of a slice: amax / amin over all its dims (ties share the gradient, as
    max() and min() do)."""
    (x,) = args
    if x.ndim == 0:
        return one_slice_at_a_time(cls, args, level)
    extreme = selection.AMax if cls is selection.Max else selection.AMin
    return BatchedTensor(extreme.apply(x.value, tuple(range(1, x.ndim + 1))), level)


def _no_gradient(cls, args, level):
    """Comparisons and tests (==, <, isnan, ...): elementwise ones on the whole batch."""
    fn, *tensors = args
    if not (getattr(fn, "elementwise", False) or isinstance(fn, backend.numpy.ufunc)):
        return one_slice_at_a_time(cls, args, level)
    ndim = max(t.ndim for t in tensors if isinstance(t, Tensor))
    return BatchedTensor(cls.apply(fn, *[_lined_up(t, level, ndim) for t in tensors]), level)


def random(draw):
    """A random factory (mg.rand, randn, randint) called inside vmap: draw(batch) makes a plain
    tensor with the `batch` dims in front; each level's randomness= says whether it has one."""
    different = []
    for level in sorted(_levels.sizes):
        mode = _levels.randomness[level]
        if mode == "error":
            raise RuntimeError(_RANDOM_ERROR)
        if mode == "different":
            different.append(level)
    value = draw(tuple(_levels.sizes[level] for level in different))
    for level in different:
        value = BatchedTensor(value, level)
    return value


_RANDOM_ERROR = ("vmap: called random operation while in randomness error mode. Please either "
                 "use the 'same' or 'different' randomness flags on vmap or perform the "
                 "randomness operation out of vmap")


def _dropout(cls, args, level):
    x, p = args
    mode = _levels.randomness.get(level, "error")
    if mode == "error":
        raise RuntimeError(_RANDOM_ERROR)
    if mode == "different":
        return BatchedTensor(cls.apply(x.value, p), level)
    ones = x.value[0].detach() * 0 + 1  # "same": one mask, shared by every slice
    return x * cls.apply(ones, p)


_IN_PLACE = {movement.Fill, movement.Copy, movement.SetItem, movement.CopySlices,
             movement.AsStrided}

_RULES = {
    **dict.fromkeys([elementwise.Add, elementwise.Sub, elementwise.Mul, elementwise.Div,
                     elementwise.Pow, elementwise.Reciprocal, elementwise.Neg, elementwise.Exp,
                     elementwise.Log, elementwise.Sqrt, elementwise.Sin, elementwise.Cos,
                     elementwise.Abs, elementwise.Sign, activation.ReLU, activation.ReLUBackward,
                     activation.Softplus, activation.Sigmoid, activation.Tanh, selection.Where,
                     selection.Maximum, selection.Minimum, selection.Clamp,
                     selection.ClampByTensors, movement.Cast, movement.Clone, movement.ToDevice],
                    _elementwise),
    **dict.fromkeys([reduce.Sum, reduce.Mean, reduce.Var, reduce.Std, reduce.Norm,
                     selection.AMax, selection.AMin], _reduction),
    selection.Max: _extreme_of_all,
    selection.Min: _extreme_of_all,
    loss.NLLLoss: _nll_loss,
    loss.MSELoss: _mse_loss,
    activation.Softmax: _along_dim,
    activation.LogSoftmax: _along_dim,
    movement.Transpose: _transpose,
    movement.Permute: _permute,
    movement.Reshape: _reshape,
    movement.GetItem: _getitem,
    movement.Cat: _cat,
    reduce.BroadcastTo: _broadcast_to,
    reduce.SumTo: _sum_to,
    matmul.MatMul: _matmul,
    matmul.Linear: _linear,
    matmul.LinearReLU: _linear,
    matmul.LinearBackward: _linear_backward,
    loss.CrossEntropy: _cross_entropy,
    selection.NoGradient: _no_gradient,
    activation.Dropout: _dropout,
}


# ---- autograd and forward mode at the boundary ------------------------------------------------


def grad(outputs, inputs, grad_outputs, **options):
    """autograd.grad on batched tensors: on the plain tensors underneath, so each slice gets
    its own gradient. None where nothing is batched at the outputs (the engine then runs with
    whatever batched gradients it is given: vmap over a vjp)."""
    levels = [structure(o) for o in outputs]
    if not any(levels):
        return None
    if any(s != levels[0] for s in levels):
        raise RuntimeError("vmap: autograd.grad of outputs batched at different levels is not "
                           "supported in minigrad")
    for number, x in enumerate(inputs):
        if structure(x) != levels[0]:
            raise RuntimeError(
                f"vmap: autograd.grad with respect to input {number}, which is not batched as "
                "the outputs are: its gradient would add up every slice's. Differentiate "
                "inside vmap with mg.func.grad (or vjp), which batches its inputs"
            )
    grad_outputs = grad_outputs or (None,) * len(outputs)
    seeds = []
    for out, g in zip(outputs, grad_outputs, strict=True):
        if g is None:
            if out.numel() != 1:
                raise RuntimeError("grad: grad can be implicitly created only for scalar outputs "
                                   f"(a tensor with one element), but this one has shape "
                                   f"{out.shape}; pass gradient=")
            g = ones_like(plain(out))  # one seed per slice
        else:
            g = plain(lift(g, levels[0]))
        seeds.append(g)
    found = autograd_grad([plain(o) for o in outputs], [plain(x) for x in inputs], seeds,
                          **options)
    return tuple(None if g is None else rewrap(g, x) for g, x in zip(found, inputs, strict=True))


def make_dual(tensor, tangent, make):
    """forward_ad.make_dual on batched tensors: primal and tangent batched alike, the dual made
    on the plain tensors."""
    levels = merged(structure(tensor), structure(tangent))
    primal = lift(tensor, levels)
    return rewrap(make(plain(primal), plain(lift(tangent, levels))), primal)


def unpack_dual(tensor, unpack):
    primal, tangent = unpack(plain(tensor))
    return rewrap(primal, tensor), None if tangent is None else rewrap(tangent, tensor)


def tangent_of(tensor, find):
    tangent = find(plain(tensor))
    return None if tangent is None else rewrap(tangent, tensor)


def set_tangent(tensor, tangent, put) -> None:
    put(plain(tensor), plain(lift(tangent, structure(tensor))))


def is_batched(tensor) -> bool:
    return type(tensor) is BatchedTensor


class _Hooks:
    """What the lower layers call through grad_mode.batching (they cannot import this one)."""

    dispatch = staticmethod(dispatch)
    grad = staticmethod(grad)
    make_dual = staticmethod(make_dual)
    unpack_dual = staticmethod(unpack_dual)
    tangent_of = staticmethod(tangent_of)
    set_tangent = staticmethod(set_tangent)
    is_batched = staticmethod(is_batched)
    plain = staticmethod(plain)
    random = staticmethod(random)
