"""Data: the MNIST dataset (read from IDX files) and a device-resident DataLoader."""

from .loader import DataLoader
from .mnist import MNIST

__all__ = ["MNIST", "DataLoader"]
