"""DataLoader: the whole dataset on the device once, batches gathered by shuffled index."""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor


class DataLoader:
    """Yields (inputs, targets) Tensor batches from a dataset held entirely on `device`.

    `dataset` is anything with an `arrays(device)` method returning (inputs, targets) arrays
    (MNIST gives float32 (N, 784) normalised pixels and int64 labels), or such a pair itself.
    Each epoch draws one permutation from minigrad's seeded generator (`mg.manual_seed`) and
    gathers batches with it: no per-sample Python work, and no host-to-device copy per batch.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, device=None):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.device = backend.device(device)
        if hasattr(dataset, "arrays"):
            inputs, targets = dataset.arrays(self.device)
        else:
            inputs, targets = (t.array if isinstance(t, Tensor) else t for t in dataset)
        if len(inputs) != len(targets):
            raise ValueError(
                f"DataLoader: {len(inputs)} inputs but {len(targets)} targets; they must match"
            )
        self.inputs = backend.as_array(inputs, dev=self.device)
        self.targets = backend.as_array(targets, dev=self.device)
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        full, rest = divmod(len(self.targets), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        count = len(self.targets)
        order = _permutation(backend.generator(self.device), count) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = slice(start, min(start + self.batch_size, count))
            if order is None:  # a slice is a view: copy, so a batch never aliases the data set
                inputs, targets = self.inputs[batch].copy(), self.targets[batch].copy()
            else:  # gathering by index makes new arrays
                inputs, targets = self.inputs[order[batch]], self.targets[order[batch]]
            yield Tensor._wrap_no_copy_no_checks(inputs, self.device), Tensor._wrap_no_copy_no_checks(targets, self.device)


def _permutation(rng, count: int):
    """A random order of range(count), drawn on the generator's own device."""
    if hasattr(rng, "permutation"):  # numpy.random.Generator
        return rng.permutation(count)
    return rng.random(count).argsort()  # cupy.random.Generator has no permutation()
