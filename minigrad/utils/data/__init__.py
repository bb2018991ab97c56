"""mg.utils.data: PyTorch's spelling (torch.utils.data) of minigrad.data."""

from ...data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
)
from . import distributed  # noqa: E402  (torch.utils.data.distributed)

__all__ = ["distributed", "BatchSampler", "DataLoader", "Dataset", "RandomSampler", "Sampler",
           "SequentialSampler", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler",
           "default_collate"]
