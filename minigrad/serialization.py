"""mg.save / mg.load: state dicts (nested dicts and lists of tensors and numbers) as .npz files.

Each tensor becomes one array entry ("t0", "t1", ...); the structure around them (dict keys, lists,
numbers, strings) is kept as JSON in the entry "__structure__". Writing goes through
`atomic_write`: a temporary file beside the target, renamed over it once it is whole on disk, so
a crash mid-write never leaves a half file where the previous one was. Reading takes the file's
sizes from its zip directory and checks them before anything is inflated: only the entries the
structure names are read, each once, into memory that the tensors naming it share.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import zipfile

from . import backend
from .tensor import Tensor

_STRUCTURE = "__structure__"
# mg.save stores entries uncompressed; the entries of one file that someone compressed are
# inflated only up to this many bytes all together, so a small file cannot claim gigabytes of
# memory (a "zip bomb"). Stored entries are bounded by the file's own size.
MAX_INFLATED_BYTES = 1 << 30
# Deflate turns one compressed byte into at most 1,032 (a 258-byte match per 2 bits); the slack
# covers a stream's first bytes.
_DEFLATE_MAX_RATIO, _DEFLATE_SLACK = 1032, 1024
_READABLE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_OTHER_METHODS = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma", 9: "deflate64",
                  93: "zstd"}
_LOCAL_HEADER_BYTES = 30  # the fixed part of the header before each entry's data
_READ_CHUNK = 1 << 18  # an entry is read in pieces, so no second copy of it is ever whole
_STORABLE_KINDS = {"b": "bool", "i": "signed int", "u": "unsigned int", "f": "float"}
_PARTIAL = ".partial-"  # temporaries are named .<target>.partial-<pid>-<random hex>


def save(obj, path) -> None:
    """Write obj (dicts, lists, tensors, arrays, numbers, strings) to path, atomically."""
    arrays: dict = {}
    structure = json.dumps(_encode(obj, arrays, ""))
    arrays[_STRUCTURE] = backend.numpy.frombuffer(structure.encode(), dtype=backend.numpy.uint8)
    atomic_write(path, lambda file: backend.numpy.savez(file, **arrays), "save")


def atomic_write(path, write, who: str = "atomic_write") -> None:
    """Call write(file) on a temporary file beside `path`, then rename it over `path`.

    A symbolic link is written through to its target. An existing file keeps its permission bits;
    a new one gets the umask's. Anything that is not a regular file is refused, and so is a file
    with other hard links (a rename would leave them holding the old contents). A crash or
    Ctrl-C before the rename leaves the previous file whole; the temporary is removed on every
    error, and one left by a killed process is removed by the next write to the same target.
    """
    shown = os.fspath(path)
    target = os.path.realpath(shown)  # through symbolic links, so the link stays a link
    folder, name = os.path.split(target)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"{who}: {folder!r} is a file, not a folder")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{who}: folder {folder!r} does not exist")
    previous = _check_target(shown, target, who)
    _remove_stale_partials(folder, name)
    temporary = os.path.join(folder, f".{name}{_PARTIAL}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        # "x" never reuses a name; unlike mkstemp's private 0600 file, a new file gets the
        # permissions of any file the user creates (the umask).
        file = open(temporary, "xb")
    except OSError as error:  # name the user's path, not our temporary's
        raise type(error)(error.errno, f"{who}: cannot write {shown!r} ({error.strerror}; "
                                       f"a new file in {folder!r} could not be created)") from None
    try:
        with file:
            if previous is not None:
                _keep_mode_and_owner(file.fileno(), previous)
            write(file)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename makes it the file
        os.replace(temporary, target)
    except BaseException:
        if os.path.lexists(temporary):
            os.remove(temporary)
        raise
    _fsync_folder(folder)  # the rename itself survives a power cut


def _check_target(shown: str, target: str, who: str):
    """The target's os.stat result (None when it does not exist yet), or a clear error."""
    where = repr(shown) if shown == target else f"{shown!r} (a link to {target!r})"
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{who}: {where} is a folder; give a file name inside it")
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"{who}: {where} is {_kind(info.st_mode)}, not a regular file; "
                      "only regular files are written")
    if info.st_nlink > 1:
        raise OSError(f"{who}: {where} has {info.st_nlink} hard links; replacing it would "
                      "leave the other names with the old contents, so it is not written "
                      "(remove the other links, or write to a new name)")
    return info


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _keep_mode_and_owner(descriptor: int, previous) -> None:
    os.fchmod(descriptor, stat.S_IMODE(previous.st_mode))  # a private 0600 file stays private
    if (previous.st_uid, previous.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(descriptor, previous.st_uid, previous.st_gid)
        except PermissionError:  # only root may give a file away; it becomes the writer's
            pass


def _remove_stale_partials(folder: str, name: str) -> None:
    """Remove temporaries of this target whose writing process no longer exists."""
    pattern = re.compile(re.escape(f".{name}{_PARTIAL}") + r"(\d+)-[0-9a-f]+")
    for entry in os.listdir(folder):
        match = pattern.fullmatch(entry)
        if match and not _process_exists(int(match.group(1))):
            try:
                os.remove(os.path.join(folder, entry))
            except FileNotFoundError:  # another writer cleaned it first
                pass


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OverflowError, ValueError):  # not a process id at all
        return False
    return True


def _fsync_folder(folder: str) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some systems cannot open folders; the data itself is already synced
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def load(path, device=None):
    """Read what save() wrote; tensors go to `device` (default: the CPU)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}")
    device = backend.device(device)
    try:
        file_size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            structure_entry = _entry_info(archive, _STRUCTURE, file_size)
            _check_inflation_budget([structure_entry])
            structure = json.loads(_read_entry(archive, structure_entry).tobytes().decode())
            names = dict.fromkeys(_tensor_names(structure))  # a name given twice is read once
            entries = {name: _entry_info(archive, name, file_size) for name in names}
            _check_inflation_budget([structure_entry, *entries.values()])
            arrays = {name: _read_entry(archive, entry) for name, entry in entries.items()}
    except _StructureMismatch as error:
        raise RuntimeError(
            f"load: {path!r} is not a minigrad .npz file or is damaged "
            f"(its structure does not match its arrays: {error})"
        ) from None
    except Exception as error:
        raise RuntimeError(
            f"load: {path!r} is not a minigrad .npz file or is damaged "
            f"({type(error).__name__}: {error})"
        ) from None
    return _decode(structure, arrays, {}, device)


class _StructureMismatch(Exception):
    pass


def _tensor_names(node) -> list:
    """Every array name the structure refers to, checking the structure's shape on the way."""
    if not isinstance(node, dict) or len(node) != 1:
        raise _StructureMismatch(f"unexpected node {str(node)[:80]}")
    (kind, value), = node.items()
    if kind == "tensor" and isinstance(value, str) and value != _STRUCTURE:
        return [value]
    if kind == "dict" and isinstance(value, list):
        if not all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
                   for pair in value):
            raise _StructureMismatch("a dict entry is not a [key, value] pair")
        return [name for _, child in value for name in _tensor_names(child)]
    if kind == "list" and isinstance(value, list):
        return [name for child in value for name in _tensor_names(child)]
    if kind == "value" and (value is None or isinstance(value, (bool, int, float, str))):
        return []
    raise _StructureMismatch(f"unexpected node {str(node)[:80]}")


def _entry_info(archive: zipfile.ZipFile, name: str, file_size: int) -> zipfile.ZipInfo:
    """The zip directory's record of name.npy, its sizes checked against what the file holds."""
    try:
        info = archive.getinfo(f"{name}.npy")
    except KeyError:
        raise _StructureMismatch(f"the structure names an array {name!r} that is not in the "
                                 "file") from None
    method = info.compress_type
    if method not in _READABLE_METHODS:
        raise ValueError(f"entry {info.filename!r} is compressed with "
                         f"{_OTHER_METHODS.get(method, 'an unknown method')} (method {method}); "
                         "mg.load reads stored and deflate entries only (mg.save writes stored, "
                         "numpy.savez_compressed deflate)")
    data_end = info.header_offset + _LOCAL_HEADER_BYTES + info.compress_size
    if data_end > file_size:
        raise ValueError(f"entry {info.filename!r} declares {info.compress_size:,} compressed "
                         f"bytes at offset {info.header_offset:,}, past the end of the file "
                         f"({file_size:,} bytes; it is truncated)")
    if method == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise ValueError(f"entry {info.filename!r} is stored with two different sizes "
                         f"({info.file_size:,} and {info.compress_size:,} bytes)")
    most = info.compress_size * _DEFLATE_MAX_RATIO + _DEFLATE_SLACK
    if method == zipfile.ZIP_DEFLATED and info.file_size > most:
        raise ValueError(f"entry {info.filename!r} claims {info.file_size:,} bytes from "
                         f"{info.compress_size:,} compressed, more than deflate can produce (at "
                         f"most {_DEFLATE_MAX_RATIO:,} bytes per compressed byte, so {most:,}); "
                         "its zip directory is damaged or forged")
    return info


def _check_inflation_budget(entries: list) -> None:
    """Refuse when the compressed entries together would inflate past MAX_INFLATED_BYTES."""
    compressed = [info for info in entries if info.compress_type != zipfile.ZIP_STORED]
    inflated = sum(info.file_size for info in compressed)
    if inflated <= MAX_INFLATED_BYTES:
        return
    alone = [info for info in compressed if info.file_size > MAX_INFLATED_BYTES]
    if alone:  # one entry over the limit by itself: name it alone
        what = (f"entry {alone[0].filename!r} would inflate to {alone[0].file_size:,} bytes "
                f"from {alone[0].compress_size:,}")
    else:
        shown = ", ".join(repr(info.filename) for info in compressed[:4])
        shown += ", ..." if len(compressed) > 4 else ""
        packed = sum(info.compress_size for info in compressed)
        what = (f"{len(compressed)} compressed entries ({shown}) would inflate to "
                f"{inflated:,} bytes together from {packed:,}")
    raise ValueError(f"{what}, over the limit of {MAX_INFLATED_BYTES:,} for the whole file "
                     "(serialization.MAX_INFLATED_BYTES)")


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo):
    """The array stored in the entry, in native byte order, in one buffer read once.

    The entry's zip sizes are checked (_entry_info) before this inflates anything; its array
    header is checked against them before the buffer is allocated.
    """
    numpy = backend.numpy
    with archive.open(info) as entry:
        version = numpy.lib.format.read_magic(entry)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"entry {info.filename!r} is .npy version {version}, expected 1.0 "
                             "or 2.0")
        read_header = getattr(numpy.lib.format, f"read_array_header_{version[0]}_0")
        shape, fortran_order, dtype = read_header(entry)
        if dtype.kind not in _STORABLE_KINDS:  # never unpickle: minigrad writes numbers only
            raise ValueError(f"entry {info.filename!r} holds dtype {dtype}, which mg.save never "
                             "writes (it stores bool, int, uint and float arrays only)")
        count = 1
        for size in shape:
            count *= size
        header_size = entry.tell()
        if header_size + count * dtype.itemsize != info.file_size:
            raise ValueError(f"entry {info.filename!r}: shape {shape} of {dtype} needs "
                             f"{count * dtype.itemsize:,} bytes, the entry has "
                             f"{info.file_size - header_size:,}")
        buffer = bytearray(count * dtype.itemsize)  # writable, so the tensor can own it
        view, filled = memoryview(buffer), 0
        while filled < len(buffer):
            chunk = entry.read(min(_READ_CHUNK, len(buffer) - filled))
            if not chunk:
                raise ValueError(f"entry {info.filename!r} ends early ({filled:,} of "
                                 f"{len(buffer):,} array bytes)")
            view[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
    array = numpy.frombuffer(buffer, dtype=dtype.newbyteorder("="))
    if not dtype.isnative:  # e.g. '>f4' from a big-endian machine: swapped where it lies
        array.byteswap(inplace=True)
    if fortran_order:  # a transposed array was saved: one copy, as tensors start C-contiguous
        return numpy.ascontiguousarray(array.reshape(shape, order="F"))
    return array.reshape(shape)


def _encode(obj, arrays: dict, where: str):
    if isinstance(obj, Tensor) or backend.is_array(obj):
        array = backend.to_host(obj.array if isinstance(obj, Tensor) else obj)
        if array.dtype.kind not in _STORABLE_KINDS:  # loading it would need pickle, or fail
            raise TypeError(
                f"save: cannot store {where or 'the object'}: an array of dtype {array.dtype}; "
                "mg.save stores arrays of bool, int, uint and float only"
            )
        name = f"t{len(arrays)}"
        arrays[name] = array
        return {"tensor": name}
    if isinstance(obj, dict):  # pairs, so int keys (optimizer state) survive JSON
        return {"dict": [[_encode_key(k), _encode(v, arrays, f"{where}[{k!r}]")]
                         for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"list": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    numpy_number = isinstance(obj, backend.numpy.generic) and obj.dtype.kind in "biuf"
    if numpy_number:  # e.g. numpy.float32(0.1) as a learning rate
        return {"value": obj.item()}
    raise TypeError(
        f"save: cannot store a {type(obj).__name__}" + (f" at {where}" if where else "") + "; "
        "expected tensors, numbers, strings, lists and dicts"
    )


def _encode_key(key):
    if not isinstance(key, (str, int)):
        raise TypeError(f"save: dict keys must be str or int, got {key!r}")
    return key


def _decode(node, arrays: dict, tensors: dict, device):
    """The object the structure describes; every tensor naming one array shares its memory."""
    if "tensor" in node:
        name = node["tensor"]
        if name in tensors:  # as torch.load's shared storage: same memory, same version counter
            return tensors[name].detach()
        # The array was just read into a buffer nothing else holds: the tensor takes it as is.
        array = backend.to_device(arrays[name], device)
        tensors[name] = Tensor._wrap_no_copy_no_checks(array, device)
        return tensors[name]
    if "dict" in node:
        return {key: _decode(value, arrays, tensors, device) for key, value in node["dict"]}
    if "list" in node:
        return [_decode(value, arrays, tensors, device) for value in node["list"]]
    return node["value"]
