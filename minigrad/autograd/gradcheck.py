"""gradcheck: compare backward's gradients with central finite differences in float64."""

from __future__ import annotations

from .. import backend
from .grad_mode import no_grad


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> bool:
    """Return True when every analytic gradient matches (f(x+eps) - f(x-eps)) / 2eps.

    `inputs` is a Tensor or a sequence of Tensors; those with requires_grad are checked and must
    be float64. The check uses the scalar sum(fn(*inputs) * w) for a fixed random weight w, so one
    backward gives every gradient. Raises RuntimeError naming the worst element otherwise.
    """
    from ..tensor import Tensor

    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for t in checked:
        if t.dtype != backend.float64:
            raise TypeError(
                f"gradcheck: inputs must be float64 for finite differences, got {t.dtype}"
            )

    output = fn(*inputs)
    host = backend.numpy.random.default_rng(0).standard_normal(output.shape)
    weight = backend.to_device(host.astype(output.dtype), output.device)

    def objective() -> float:
        with no_grad():
            return float((fn(*inputs).array * weight).sum())

    for t in checked:
        t.grad = None
    (output * Tensor._wrap(weight, output.device)).sum().backward()

    for number, t in enumerate(checked):
        analytic = backend.to_host(t.grad.array if t.grad is not None else t.array * 0).ravel()
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


def _unravel(flat_index: int, shape: tuple) -> tuple:
    """The position of element `flat_index` (row-major) in an array of this shape."""
    return tuple(int(k) for k in backend.numpy.unravel_index(flat_index, shape))
