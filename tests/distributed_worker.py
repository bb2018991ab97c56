"""One rank of a distributed test: `mpiexec -n 2 python tests/distributed_worker.py MODE`.

Each mode checks what it can on its rank and prints one line "rank R ok ..." (the test reads
them), or fails with a non-zero exit. tests/test_distributed.py runs the modes.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # (tests.*)

import minigrad as mg
import minigrad.distributed as dist


def collectives() -> str:
    rank, size = dist.get_rank(), dist.get_world_size()
    base = np.arange(6, dtype=np.float64).reshape(2, 3)
    every = [base * (r + 1) for r in range(size)]
    for op, expected in ((dist.ReduceOp.SUM, sum(every)), (dist.ReduceOp.AVG, sum(every) / size),
                         (dist.ReduceOp.MAX, np.max(every, 0)),
                         (dist.ReduceOp.MIN, np.min(every, 0))):
        t = mg.tensor(every[rank])
        version = t._version
        dist.all_reduce(t, op=op)
        assert np.array_equal(t.numpy(), expected), (op, t.numpy(), expected)
        assert t._version == version + 1  # changed in place, as torch: the counter moves
    t = mg.tensor(every[rank])
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    assert np.array_equal(t.numpy(), sum(every)) and work.is_completed()
    t = mg.tensor(every[rank])
    dist.broadcast(t, src=size - 1)
    assert np.array_equal(t.numpy(), every[size - 1])
    outs = [mg.zeros(2, 3, dtype=mg.float64) for _ in range(size)]
    dist.all_gather(outs, mg.tensor(every[rank]))
    assert all(np.array_equal(o.numpy(), every[r]) for r, o in enumerate(outs))
    out = mg.zeros(2, 3, dtype=mg.float64)
    dist.reduce_scatter(out, [mg.tensor(every[rank] + 10 * r) for r in range(size)])
    assert np.array_equal(out.numpy(), sum(e + 10 * rank for e in every))
    dist.barrier()
    return "collectives"


def _model():
    mg.manual_seed(dist.get_rank() + 7)  # different initial weights: the broadcast must fix them
    return mg.nn.Sequential(mg.nn.Linear(6, 8), mg.nn.ReLU(), mg.nn.Linear(8, 3))


def _data(steps: int, batch: int):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((batch, 6)).astype(np.float32), rng.integers(0, 3, batch))
            for _ in range(steps)]


def _all_same(tensors) -> bool:
    """Every rank's parameters equal, bit for bit."""
    mine = b"".join(t.detach().numpy().tobytes() for t in tensors)
    return all(other == mine for other in dist._current().comm.allgather(mine))


def ddp() -> str:
    """Two ranks on halves of each global batch = one process on the whole batch."""
    rank, size = dist.get_rank(), dist.get_world_size()
    model = _model()
    reference = _model()
    reference.load_state_dict({k: v.detach().clone() for k, v in model.state_dict().items()})
    wrapped = mg.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.0001)  # 3+ buckets
    assert len(wrapped._buckets) >= 3
    reference.load_state_dict(model.state_dict())  # rank 0's weights, after the broadcast
    optimizer = mg.optim.SGD(wrapped.parameters(), lr=0.1, momentum=0.9)
    ref_optimizer = mg.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for x, y in _data(5, 8 * size):
        share = slice(rank * 8, (rank + 1) * 8)
        optimizer.zero_grad()
        mg.nn.functional.cross_entropy(wrapped(mg.tensor(x[share])), mg.tensor(y[share])).backward()
        optimizer.step()
        ref_optimizer.zero_grad()
        mg.nn.functional.cross_entropy(reference(mg.tensor(x)), mg.tensor(y)).backward()
        ref_optimizer.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert _all_same(model.parameters())
    return "ddp"


def no_sync() -> str:
    """Two backwards under no_sync then one outside: the sum of three micro-batches' gradients,
    averaged over the ranks, as one process on everything."""
    rank, size = dist.get_rank(), dist.get_world_size()
    model = _model()
    wrapped = mg.nn.parallel.DistributedDataParallel(model)
    reference = _model()
    reference.load_state_dict(model.state_dict())
    batches = _data(3, 4 * size)
    with wrapped.no_sync():
        for x, y in batches[:2]:
            share = slice(rank * 4, (rank + 1) * 4)
            mg.nn.functional.cross_entropy(wrapped(mg.tensor(x[share])),
                                           mg.tensor(y[share])).backward()
    x, y = batches[2]
    share = slice(rank * 4, (rank + 1) * 4)
    mg.nn.functional.cross_entropy(wrapped(mg.tensor(x[share])), mg.tensor(y[share])).backward()
    for x, y in batches:
        mg.nn.functional.cross_entropy(reference(mg.tensor(x)), mg.tensor(y)).backward()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-6)
    return "no_sync"


class TwoHeads(mg.nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.left, self.right = (mg.nn.Linear(4, 4), mg.nn.Linear(4, 2),
                                            mg.nn.Linear(4, 2))

    def forward(self, x, use_left=True):
        return (self.left if use_left else self.right)(self.body(x).relu())


def unused() -> str:
    """A head one rank does not use: with find_unused_parameters it counts as a zero gradient;
    without, the next iteration says what is wrong, as in torch."""
    rank = dist.get_rank()
    model = mg.nn.parallel.DistributedDataParallel(TwoHeads(), find_unused_parameters=True)
    x = mg.ones(3, 4)
    model(x, use_left=rank == 0).sum().backward()
    for p in model.module.parameters():
        assert p.grad is not None  # averaged: one rank's gradient and the other's zero
    assert _all_same([p.grad for p in model.module.parameters()])
    strict = mg.nn.parallel.DistributedDataParallel(TwoHeads())
    strict(x).sum().backward()
    try:
        strict(x)
    except RuntimeError as error:
        assert "find_unused_parameters=True" in str(error)
    else:
        raise AssertionError("an unused parameter went unreported")
    return "unused"


def mismatch() -> str:
    """Ranks with different models: an error at construction that names the rank."""
    width = 4 + dist.get_rank()
    try:
        mg.nn.parallel.DistributedDataParallel(mg.nn.Linear(3, width))
    except RuntimeError as error:
        assert "rank 1 has different parameters" in str(error), error
        return "mismatch"
    raise AssertionError("different models went unreported")


def batch_mismatch() -> str:
    model = mg.nn.parallel.DistributedDataParallel(mg.nn.Linear(3, 2))
    try:
        model(mg.ones(2, 3 if dist.get_rank() == 0 else 4))
    except RuntimeError as error:
        assert "rank 1 has different input shapes" in str(error), error
        return "batch_mismatch"
    raise AssertionError("different batch shapes went unreported")


def dies() -> str:
    """Rank 1 dies mid-training (no goodbye): rank 0 must stop within the timeout."""
    model = mg.nn.parallel.DistributedDataParallel(_model())
    for step, (x, y) in enumerate(_data(50, 4)):
        if step == 3 and dist.get_rank() == 1:
            os._exit(9)  # killed: no exception, no MPI call
        mg.nn.functional.cross_entropy(model(mg.tensor(x)), mg.tensor(y)).backward()
    return "dies (not reached)"


def raises() -> str:
    """Rank 1 raises: its rank and error are printed and every rank stops."""
    model = mg.nn.parallel.DistributedDataParallel(_model())
    for step, (x, y) in enumerate(_data(50, 4)):
        if step == 2 and dist.get_rank() == 1:
            raise ValueError("a bug on rank 1")
        mg.nn.functional.cross_entropy(model(mg.tensor(x)), mg.tensor(y)).backward()
    return "raises (not reached)"


def sampler() -> str:
    """Each rank's DistributedSampler share: disjoint, equally long, covering the padded set."""
    from minigrad.utils.data.distributed import DistributedSampler
    mine = DistributedSampler(range(11), shuffle=True, seed=3)
    mine.set_epoch(2)
    indices = list(mine)
    every = dist._current().comm.allgather(indices)
    assert len({len(i) for i in every}) == 1
    flat = [i for part in every for i in part]
    assert sorted(set(flat)) == list(range(11)) and len(flat) == 12  # one padded repeat
    return "sampler"


def install_fake_gpu_and_nccl() -> None:
    """The fake CuPy of tests/test_backend_seam.py as minigrad's "cuda", and a fake NCCL (as
    cupy.cuda.nccl) whose allReduce reads and writes the arrays through the addresses it is
    given and sums them over MPI: the unique id, pointers, counts, dtypes and ops are checked as
    CuPy's binding takes them."""
    import ctypes
    import types

    from mpi4py import MPI

    from minigrad import backend
    from minigrad.fused import kernels
    from tests.test_backend_seam import make_fake_cupy

    cupy, cupyx = make_fake_cupy()
    backend._cupy = cupy
    backend._generators = backend._Generators()
    kernels.enabled = False
    sys.modules["cupyx"] = cupyx
    nccl = types.ModuleType("cupy.cuda.nccl")
    kinds = {2: np.int32, 4: np.int64, 6: np.float16, 7: np.float32, 8: np.float64}
    for name, code in (("INT32", 2), ("INT64", 4), ("FLOAT16", 6), ("FLOAT32", 7),
                       ("FLOAT64", 8)):
        setattr(nccl, f"NCCL_{name}", code)
    ops = {0: MPI.SUM, 2: MPI.MAX, 3: MPI.MIN}
    nccl.NCCL_SUM, nccl.NCCL_MAX, nccl.NCCL_MIN = 0, 2, 3
    nccl.get_unique_id = lambda: tuple(np.random.default_rng().integers(0, 255, 128).tolist())
    made = []

    class NcclCommunicator:
        def __init__(self, ndev, comm_id, rank):
            ids = MPI.COMM_WORLD.allgather(comm_id)
            assert all(i == ids[0] for i in ids) and ndev == MPI.COMM_WORLD.Get_size()
            assert rank == MPI.COMM_WORLD.Get_rank()
            made.append(self)

        def allReduce(self, send, receive, count, datatype, op, stream):  # noqa: N802
            total = np.empty(count, kinds[datatype])
            MPI.COMM_WORLD.Allreduce(at(send, count, datatype).copy(), total, op=ops[op])
            at(receive, count, datatype)[...] = total

        def bcast(self, buffer, count, datatype, root, stream):
            MPI.COMM_WORLD.Bcast(at(buffer, count, datatype), root=root)

        def allGather(self, send, receive, count, datatype, stream):  # noqa: N802
            MPI.COMM_WORLD.Allgather(at(send, count, datatype).copy(),
                                     at(receive, count * MPI.COMM_WORLD.Get_size(), datatype))

        def reduceScatter(self, send, receive, count, datatype, op, stream):  # noqa: N802
            size = MPI.COMM_WORLD.Get_size()
            MPI.COMM_WORLD.Reduce_scatter_block(at(send, count * size, datatype).copy(),
                                                at(receive, count, datatype), op=ops[op])

    def at(address: int, count: int, datatype: int) -> np.ndarray:
        """The count elements of the given NCCL type at a device address (here, host memory)."""
        kind = np.dtype(kinds[datatype])
        buffer = (ctypes.c_char * (count * kind.itemsize)).from_address(address)
        return np.frombuffer(buffer, dtype=kind)

    nccl.NcclCommunicator = NcclCommunicator
    package = types.ModuleType("cupy")
    package.__path__ = []
    package.cuda = types.ModuleType("cupy.cuda")
    package.cuda.nccl = nccl
    sys.modules.update({"cupy": package, "cupy.cuda": package.cuda, "cupy.cuda.nccl": nccl})


def nccl() -> str:
    """backend='nccl' on the fake GPU: all_reduce of "cuda" tensors goes through NCCL's binding."""
    rank, size = dist.get_rank(), dist.get_world_size()
    assert dist.get_backend() == "nccl" and dist._current().nccl is not None
    for op, expected in ((dist.ReduceOp.SUM, 3.0), (dist.ReduceOp.AVG, 1.5),
                         (dist.ReduceOp.MAX, 2.0), (dist.ReduceOp.MIN, 1.0)):
        t = mg.full((2, 3), float(rank + 1), device="cuda")
        dist.all_reduce(t, op=op)
        assert t.device.type == "cuda" and np.allclose(t.cpu().numpy(), expected), (op, t)
    t = mg.full((3,), float(rank), device="cuda")
    dist.broadcast(t, src=1)
    assert np.allclose(t.cpu().numpy(), 1.0)
    gathered = [mg.zeros(2, device="cuda") for _ in range(size)]
    dist.all_gather(gathered, mg.full((2,), float(rank), device="cuda"))
    assert [g.cpu().numpy().tolist() for g in gathered] == [[0.0, 0.0], [1.0, 1.0]]
    out = mg.zeros(2, device="cuda")
    dist.reduce_scatter(out, [mg.full((2,), float(rank + r), device="cuda") for r in range(size)])
    assert np.allclose(out.cpu().numpy(), 1.0 + 2 * rank)  # (0 + r) + (1 + r)
    model = mg.nn.Linear(3, 2).to("cuda")
    wrapped = mg.nn.parallel.DistributedDataParallel(model)
    wrapped(mg.ones(4, 3, device="cuda") * (rank + 1)).sum().backward()
    assert np.allclose(model.bias.grad.cpu().numpy(), 4.0)  # the same on each rank
    assert size == 2
    return "nccl"


MODES = {f.__name__: f for f in (nccl, collectives, ddp, no_sync, unused, mismatch, batch_mismatch,
                                 dies, raises, sampler)}

if __name__ == "__main__":
    mode = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    if mode == "nccl":
        install_fake_gpu_and_nccl()
    dist.init_process_group("nccl" if mode == "nccl" else "mpi", timeout=timeout)
    result = MODES[mode]()
    print(f"rank {dist.get_rank()} ok {result}", flush=True)
    dist.destroy_process_group()
