"""Data: datasets (MNIST, TensorDataset, your own Dataset) and the DataLoader."""

from .dataset import Dataset, TensorDataset, default_collate
from .loader import DataLoader
from .mnist import MNIST

__all__ = ["MNIST", "DataLoader", "Dataset", "TensorDataset", "default_collate"]
