"""Loss modules: each holds its options and calls the functional form (nn.functional)."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module


class _Loss(Module):
    """A loss with a `reduction` ("mean", "sum" or "none"), checked when it is made."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        F.check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        """The settings shown inside the loss's parentheses when printed."""
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """L = -log softmax(x)[target] (with class weights, ignore_index and label_smoothing)."""

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.weight, self.ignore_index, self.label_smoothing = weight, ignore_index, label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss of logits `input` (batch, classes) against class indices `target`."""
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_Loss):
    """L = -w[t] * x[t] for log-probabilities x (use after LogSoftmax)."""

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100,
                 reduction: str = "mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss of log-probabilities `input` (batch, classes) against class indices."""
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(_Loss):
    """L = (x - y)**2, reduced."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The squared error of input against target (same shapes)."""
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """L = |x - y|, reduced."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The absolute error of input against target (same shapes)."""
        return F.l1_loss(input, target, self.reduction)


class BCELoss(_Loss):
    """L = -(y log x + (1 - y) log(1 - x)) for probabilities x."""

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The binary cross-entropy of probabilities `input` against targets in [0, 1]."""
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """BCELoss of sigmoid(x), computed stably from the logits x (with pos_weight)."""

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean",
                 pos_weight: Tensor | None = None):
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The binary cross-entropy of logits `input` against targets in [0, 1]."""
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  self.pos_weight)
