"""DataLoader: batches from a dataset, with a device-resident fast path.

Two ways to make batches, chosen by the dataset:
- whole arrays (MNIST's `arrays(device)`, a TensorDataset, or an (inputs, targets) tuple of
  arrays): the data goes to the device once and each batch is gathered by shuffled index, with
  no per-sample Python work and no host-to-device copy per batch;
- any other map-style dataset (`dataset[i]` and `len(dataset)`, such as a torchvision dataset):
  samples are read one by one and joined by `collate_fn` (default_collate), as in PyTorch.
"""

from __future__ import annotations

from .. import backend
from ..fused import kernels
from ..tensor import Tensor
from .dataset import TensorDataset, default_collate


class DataLoader:
    """Yields batches of `dataset`, reshuffled each epoch when shuffle=True.

    PyTorch's worker and memory keywords (num_workers, pin_memory, persistent_workers,
    prefetch_factor, timeout) are accepted so that its code runs unchanged; batches are always
    made in this process. The order comes from minigrad's seeded generator (`mg.manual_seed`).
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers: bool = False,
                 pin_memory_device: str = "", device=None):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable "
                "multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        for name, value in (("sampler", sampler), ("batch_sampler", batch_sampler),
                            ("generator", generator)):
            if value is not None:
                raise NotImplementedError(
                    f"DataLoader: {name}= is not supported in minigrad; use shuffle= (the "
                    "order comes from mg.manual_seed)"
                )
        self.device = backend.device(device)
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.collate_fn = collate_fn
        self.arrays = None if collate_fn is not None else self._whole_arrays(dataset)
        if self.arrays is not None:
            self.inputs, self.targets = self.arrays[0], self.arrays[-1]  # (kept for callers)

    def _whole_arrays(self, dataset):
        """The dataset as arrays on the device (the fast path), or None for per-sample reads."""
        if hasattr(dataset, "arrays"):
            arrays = dataset.arrays(self.device)
        elif isinstance(dataset, TensorDataset):
            arrays = [t.array for t in dataset.tensors]
        elif isinstance(dataset, tuple) and len(dataset) == 2 and all(
                isinstance(t, Tensor) or backend.is_array(t) for t in dataset):
            arrays = [t.array if isinstance(t, Tensor) else t for t in dataset]
        else:
            return None
        if len(arrays[0]) != len(arrays[-1]):
            raise ValueError(
                f"DataLoader: {len(arrays[0])} inputs but {len(arrays[-1])} targets; they must "
                "match"
            )
        return [backend.as_array(a, dev=self.device) for a in arrays]

    def _count(self) -> int:
        return len(self.arrays[0]) if self.arrays is not None else len(self.dataset)

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        full, rest = divmod(self._count(), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        count = self._count()
        order = _permutation(backend.generator(self.device), count) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = slice(start, min(start + self.batch_size, count))
            if self.arrays is None:
                indices = range(count)[batch] if order is None else backend.to_host(order[batch])
                collate = self.collate_fn or default_collate
                yield collate([self.dataset[int(i)] for i in indices])
                continue
            if order is None:  # a slice is a view: copy, so a batch never aliases the data set
                parts = [a[batch].copy() for a in self.arrays]
            elif len(self.arrays) == 2 and kernels.applies(self.arrays[0]) and (
                    self.arrays[0].ndim == 2 and self.arrays[1].ndim == 1):
                # CUDA: inputs and targets gathered in one kernel launch instead of two
                parts = kernels.gather_batch(*self.arrays, order, batch.start, batch.stop)
            else:  # gathering by index makes new arrays
                parts = [a[order[batch]] for a in self.arrays]
            tensors = [Tensor._wrap_no_copy_no_checks(p, self.device) for p in parts]
            yield tuple(tensors) if len(tensors) == 2 else tensors


def _permutation(rng, count: int):
    """A random order of range(count), drawn on the generator's own device."""
    if hasattr(rng, "permutation"):  # numpy.random.Generator
        return rng.permutation(count)
    return rng.random(count).argsort()  # cupy.random.Generator has no permutation()
