"""minigrad.distributed and DistributedDataParallel on two MPI ranks (`mpiexec -n 2`, from the
`distributed` extra, which the test extra includes): each mode of tests/distributed_worker.py
runs as a job; failures of one rank stop the other with an error, never a hang. And
DistributedSampler against torch's index lists, in one process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad as mg

torch = pytest.importorskip("torch")
WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which(
    "mpiexec")
needs_mpi = pytest.mark.skipif(MPIEXEC is None or not mg.distributed.is_available(),
                               reason="no mpiexec / mpi4py: pip install -e '.[distributed]'")


def job(mode: str, *launcher: str, timeout: float = 60, ranks: int = 2):
    return subprocess.run([MPIEXEC, *launcher, "-n", str(ranks), sys.executable, str(WORKER),
                           mode, str(timeout)], capture_output=True, text=True, timeout=120)


@needs_mpi
@pytest.mark.parametrize("mode", ["collectives", "nccl", "ddp", "no_sync", "unused", "mismatch",
                                  "batch_mismatch", "sampler"])
def test_each_mode_passes_on_both_ranks(mode):
    done = job(mode)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"rank 0 ok {mode}" in done.stdout and f"rank 1 ok {mode}" in done.stdout


@needs_mpi
def test_a_rank_that_raises_names_itself_and_stops_the_job():
    done = job("raises")
    assert done.returncode != 0
    assert "rank 1 of 2 raised ValueError: a bug on rank 1; stopping the other ranks" in \
        done.stderr


@needs_mpi
def test_a_rank_that_dies_stops_the_job_and_the_others_time_out_with_a_message():
    killed = job("dies")  # mpiexec's own cleanup: the others are stopped at once
    assert killed.returncode != 0
    kept = job("dies", "-disable-auto-cleanup", timeout=3)  # the others alive: our timeout
    assert kept.returncode != 0
    assert "rank 0 of 2: all_reduce of a tensor of shape" in kept.stderr
    assert "did not finish within 3 s: another rank died" in kept.stderr


def test_distributed_sampler_gives_torchs_index_lists():
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    from minigrad.utils.data.distributed import DistributedSampler
    for count, ranks, drop_last in [(10, 3, False), (10, 3, True), (2, 3, False), (7, 4, True),
                                    (12, 4, False)]:
        for rank in range(ranks):
            ours = DistributedSampler(range(count), num_replicas=ranks, rank=rank, shuffle=False,
                                      drop_last=drop_last)
            theirs = TorchSampler(range(count), num_replicas=ranks, rank=rank, shuffle=False,
                                  drop_last=drop_last)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
    shuffled = [DistributedSampler(range(9), num_replicas=2, rank=r, seed=5) for r in range(2)]
    first = [list(s) for s in shuffled]
    assert set(first[0]) | set(first[1]) == set(range(9)) and len(first[0]) == len(first[1]) == 5
    for s in shuffled:
        s.set_epoch(1)
    assert [list(s) for s in shuffled] != first  # another order each epoch, the same on ranks
    assert list(DistributedSampler(range(9), num_replicas=2, rank=0, seed=5)) == first[0]
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval"):
        DistributedSampler(range(9), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="Requires distributed package"):
        DistributedSampler(range(9))


@needs_mpi
def test_mnist_trains_data_parallel_writes_one_folder_and_resumes_as_uninterrupted(data_root,
                                                                                    tmp_path):
    """mpiexec -n 2 python examples/mnist.py --distributed: rank 0 writes the run folder; a run
    stopped after epoch 1 and resumed ends where an uninterrupted run does."""
    script = Path(__file__).resolve().parent.parent / "examples" / "mnist.py"
    common = ["--distributed", "--steps-per-epoch", "30", "--data-root", str(data_root),
              "--no-progress", "--schedule", "none", "--device", "cpu"]

    def launch(*args):
        done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script), *common, *args],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    whole = launch("--epochs", "2", "--out", str(tmp_path / "whole"))
    assert "on each of 2 ranks (DistributedDataParallel over MPI)" in whole
    assert whole.count("epoch  1/2") == 1  # printed by rank 0 only
    launch("--epochs", "1", "--out", str(tmp_path / "parts"))
    resumed = launch("--epochs", "2", "--out", str(tmp_path / "parts"), "--resume")
    last = [line for line in whole.splitlines() if line.startswith("epoch  2/2")][0]
    again = [line for line in resumed.splitlines() if line.startswith("epoch  2/2")][0]
    assert last.split("lr")[1] == again.split("lr")[1]  # the same losses and accuracies
    assert sorted(p.name for p in (tmp_path / "whole").iterdir() if not p.name.startswith(".")) \
        == sorted(p.name for p in (tmp_path / "parts").iterdir() if not p.name.startswith("."))
