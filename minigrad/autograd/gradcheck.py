"""gradcheck and gradgradcheck: compare backward with central finite differences in float64."""

from __future__ import annotations

from .. import backend
from ..engine.backward import grad
from ..grad_mode import enable_grad, no_grad
from ..tensor import Tensor
from . import forward_ad


def _outputs(value) -> tuple:
    return (value,) if isinstance(value, Tensor) else tuple(v for v in value if v is not None)


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, *,
              raise_exception: bool = True, check_forward_ad: bool = False,
              check_batched_grad: bool = False, **options) -> bool:
    """Return True when every analytic gradient matches (f(x+eps) - f(x-eps)) / 2eps.

    `inputs` is a Tensor or a sequence of Tensors; those with requires_grad are checked and must
    be float64. `fn` returns a Tensor or a tuple of them. The check uses the scalar
    sum_k sum(out_k * w_k) for fixed random weights w_k, so one backward gives every gradient.
    Raises RuntimeError naming the worst element otherwise, or, with raise_exception=False as
    in PyTorch, returns False. PyTorch's other switches are accepted where they change nothing
    here (nondet_tol, check_undefined_grad, fast_mode, ...); checks minigrad cannot make yet
    (batched gradients: use mg.func.vmap) raise.
    """
    _check_options("gradcheck", check_batched_grad, options)
    try:
        return _gradcheck(fn, inputs, eps, atol, rtol, check_forward_ad,
                          options.get("check_backward_ad", True))
    except RuntimeError:
        if raise_exception:
            raise
        return False


def _check_options(who: str, check_batched_grad: bool, options: dict) -> None:
    if check_batched_grad:
        raise NotImplementedError(
            f"{who}: check_batched_grad is not built into minigrad's gradcheck; compare "
            "mg.func.vmap(vjp_fn)(cotangents) with a loop over them instead (tests/test_vmap.py)"
        )
    unknown = set(options) - _ACCEPTED
    if unknown:
        raise TypeError(f"{who}() got an unexpected keyword argument {sorted(unknown)[0]!r}")


# PyTorch's switches that change nothing for minigrad's deterministic, elementwise check.
_ACCEPTED = {"nondet_tol", "check_undefined_grad", "check_grad_dtypes", "check_backward_ad",
             "fast_mode", "masked", "check_batched_forward_grad", "gen_non_contig_grad_outputs"}


def _gradcheck(fn, inputs, eps: float, atol: float, rtol: float, forward_ad: bool = False,
               backward_ad: bool = True) -> bool:
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if forward_ad:
        _check_forward_mode(fn, inputs, eps, atol, rtol)
    if not backward_ad:
        return True
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for t in checked:
        if t.dtype != backend.float64:
            raise TypeError(
                f"gradcheck: inputs must be float64 for finite differences, got {t.dtype}"
            )
    with enable_grad():
        outputs = _outputs(fn(*inputs))
    rng = backend.numpy.random.default_rng(0)
    weights = [
        backend.to_device(rng.standard_normal(out.shape).astype(out.dtype), out.device)
        for out in outputs
    ]

    def objective() -> float:
        with no_grad():
            return float(sum((out.array * w).sum() for out, w in
                             zip(_outputs(fn(*inputs)), weights, strict=True)))

    with enable_grad():
        total = sum((out * Tensor._wrap_no_copy_no_checks(w, out.device)).sum()
                    for out, w in zip(outputs, weights, strict=True) if out.requires_grad)
    if isinstance(total, Tensor) and total.requires_grad:
        analytic_grads = grad(total, checked, allow_unused=True)
    else:
        analytic_grads = (None,) * len(checked)

    for number, (t, analytic_grad) in enumerate(zip(checked, analytic_grads, strict=True)):
        source = analytic_grad.array if analytic_grad is not None else t.array * 0
        analytic = backend.to_host(source).ravel()
        numeric = backend.numpy.empty_like(analytic)
        for i in range(numeric.size):
            # Perturb the input in place, by index: t.array may be a non-contiguous view.
            index = _unravel(i, t.shape)
            original = float(t.array[index])
            t.array[index] = original + eps
            plus = objective()
            t.array[index] = original - eps
            minus = objective()
            t.array[index] = original
            numeric[i] = (plus - minus) / (2 * eps)
        error = abs(analytic - numeric) - (atol + rtol * abs(numeric))
        worst = int(error.argmax()) if error.size else 0  # argmax picks a NaN first
        if error.size and not error[worst] <= 0:  # NaN fails too
            index = _unravel(worst, t.shape)
            raise RuntimeError(
                f"gradcheck: gradient of input {number} (shape {tuple(t.shape)}) is wrong at "
                f"index {index}: backward gave {analytic[worst]:.6g}, "
                f"finite differences give {numeric[worst]:.6g}"
            )
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, *, raise_exception: bool = True,
                  check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True,
                  check_batched_grad: bool = False, **options) -> bool:
    """gradcheck of the gradient itself: second derivatives against finite differences.

    The function checked is (inputs, v) -> autograd.grad(fn(inputs), inputs, v,
    create_graph=True): its derivative is what a second backward through the recorded
    backward pass computes. raise_exception=False returns False instead of raising.
    """
    _check_options("gradgradcheck", check_batched_grad, options)
    try:
        return _gradgradcheck(fn, inputs, grad_outputs, eps, atol, rtol, check_fwd_over_rev,
                              check_rev_over_rev)
    except RuntimeError:
        if raise_exception:
            raise
        return False


def _gradgradcheck(fn, inputs, grad_outputs, eps: float, atol: float, rtol: float,
                   fwd_over_rev: bool = False, rev_over_rev: bool = True) -> bool:
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    with enable_grad():
        outputs = _outputs(fn(*inputs))
    if grad_outputs is None:
        rng = backend.numpy.random.default_rng(1)
        grad_outputs = [
            Tensor(rng.standard_normal(out.shape), dtype=out.dtype, device=out.device,
                   requires_grad=True)
            for out in outputs
        ]
    grad_outputs = list(_outputs(grad_outputs))
    count = len(inputs)

    def first_derivative(*args):
        xs, vs = args[:count], args[count:]
        with enable_grad():
            outs = [o for o in _outputs(fn(*xs)) if o.requires_grad]
            pairs = [(o, v) for o, v in zip(outs, vs, strict=False)]
            return grad([o for o, _ in pairs], [x for x in xs if isinstance(x, Tensor)
                                               and x.requires_grad],
                        [v for _, v in pairs], create_graph=True, allow_unused=True)

    if not checked:
        raise ValueError("gradgradcheck: no input requires grad, so there is nothing to check")
    return _gradcheck(first_derivative, (*inputs, *grad_outputs), eps, atol, rtol,
                      fwd_over_rev, rev_over_rev)


def _check_forward_mode(fn, inputs, eps: float, atol: float, rtol: float) -> None:
    """Forward mode's J v (tangents carried through fn) against (f(x + eps v) - f(x - eps v))
    / 2 eps, for a random direction v over every input that requires grad."""
    rng = backend.numpy.random.default_rng(2)
    directions = [Tensor(rng.standard_normal(t.shape), dtype=t.dtype, device=t.device)
                  if isinstance(t, Tensor) and t.requires_grad else None for t in inputs]
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(t, v) if v is not None else t
                 for t, v in zip(inputs, directions, strict=True)]
        with enable_grad():
            outputs = _outputs(fn(*duals))
        tangents = [forward_ad.unpack_dual(out).tangent for out in outputs]

    def moved(step: float) -> list:
        shifted = [Tensor._wrap_no_copy_no_checks(t.array + step * v.array, t.device)
                   .requires_grad_() if v is not None else t
                   for t, v in zip(inputs, directions, strict=True)]
        with no_grad():
            return [backend.to_host(o.array) for o in _outputs(fn(*shifted))]

    plus, minus = moved(eps), moved(-eps)
    for number, (tangent, p, m) in enumerate(zip(tangents, plus, minus, strict=True)):
        numeric = (p - m) / (2 * eps)
        analytic = backend.numpy.zeros_like(numeric) if tangent is None else \
            backend.to_host(tangent.array)
        error = abs(analytic - numeric) - (atol + rtol * abs(numeric))
        if error.size and not error.max() <= 0:
            worst = int(error.argmax())
            raise RuntimeError(
                f"gradcheck: the forward-mode tangent of output {number} is wrong at flat index "
                f"{worst}: forward mode gave {analytic.ravel()[worst]:.6g}, finite differences "
                f"give {numeric.ravel()[worst]:.6g}"
            )


def _unravel(flat_index: int, shape: tuple) -> tuple:
    """The position of element `flat_index` (row-major) in an array of this shape."""
    return tuple(int(k) for k in backend.numpy.unravel_index(flat_index, shape))


