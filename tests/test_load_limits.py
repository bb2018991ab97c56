"""mg.load on files from someone else: one inflation budget, each entry read once, honest sizes."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad import serialization


def structure(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


def npy_bytes(array: np.ndarray) -> bytes:
    file = io.BytesIO()
    np.save(file, array)
    return file.getvalue()


def names(*tensors: str) -> str:
    return '{"list": [' + ", ".join(f'{{"tensor": "{name}"}}' for name in tensors) + "]}"


def peak_bytes_while(action):
    """What action() returns, and the most memory Python allocated while it ran."""
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- one inflation budget for the whole file ---------------------------------------------------


def test_compressed_entries_share_one_budget_checked_before_inflating(tmp_path, monkeypatch):
    path = tmp_path / "three.npz"
    zeros = np.zeros(512 << 10, dtype=np.uint8)  # each under the budget, together over it
    np.savez_compressed(path, __structure__=structure(names("t0", "t1", "t2")),
                        t0=zeros, t1=zeros, t2=zeros)
    monkeypatch.setattr(serialization, "MAX_INFLATED_BYTES", 1 << 20)
    with pytest.raises(RuntimeError, match=r"4 compressed entries \('__structure__.npy', "
                                           r"'t0.npy', 't1.npy', 't2.npy'\) would inflate to "
                                           r"1,57\d,\d+ bytes "
                                           r"together .*over the limit of 1,048,576 for the "
                                           r"whole file \(serialization.MAX_INFLATED_BYTES\)"):
        mg.load(path)
    _, peak = peak_bytes_while(lambda: pytest.raises(RuntimeError, mg.load, path))
    assert peak < 256 << 10, f"{peak:,} bytes allocated before the refusal"


def test_compressed_entries_within_the_budget_load(tmp_path, monkeypatch):
    path = tmp_path / "three.npz"
    zeros = np.zeros(256 << 10, dtype=np.uint8)
    np.savez_compressed(path, __structure__=structure(names("t0", "t1", "t2")),
                        t0=zeros, t1=zeros, t2=zeros)
    monkeypatch.setattr(serialization, "MAX_INFLATED_BYTES", 1 << 20)
    assert [t.shape for t in mg.load(path)] == [(256 << 10,)] * 3


def test_stored_entries_do_not_count_against_the_budget(tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    mg.save({"a": mg.ones(256 << 10), "b": mg.ones(256 << 10)}, path)  # 2 MiB, as mg.save writes
    monkeypatch.setattr(serialization, "MAX_INFLATED_BYTES", 1 << 20)
    assert mg.load(path)["b"].shape == (256 << 10,)


# ---- an entry named many times is read once, and its tensors share memory ---------------------


def test_an_entry_named_many_times_is_read_once_into_shared_memory(tmp_path, monkeypatch):
    path = tmp_path / "tied.npz"
    np.savez(path, __structure__=structure(
        '{"dict": [["encoder", {"tensor": "t0"}], ["decoder", {"tensor": "t0"}], '
        '["more", {"list": [{"tensor": "t0"}, {"tensor": "t1"}]}]]}'),
        t0=np.arange(6, dtype=np.float32).reshape(2, 3), t1=np.ones(2))
    opened = []
    original_open = zipfile.ZipFile.open

    def counting_open(archive, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return original_open(archive, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", counting_open)
    loaded = mg.load(path)
    assert sorted(opened) == ["__structure__.npy", "t0.npy", "t1.npy"]
    encoder, decoder, third = loaded["encoder"], loaded["decoder"], loaded["more"][0]
    assert np.shares_memory(encoder.array, decoder.array)
    assert np.shares_memory(encoder.array, third.array)
    assert not np.shares_memory(encoder.array, loaded["more"][1].array)
    decoder.mul_(2)  # as with torch.load's shared storage, every name sees an in-place change
    assert np.array_equal(encoder.detach().numpy(), np.arange(6).reshape(2, 3) * 2)
    assert encoder._version == decoder._version == third._version == 1


def test_load_holds_each_array_once_in_memory(tmp_path):
    path = tmp_path / "big.npz"
    size = 8 << 20
    mg.save({"w": mg.zeros(size // 4)}, path)
    loaded, peak = peak_bytes_while(lambda: mg.load(path))
    assert loaded["w"].shape == (size // 4,)
    assert peak < size + (2 << 20), f"loading {size:,} bytes allocated {peak:,}"


# ---- sizes in the zip directory are checked against what the file can hold -------------------


def central_header(data: bytes, name: str) -> int:
    """The offset of the zip central directory's record for entry `name`."""
    offset = data.find(b"PK\x01\x02")
    while offset >= 0:
        name_length = struct.unpack_from("<H", data, offset + 28)[0]
        if data[offset + 46:offset + 46 + name_length] == name.encode():
            return offset
        offset = data.find(b"PK\x01\x02", offset + 4)
    raise AssertionError(f"no central directory record for {name!r}")


def lying_file(tmp_path, claimed_elements: int, field: str = "file_size"):
    """A deflated t0.npy whose array header and zip directory claim `claimed_elements` float32s,
    though the compressed data holds 4 of them."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (claimed_elements,)})
    content = header.getvalue() + np.ones(4, np.float32).tobytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__structure__.npy", npy_bytes(structure('{"tensor": "t0"}')))
        archive.writestr("t0.npy", content, compress_type=zipfile.ZIP_DEFLATED)
    data = bytearray(buffer.getvalue())
    offset = central_header(bytes(data), "t0.npy")
    claimed = len(header.getvalue()) + 4 * claimed_elements
    struct.pack_into("<I", data, offset + {"compress_size": 20, "file_size": 24}[field], claimed)
    path = tmp_path / "liar.npz"
    path.write_bytes(bytes(data))
    return path, claimed


def test_a_directory_claiming_more_than_deflate_can_produce_is_refused_unallocated(tmp_path):
    path, claimed = lying_file(tmp_path, 16 << 20)  # 64 MiB from a file of a few hundred bytes
    assert path.stat().st_size < 1000
    with pytest.raises(RuntimeError, match=rf"entry 't0.npy' claims {claimed:,} bytes from "
                                           r"\d+ compressed, more than deflate can produce "
                                           r"\(at most 1,032 bytes per compressed byte"):
        mg.load(path)
    _, peak = peak_bytes_while(lambda: pytest.raises(RuntimeError, mg.load, path))
    assert peak < 1 << 20, f"{peak:,} bytes allocated for a {claimed:,}-byte claim"


def test_a_compressed_size_past_the_end_of_the_file_is_refused(tmp_path):
    path, claimed = lying_file(tmp_path, 1 << 18, field="compress_size")
    with pytest.raises(RuntimeError, match=rf"entry 't0.npy' declares {claimed:,} compressed "
                                           r"bytes at offset \d+, past the end of the file "
                                           r"\(\d+ bytes; it is truncated\)"):
        mg.load(path)


@pytest.mark.parametrize(("method", "name"), [(zipfile.ZIP_BZIP2, "bzip2"),
                                              (zipfile.ZIP_LZMA, "lzma")])
def test_compression_methods_other_than_stored_and_deflate_are_refused(tmp_path, method, name):
    path = tmp_path / "other.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__structure__.npy", npy_bytes(structure('{"tensor": "t0"}')))
        archive.writestr("t0.npy", npy_bytes(np.ones(3)), compress_type=method)
    with pytest.raises(RuntimeError, match=rf"entry 't0.npy' is compressed with {name} "
                                           rf"\(method {method}\); mg.load reads stored and "
                                           r"deflate entries only"):
        mg.load(path)


def test_savez_compressed_zeros_pass_the_deflate_ratio_check(tmp_path):
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, __structure__=structure('{"tensor": "t0"}'),
                        t0=np.zeros(4 << 20, dtype=np.uint8))
    assert mg.load(path).shape == (4 << 20,)


# ---- byte order ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">i8", ">u2"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_a_big_endian_entry_loads_in_native_byte_order(tmp_path, dtype, order):
    values = np.asarray(np.arange(6).reshape(2, 3), dtype=dtype, order=order)
    path = tmp_path / "big_endian.npz"
    np.savez(path, __structure__=structure('{"dict": [["w", {"tensor": "t0"}]]}'), t0=values)
    w = mg.load(path)["w"]
    assert w.array.dtype.isnative and w.dtype == values.dtype.newbyteorder("=")
    assert w.array.flags.c_contiguous  # as before: a Fortran-order entry is copied to C order
    assert np.array_equal(w.detach().numpy(), values)
    if dtype[1] == "f":
        product = w @ mg.ones(3, 2, dtype=w.dtype)
        assert np.array_equal(product.detach().numpy(), values @ np.ones((3, 2)))
