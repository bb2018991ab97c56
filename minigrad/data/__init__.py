"""Data: datasets (MNIST, TensorDataset, your own Dataset), samplers and the DataLoader."""

from .dataset import Dataset, TensorDataset, default_collate
from .loader import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from .mnist import MNIST

__all__ = [
    "MNIST", "BatchSampler", "DataLoader", "Dataset", "RandomSampler", "Sampler",
    "SequentialSampler", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler",
    "default_collate",
]
