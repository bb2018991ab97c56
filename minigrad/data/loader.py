"""DataLoader: batches from a dataset, with a device-resident fast path.

Two ways to make batches, chosen by the dataset:
- whole arrays (MNIST's `arrays(device)`, a TensorDataset, or an (inputs, targets) tuple of
  arrays): the data goes to the device once and each batch is gathered by shuffled index, with
  no per-sample Python work and no host-to-device copy per batch;
- any other map-style dataset (`dataset[i]` and `len(dataset)`, such as a torchvision dataset):
  samples are read one by one and joined by `collate_fn` (default_collate), as in PyTorch.

The order is the loader's own (in turn, or shuffled on the device) unless a `sampler=` or
`batch_sampler=` gives it, as in PyTorch: then each batch's indices come from the host and whole
arrays are still gathered by index on the device. The samplers (SequentialSampler, RandomSampler,
SubsetRandomSampler, WeightedRandomSampler, BatchSampler) draw from minigrad's CPU generator, so
`mg.manual_seed` makes them repeat.
"""

from __future__ import annotations

import itertools
import operator
from typing import Generic, TypeVar

from .. import backend
from ..fused import kernels
from ..tensor import Tensor
from .dataset import TensorDataset, default_collate


class DataLoader:
    """Yields batches of `dataset`, reshuffled each epoch when shuffle=True.

    PyTorch's worker and memory keywords (num_workers, pin_memory, persistent_workers,
    prefetch_factor, timeout) are accepted so that its code runs unchanged; batches are always
    made in this process. The order comes from minigrad's seeded generator (`mg.manual_seed`),
    or from `sampler=` (indices, batched by batch_size) or `batch_sampler=` (lists of indices)
    as in PyTorch. minigrad has no Generator object, so `generator=` must be None.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers: bool = False,
                 pin_memory_device: str = "", device=None):
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size, drop_last = None, False  # the batch sampler decides both, as in PyTorch
        else:
            if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
                raise ValueError(
                    f"DataLoader: batch_size must be a positive int, got {batch_size!r}"
                )
            if not isinstance(drop_last, bool):
                raise ValueError(
                    f"drop_last should be a boolean value, but got drop_last={drop_last}"
                )
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable "
                "multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        _refuse_generator("DataLoader", generator)
        if sampler is not None:  # PyTorch batches a given sampler the same way
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
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
        """The number of batches in one epoch (len(batch_sampler) when there is one)."""
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        full, rest = divmod(self._count(), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        if self.batch_sampler is not None:
            for indices in self.batch_sampler:
                yield self._batch_of(list(indices))
            return
        count = self._count()
        order = _permutation(backend.generator(self.device), count) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = slice(start, min(start + self.batch_size, count))
            if self.arrays is None:
                indices = range(count)[batch] if order is None else backend.to_host(order[batch])
                collate = self.collate_fn or default_collate
                yield collate([self.dataset[int(i)] for i in indices])
            elif order is None:  # a slice is a view: copy, so a batch never aliases the data set
                yield self._wrap([a[batch].copy() for a in self.arrays])
            else:
                yield self._wrap(self._gather(order, batch.start, batch.stop))

    def _batch_of(self, indices: list):
        """One batch from a sampler's indices: read and collated, or gathered from the arrays."""
        if self.arrays is None:  # indices go to dataset[...] as given (they may be keys)
            return (self.collate_fn or default_collate)([self.dataset[i] for i in indices])
        rows = _rows(indices, len(self.arrays[0]))
        order = backend.as_array(rows, dt=backend.int64, dev=self.device)
        return self._wrap(self._gather(order, 0, len(rows)))

    def _gather(self, order, start: int, stop: int) -> list:
        """Each array's rows order[start:stop] (gathering by index makes new arrays)."""
        if len(self.arrays) == 2 and stop > start and kernels.applies(self.arrays[0]) and (
                self.arrays[0].ndim == 2 and self.arrays[1].ndim == 1):
            # CUDA: inputs and targets gathered in one kernel launch instead of two
            return list(kernels.gather_batch(*self.arrays, order, start, stop))
        return [a[order[start:stop]] for a in self.arrays]

    def _wrap(self, parts: list):
        tensors = [Tensor._wrap_no_copy_no_checks(p, self.device) for p in parts]
        return tuple(tensors) if len(tensors) == 2 else tensors


def _rows(indices: list, count: int) -> list:
    """A sampler's indices as row numbers in [0, count); negative ones count from the end."""
    rows = []
    for index in indices:
        try:
            row = operator.index(index)
        except TypeError:
            raise TypeError(
                f"DataLoader: the sampler gave index {index!r} ({type(index).__name__}); rows of "
                "arrays need int indices"
            ) from None
        if not -count <= row < count:
            raise IndexError(
                f"DataLoader: the sampler gave index {row}, out of bounds for dimension 0 with "
                f"size {count}"
            )
        rows.append(row + count if row < 0 else row)
    return rows


def _refuse_generator(where: str, generator) -> None:
    """minigrad has one seeded generator per device and no Generator object to pass around."""
    if generator is not None:
        raise NotImplementedError(
            f"{where}: generator= must be None, got {type(generator).__name__}; minigrad has no "
            "Generator object (its random order repeats after mg.manual_seed(seed))"
        )


def _permutation(rng, count: int):
    """A random order of range(count), drawn on the generator's own device."""
    if hasattr(rng, "permutation"):  # numpy.random.Generator
        return rng.permutation(count)
    return rng.random(count).argsort()  # cupy.random.Generator has no permutation()


# ---- samplers: the order of indices, as torch.utils.data has them ------------------------------

IndexType = TypeVar("IndexType")


class Sampler(Generic[IndexType]):
    """Base class of samplers: subclass and write __iter__ (the indices) and, if known, __len__."""

    def __init__(self, data_source=None) -> None:
        pass  # PyTorch's base class takes and ignores data_source too

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler[int]):
    """The indices 0, 1, ..., len(data_source) - 1 in turn."""

    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Indices of data_source in a random order (a new one each epoch), or num_samples draws with
    replacement; without replacement, num_samples past len(data_source) joins new permutations.

    The draws come from minigrad's CPU generator (`mg.manual_seed`); generator= must be None.
    """

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator=None) -> None:
        self.data_source, self.replacement = data_source, replacement
        self._num_samples, self.generator = num_samples, generator
        if not isinstance(replacement, bool):
            raise TypeError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                "num_samples should be a positive integer value, but got "
                f"num_samples={self.num_samples}"
            )
        _refuse_generator("RandomSampler", generator)

    @property
    def num_samples(self) -> int:
        """num_samples as given, else len(data_source) (read each time: datasets may grow)."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        count, rng = len(self.data_source), backend.generator(backend.CPU)
        if self.replacement:
            yield from rng.integers(0, count, self.num_samples).tolist()
            return
        full, rest = divmod(self.num_samples, count)
        for _ in range(full):
            yield from rng.permutation(count).tolist()
        if rest:
            yield from rng.permutation(count)[:rest].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a random order, without replacement (a new order each epoch)."""

    def __init__(self, indices, generator=None) -> None:
        _refuse_generator("SubsetRandomSampler", generator)
        self.indices, self.generator = indices, generator

    def __iter__(self):
        for position in backend.generator(backend.CPU).permutation(len(self.indices)).tolist():
            yield self.indices[position]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """num_samples indices of weights, index i drawn with probability weights[i] / sum(weights);
    without replacement an index is drawn at most once (torch.multinomial's semantics).
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator=None) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={num_samples}"
            )
        if not isinstance(replacement, bool):
            raise ValueError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        host = backend.to_host(weights.array) if isinstance(weights, Tensor) else weights
        values = backend.as_array(host, dt=backend.float64)
        if values.ndim != 1:
            raise ValueError(
                f"weights should be a 1d sequence but given weights have shape "
                f"{tuple(values.shape)}"
            )
        _refuse_generator("WeightedRandomSampler", generator)
        self.weights = Tensor._wrap_no_copy_no_checks(values, backend.CPU)
        self.num_samples, self.replacement, self.generator = num_samples, replacement, generator

    def __iter__(self):
        weights, rng = self.weights.array, backend.generator(backend.CPU)
        if not self.replacement and self.num_samples > len(weights):
            raise RuntimeError(
                "cannot sample n_sample > prob_dist.size(-1) samples without replacement"
            )
        if not (abs(weights) < float("inf")).all():  # also False for NaN
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if (weights < 0).any():
            raise RuntimeError(
                "invalid multinomial distribution (encountering probability entry < 0)"
            )
        total = weights.sum()
        if total <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if self.replacement:
            yield from rng.choice(len(weights), self.num_samples, p=weights / total).tolist()
            return
        # Without replacement: the smallest of Exponential(1) / weight wins first, with
        # probability weight / total, then the next among those left (sequential draws).
        # Zero weights come last, in a random order, as torch.multinomial gives them.
        positive, zero = (weights > 0).nonzero()[0], (weights == 0).nonzero()[0]
        keys = rng.exponential(size=len(positive)) / weights[positive]
        order = positive[keys.argsort()].tolist() + zero[rng.permutation(len(zero))].tolist()
        yield from order[:self.num_samples]

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list]):
    """Lists of batch_size indices from `sampler` (any iterable of indices); the last list is
    shorter, or dropped when drop_last=True.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(
                f"drop_last should be a boolean value, but got drop_last={drop_last}"
            )
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self) -> int:
        """len(sampler) / batch_size, rounded down with drop_last, else up (needs len(sampler))."""
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)
