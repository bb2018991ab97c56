"""DistributedSampler: each rank's share of a dataset's indices, as torch.utils.data.distributed.

Every rank draws the same permutation (seeded with seed + epoch, not from the global
generator), pads it to a multiple of the number of ranks by repeating its start (or drops the
tail with drop_last), and takes every num_replicas-th index from its rank on: the ranks' shares
are disjoint and equally long, so every rank takes the same number of steps.
"""

from __future__ import annotations

import math

from .. import backend
from .. import distributed as dist
from .loader import Sampler


class DistributedSampler(Sampler[int]):
    """This rank's indices of dataset: a 1 / num_replicas share, reshuffled by set_epoch."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            if not dist.is_initialized():
                raise RuntimeError("Requires distributed package to be available (call "
                                   "minigrad.distributed.init_process_group, or give "
                                   "num_replicas and rank)")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.epoch, self.drop_last, self.shuffle, self.seed = 0, drop_last, shuffle, seed
        count = len(dataset)
        if drop_last and count % num_replicas:
            self.num_samples = math.ceil((count - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(count / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        count = len(self.dataset)
        if self.shuffle:  # the same order on every rank: its own generator, seed + epoch
            indices = backend.numpy.random.default_rng(self.seed + self.epoch).permutation(
                count).tolist()
        else:
            indices = list(range(count))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use another permutation for this epoch (the same on every rank)."""
        self.epoch = epoch
