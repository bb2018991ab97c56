"""Data-parallel training's communication, under torch.distributed's names.

Every process (a *rank*) runs the same program on its share of the data; the collectives below
combine their tensors. They are built on existing engines, never on hand-made sockets: MPI
through mpi4py on the CPU (`backend="mpi"`, launched by `mpiexec -n 2 python train.py`), NCCL
through CuPy on GPUs (`backend="nccl"`; its unique id travels over MPI, so the same launcher
serves both).

    import minigrad.distributed as dist
    dist.init_process_group("mpi")
    dist.all_reduce(t, op=dist.ReduceOp.AVG)   # t now holds the mean of every rank's t

Every collective changes its tensors in place, as torch's do, and waits at most `timeout`
seconds (init_process_group's, 300 by default): a rank that died, raised or is stuck makes the
others stop with an error naming the collective and the rank that waited, never hang. A rank
that raises stops the job (MPI_Abort) after printing its rank and the error.
"""

from __future__ import annotations

import datetime
import enum
import sys
import time

from .. import backend
from ..tensor import Tensor


class ReduceOp(enum.Enum):
    """How all_reduce and reduce_scatter combine the ranks' values."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"


class _Group:
    """The default process group: the MPI communicator (and NCCL's, for "nccl")."""

    def __init__(self, backend_name: str, comm, timeout: float):
        self.backend, self.comm, self.timeout = backend_name, comm, timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.nccl = None


_group: _Group | None = None


def _mpi():
    try:
        from mpi4py import MPI  # noqa: PLC0415  (optional: the `distributed` extra)
    except ImportError:
        raise RuntimeError("minigrad.distributed needs mpi4py and an MPI: pip install -e "
                           "'.[distributed]' (mpi4py and the mpich wheel, which has mpiexec)"
                           ) from None
    return MPI


def init_process_group(backend: str = "mpi", init_method=None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None, group_name: str = ""):
    """Join the job's ranks: over MPI (the ranks mpiexec started), with NCCL on GPUs for
    "nccl". `timeout` (seconds or a timedelta) bounds every collective's wait."""
    global _group
    if _group is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: backend must be 'mpi' or 'nccl' in minigrad, "
                         f"got {backend!r} (gloo's role is MPI's here)")
    mpi = _mpi()
    comm = mpi.COMM_WORLD
    if world_size not in (-1, comm.Get_size()) or rank not in (-1, comm.Get_rank()):
        raise ValueError(f"init_process_group: world_size={world_size}, rank={rank} do not match "
                         f"the MPI job (size {comm.Get_size()}, this is rank {comm.Get_rank()}); "
                         "launch with mpiexec -n N and leave them out")
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    group = _Group(backend, comm, 300.0 if timeout is None else float(timeout))
    if backend == "nccl":
        group.nccl = _nccl_communicator(group)
    _group = group
    _stop_all_on_error(group)


def _nccl_communicator(group: _Group):
    """NCCL's communicator for this rank's GPU: rank 0 makes the unique id, MPI carries it."""
    cupy, nccl = backend.cupy_module(), backend.nccl_module()
    cupy.cuda.Device(group.rank % max(1, backend.cuda_device_count())).use()
    unique_id = nccl.get_unique_id() if group.rank == 0 else None
    unique_id = group.comm.bcast(unique_id, root=0)
    return nccl.NcclCommunicator(group.size, unique_id, group.rank)


def _stop_all_on_error(group: _Group) -> None:
    """An uncaught error on one rank stops every rank (MPI_Abort), after naming the rank."""
    previous = sys.excepthook

    def hook(kind, value, trace):
        previous(kind, value, trace)
        if group.size > 1 and not issubclass(kind, KeyboardInterrupt):
            print(f"rank {group.rank} of {group.size} raised {kind.__name__}: {value}; "
                  "stopping the other ranks", file=sys.stderr, flush=True)
            _abort(group)

    sys.excepthook = hook


def _abort(group: _Group) -> None:
    """MPI_Abort, once the launcher has had time to pass on what this rank printed (an abort
    at once can tear the job down before the message naming the rank reaches the terminal)."""
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(0.5)
    group.comm.Abort(1)


def _current() -> _Group:
    if _group is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to "
                           "call init_process_group.")
    return _group


def is_initialized() -> bool:
    """Whether init_process_group has run (and destroy_process_group has not)."""
    return _group is not None


def is_available() -> bool:
    """Whether the distributed package can be used here (mpi4py is installed)."""
    try:
        _mpi()
    except RuntimeError:
        return False
    return True


def get_rank(group=None) -> int:
    """This process's number, 0 .. world size - 1."""
    return _current().rank


def get_world_size(group=None) -> int:
    """How many ranks the job has."""
    return _current().size


def get_backend(group=None) -> str:
    return _current().backend


def destroy_process_group(group=None) -> None:
    """Leave the group (MPI itself ends with the process)."""
    global _group
    _current()
    _group = None


def barrier(group=None, async_op: bool = False):
    """Wait until every rank has reached this call."""
    g = _current()
    return _finish(Work(g, g.comm.Ibarrier(), "barrier"), async_op)


# ---- the collectives ---------------------------------------------------------------------------


class Work:
    """A collective in flight: wait() finishes it (or fails after the group's timeout)."""

    def __init__(self, group: _Group, request, what: str, after=None):
        self.group, self.request, self.what, self.after = group, request, what, after
        self.done = False

    def wait(self, timeout=None) -> bool:
        if self.done:
            return True
        limit = self.group.timeout if timeout is None else float(timeout)
        started = time.monotonic()
        deadline, pause = started + limit, 1e-5
        while not self.request.Test():  # (each Test also moves MPI's transfers on)
            now = time.monotonic()
            if now - started < 0.05:
                continue  # the first 50 ms: ask again at once (a sleep costs ~60 us here)
            if now > deadline:
                message = (f"rank {self.group.rank} of {self.group.size}: {self.what} did not "
                           f"finish within {limit:g} s: another rank died, raised or is stuck "
                           "(a different number of steps, or of collectives, on the ranks)")
                print(message + "; stopping the job", file=sys.stderr, flush=True)
                _abort(self.group)
                raise RuntimeError(message)  # (not reached: Abort ends the process)
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)
        self.done = True
        if self.after is not None:
            self.after()
        return True

    def is_completed(self) -> bool:
        return self.done


def _finish(work: Work, async_op: bool):
    if async_op:
        return work
    work.wait()
    return None


def _buffer(tensor: Tensor, who: str, gpu: bool = False):
    """The tensor's array for a collective to write into: contiguous host memory for MPI, or
    (gpu) contiguous GPU memory for NCCL."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{who}: expected a Tensor, got {type(tensor).__name__}")
    if gpu and tensor.device.type != "cuda":
        raise RuntimeError(f"{who}: with backend='nccl' every tensor of a collective must be on "
                           f"the GPU, got one on {tensor.device}")
    if not gpu and tensor.device.type != "cpu":
        raise RuntimeError(f"{who}: the 'mpi' backend takes CPU tensors, got one on "
                           f"{tensor.device}; use backend='nccl' for GPU tensors")
    array = tensor.array
    if not array.flags.c_contiguous:
        raise ValueError(f"{who}: the tensor must be contiguous (call .contiguous() first)")
    return array


def _mpi_op(op: ReduceOp):
    mpi = _mpi()
    return {ReduceOp.SUM: mpi.SUM, ReduceOp.AVG: mpi.SUM, ReduceOp.MAX: mpi.MAX,
            ReduceOp.MIN: mpi.MIN}[ReduceOp(op)]


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """tensor = the sum (mean, max, min) of every rank's tensor, on every rank, in place."""
    g = _current()
    op = ReduceOp(op)
    if g.nccl is not None and tensor.device.type == "cuda":
        return _finish(_nccl_all_reduce(g, tensor, op), async_op)
    array = _buffer(tensor, "all_reduce")
    request = g.comm.Iallreduce(_mpi().IN_PLACE, array, op=_mpi_op(op))

    def after():
        if op is ReduceOp.AVG:
            array[...] /= g.size
        tensor._bump_version()

    return _finish(Work(g, request, f"all_reduce of a tensor of shape {tuple(tensor.shape)}",
                        after), async_op)


def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False):
    """tensor = rank src's tensor, on every rank, in place."""
    g = _current()
    if not 0 <= src < g.size:
        raise ValueError(f"broadcast: src={src} is not a rank of this group (size {g.size})")
    if g.nccl is not None and tensor.device.type == "cuda":
        array = _buffer(tensor, "broadcast", gpu=True)
        g.nccl.bcast(array.data.ptr, array.size, _nccl_kind(array), src, _stream())
        tensor._bump_version()
        return _finish(Work(g, _Done(), "broadcast (nccl)"), async_op)
    array = _buffer(tensor, "broadcast")
    request = g.comm.Ibcast(array, root=src)
    return _finish(Work(g, request, f"broadcast from rank {src}", tensor._bump_version),
                   async_op)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """tensor_list[r] = rank r's tensor, on every rank (the list's tensors are written)."""
    g = _current()
    if len(tensor_list) != g.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors, but the group "
                         f"has {g.size} ranks")
    for out in tensor_list:
        if tuple(out.shape) != tuple(tensor.shape) or out.dtype != tensor.dtype:
            raise ValueError(f"all_gather: every output must be shaped like the input "
                             f"{tuple(tensor.shape)} ({tensor.dtype}), got {tuple(out.shape)} "
                             f"({out.dtype})")
    if g.nccl is not None and tensor.device.type == "cuda":
        array = _buffer(tensor, "all_gather", gpu=True)
        gathered = backend.cupy_module().empty((g.size,) + array.shape, dtype=array.dtype)
        g.nccl.allGather(array.data.ptr, gathered.data.ptr, array.size, _nccl_kind(array),
                         _stream())
        request = _Done()
    else:
        array = _buffer(tensor, "all_gather")
        gathered = backend.array_module(array).empty((g.size,) + array.shape, dtype=array.dtype)
        request = g.comm.Iallgather(array, gathered)

    def after():
        for rank, out in enumerate(tensor_list):
            out.array[...] = gathered[rank]
            out._bump_version()

    return _finish(Work(g, request, "all_gather", after), async_op)


def reduce_scatter(output: Tensor, input_list: list, op=ReduceOp.SUM, group=None,
                   async_op: bool = False):
    """output = the reduction over ranks of every rank's input_list[this rank]."""
    g = _current()
    op = ReduceOp(op)
    if len(input_list) != g.size:
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} tensors, but the "
                         f"group has {g.size} ranks")
    for item in input_list:
        if tuple(item.shape) != tuple(output.shape):
            raise ValueError(f"reduce_scatter: every input must be shaped like the output "
                             f"{tuple(output.shape)}, got {tuple(item.shape)}")
    on_gpu = g.nccl is not None and output.device.type == "cuda"
    out = _buffer(output, "reduce_scatter", on_gpu)
    xp = backend.array_module(out)
    stacked = xp.ascontiguousarray(xp.stack([_buffer(t, "reduce_scatter", on_gpu)
                                             for t in input_list]))
    if on_gpu:
        g.nccl.reduceScatter(stacked.data.ptr, out.data.ptr, out.size, _nccl_kind(out),
                             _nccl_op(op), _stream())
        request = _Done()
    else:
        request = g.comm.Ireduce_scatter_block(stacked, out, op=_mpi_op(op))

    def after():
        if op is ReduceOp.AVG:
            out[...] /= g.size
        output._bump_version()

    return _finish(Work(g, request, "reduce_scatter", after), async_op)


def _nccl_all_reduce(g: _Group, tensor: Tensor, op: ReduceOp) -> Work:
    """all_reduce of a GPU tensor with NCCL, on the current stream."""
    array = _buffer(tensor, "all_reduce", gpu=True)
    g.nccl.allReduce(array.data.ptr, array.data.ptr, array.size, _nccl_kind(array), _nccl_op(op),
                     _stream())
    if op is ReduceOp.AVG:
        array[...] /= g.size
    tensor._bump_version()
    return Work(g, _Done(), "all_reduce (nccl)")


def _nccl_kind(array) -> int:
    nccl = backend.nccl_module()
    kinds = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
             "float16": nccl.NCCL_FLOAT16, "int64": nccl.NCCL_INT64, "int32": nccl.NCCL_INT32}
    if array.dtype.name not in kinds:
        raise TypeError(f"backend='nccl' does not reduce {array.dtype.name} tensors "
                        f"(it takes {', '.join(kinds)})")
    return kinds[array.dtype.name]


def _nccl_op(op: ReduceOp) -> int:
    nccl = backend.nccl_module()
    return {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.AVG: nccl.NCCL_SUM, ReduceOp.MAX: nccl.NCCL_MAX,
            ReduceOp.MIN: nccl.NCCL_MIN}[ReduceOp(op)]


def _stream() -> int:
    """The current CUDA stream's handle: NCCL's work is ordered after what is queued there."""
    return backend.cupy_module().cuda.get_current_stream().ptr


class _Done:
    """A request already complete (NCCL's work is ordered on the stream)."""

    def Test(self) -> bool:  # noqa: N802  (mpi4py's name)
        return True


__all__ = ["ReduceOp", "Work", "all_gather", "all_reduce", "barrier", "broadcast",
           "destroy_process_group", "get_backend", "get_rank", "get_world_size",
           "init_process_group", "is_available", "is_initialized", "reduce_scatter"]
