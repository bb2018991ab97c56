"""Loss modules."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    """L = -log softmax(x)[target], averaged ("mean") or added ("sum") over the batch."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        F.check_reduction(reduction, "CrossEntropyLoss")
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss of logits `input` (batch, classes) against class indices `target`."""
        return F.cross_entropy(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        """The settings shown inside CrossEntropyLoss(...) when printed."""
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"
