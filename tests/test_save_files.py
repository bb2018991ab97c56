"""mg.save and mg.load on the file system: links, special files, modes, kills, hostile archives."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import serialization

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def saved_version(path) -> int:
    return mg.load(path)["version"]


# ---- links, special files and modes -----------------------------------------------------------


def test_save_over_a_symbolic_link_writes_its_target(tmp_path):
    target = tmp_path / "real.npz"
    mg.save({"version": 1}, target)
    link = tmp_path / "link.npz"
    link.symlink_to(target.name)
    mg.save({"version": 2}, link)
    assert link.is_symlink() and os.readlink(link) == target.name
    assert saved_version(target) == 2


def test_save_over_a_dangling_symbolic_link_creates_its_target(tmp_path):
    link = tmp_path / "link.npz"
    link.symlink_to("made-later.npz")
    mg.save({"version": 1}, link)
    assert link.is_symlink() and saved_version(tmp_path / "made-later.npz") == 1


def test_save_refuses_a_file_with_other_hard_links(tmp_path):
    first = tmp_path / "a.npz"
    mg.save({"version": 1}, first)
    os.link(first, tmp_path / "b.npz")
    with pytest.raises(OSError, match=r"a.npz' has 2 hard links"):
        mg.save({"version": 2}, first)
    assert os.stat(first).st_ino == os.stat(tmp_path / "b.npz").st_ino
    assert saved_version(first) == 1 and sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz"]


def test_save_refuses_a_named_pipe(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"pipe.npz' is a named pipe \(FIFO\), not a regular file"):
        mg.save({"version": 1}, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe.npz"]


def test_save_refuses_a_device_node(tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    except PermissionError:
        pytest.skip("making a device node needs root")
    with pytest.raises(OSError, match="is a character device, not a regular file"):
        mg.save({"version": 1}, node)
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_save_through_a_link_to_a_device_names_both(tmp_path):
    link = tmp_path / "out.npz"
    link.symlink_to("/dev/null")
    with pytest.raises(OSError, match=r"out.npz' \(a link to '/dev/null'\).* character device"):
        mg.save({"version": 1}, link)
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604])
def test_save_keeps_the_mode_of_the_file_it_replaces(tmp_path, mode):
    path = tmp_path / "private.npz"
    mg.save({"version": 1}, path)
    path.chmod(mode)
    mg.save({"version": 2}, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode and saved_version(path) == 2


# ---- temporaries: named, removed, cleaned after a kill ----------------------------------------


def test_a_killed_save_leaves_a_named_partial_that_the_next_save_removes(tmp_path):
    path = tmp_path / "model.npz"
    mg.save({"version": 1}, path)
    killed = textwrap.dedent(f"""
        import os, numpy as np, minigrad as mg
        def savez_then_die(file, **arrays):
            file.write(b"PK half a zip"); file.flush(); os._exit(9)
        np.savez = savez_then_die
        mg.save({{"version": 2}}, {str(path)!r})
    """)
    repo = str(Path(__file__).resolve().parent.parent)
    left = []
    for _ in range(2):  # the second killed save removes the first one's partial
        result = subprocess.run([sys.executable, "-c", killed], timeout=60,
                                env={**os.environ, "PYTHONPATH": repo})
        assert result.returncode == 9
        left.append(sorted(name for name in os.listdir(tmp_path) if name != "model.npz"))
    assert [len(names) for names in left] == [1, 1] and left[0] != left[1]
    assert left[1][0].startswith(".model.npz.partial-")
    assert saved_version(path) == 1
    mg.save({"version": 3}, path)
    assert os.listdir(tmp_path) == ["model.npz"] and saved_version(path) == 3


def test_save_leaves_the_partial_of_a_live_writer_alone(tmp_path):
    live = tmp_path / f".model.npz.partial-{os.getppid()}-0a1b2c3d"
    other_target = tmp_path / ".other.npz.partial-999999999-0a1b2c3d"
    live.write_bytes(b"being written")
    other_target.write_bytes(b"someone else's")
    mg.save({"version": 1}, tmp_path / "model.npz")
    assert live.exists() and other_target.exists()


def test_a_read_only_folder_error_names_the_users_path(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    if IS_ROOT:  # root writes into read-only folders: make the create fail as it would
        def refused(name, mode="r", *args, **kwargs):
            raise PermissionError(13, "Permission denied", name)
        monkeypatch.setattr(serialization, "open", refused, raising=False)
    else:
        tmp_path.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as error:
            mg.save({"version": 1}, path)
    finally:
        tmp_path.chmod(0o755)
    message = str(error.value)
    assert f"cannot write {str(path)!r}" in message and "Permission denied" in message
    assert "partial" not in message and ".tmp" not in message
    assert os.listdir(tmp_path) == []


# ---- what save refuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(np.array(["a", "bc"]), "<U2"), (np.array([b"a"]), "|S1"),
     (np.array([{}, None], dtype=object), "object"), (np.array([1 + 2j]), "complex128")],
)
def test_save_refuses_arrays_it_could_not_load_naming_key_and_dtype(tmp_path, value, dtype):
    with pytest.raises(TypeError, match=rf"cannot store \['layers'\]\[1\]: an array of dtype "
                                        rf"{dtype}"):
        mg.save({"layers": [np.ones(2), value]}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "write",
    [lambda p: p.write_bytes(b"garbage" * 20),
     lambda p: np.savez(p, __structure__=np.frombuffer(b'{"tensor": "a"}', np.uint8),
                        a=np.array([{}], dtype=object))],
    ids=["garbage", "pickled-objects"],
)
def test_load_errors_never_suggest_allow_pickle(tmp_path, write):
    path = tmp_path / "x.npz"
    write(path)
    with pytest.raises(RuntimeError, match="is not a minigrad .npz file or is damaged") as error:
        mg.load(path)
    assert "pickle" not in str(error.value)


# ---- hostile archives: nothing inflated that is not asked for, or too big ---------------------


def structure(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


def test_load_reads_only_the_entries_the_structure_names(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, __structure__=structure('{"tensor": "t0"}'), t0=np.ones(3),
                        unused=np.zeros(8 << 20, dtype=np.uint8))
    assert path.stat().st_size < 100_000  # 8 MiB of zeros compress to almost nothing
    tracemalloc.start()
    try:
        loaded = mg.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(loaded.detach().numpy(), np.ones(3))
    assert peak < 2 << 20, f"loading inflated {peak:,} bytes"


def test_load_refuses_an_entry_that_would_inflate_over_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, __structure__=structure('{"list": [{"tensor": "t1"}]}'),
                        t1=np.zeros(2 << 20, dtype=np.uint8))
    monkeypatch.setattr(serialization, "MAX_INFLATED_BYTES", 1 << 20)
    with pytest.raises(RuntimeError, match=r"entry 't1.npy' would inflate to 2,097,\d+ bytes "
                                           r"from [\d,]+, over the limit of 1,048,576"):
        mg.load(path)


def test_load_refuses_an_array_header_that_claims_more_than_the_entry_holds(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (4_000_000_000,)})
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__structure__.npy", npy_bytes(structure('{"tensor": "t0"}')))
        archive.writestr("t0.npy", header.getvalue() + np.ones(4, np.float32).tobytes())
    with pytest.raises(RuntimeError, match=r"t0.npy': shape \(4000000000,\) of float32 needs "
                                           r"16,000,000,000 bytes, the entry has 16"):
        mg.load(path)


def npy_bytes(array: np.ndarray) -> bytes:
    file = io.BytesIO()
    np.save(file, array)
    return file.getvalue()
