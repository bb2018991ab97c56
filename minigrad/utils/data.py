"""mg.utils.data: PyTorch's spelling (torch.utils.data) of minigrad.data."""

from ..data import DataLoader, Dataset, TensorDataset, default_collate

__all__ = ["DataLoader", "Dataset", "TensorDataset", "default_collate"]
