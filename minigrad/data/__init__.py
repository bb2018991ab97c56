"""Data: datasets (MNIST, TensorDataset, your own Dataset), samplers and the DataLoader."""

from .dataset import Dataset, TensorDataset, default_collate
from .distributed import DistributedSampler
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
    "MNIST", "BatchSampler", "DataLoader", "Dataset", "DistributedSampler", "RandomSampler",
    "Sampler",
    "SequentialSampler", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler",
    "default_collate",
]
