"""Datasets as PyTorch has them: Dataset (map-style), TensorDataset, and default_collate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import backend
from ..tensor import Tensor


class Dataset:
    """Base class of map-style datasets: subclass and write __getitem__(index) and __len__."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class TensorDataset(Dataset):
    """Samples are the index-th rows of each tensor: (x[i], y[i], ...)."""

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = [t.shape[0] if t.ndim else None for t in tensors]
        if any(size != sizes[0] for size in sizes):
            raise ValueError(f"Size mismatch between tensors: first dims are {sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


def default_collate(batch):
    """Stack a list of samples into a batch: tensors and arrays are stacked, numbers become a
    tensor (float64 for floats, int64 for ints, as in PyTorch), tuples and dicts are collated
    field by field."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        xp = backend.array_module(elem.array)
        return Tensor._wrap_no_copy_no_checks(xp.stack([s.array for s in batch]), elem.device)
    if isinstance(elem, bool) or isinstance(elem, int | float):
        dtype = backend.float64 if isinstance(elem, float) else backend.int64
        return Tensor._from_data(batch, dtype=dtype)
    if isinstance(elem, str | bytes):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(field)) for field in zip(*batch, strict=True)]
    try:  # NumPy arrays, NumPy scalars, and array-likes such as another library's tensors
        array = backend.numpy.stack([backend.numpy.asarray(sample) for sample in batch])
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"default_collate: batch must contain tensors, numbers, arrays, dicts or lists; "
            f"found {type(elem).__name__} ({error})"
        ) from None
    return Tensor._wrap_no_copy_no_checks(array, backend.CPU)
