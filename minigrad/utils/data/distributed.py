"""mg.utils.data.distributed: PyTorch's spelling of minigrad.data.distributed."""

from ...data.distributed import DistributedSampler

__all__ = ["DistributedSampler"]
