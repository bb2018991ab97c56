"""mg.utils.data: PyTorch's spelling (torch.utils.data) of minigrad.data."""

from ..data import (
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

__all__ = ["BatchSampler", "DataLoader", "Dataset", "RandomSampler", "Sampler",
           "SequentialSampler", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler",
           "default_collate"]
