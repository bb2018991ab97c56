"""mg.save / mg.load: state dicts (nested dicts, lists and tuples of tensors and numbers) as .npz.

Each tensor becomes one array entry ("t0", "t1", ...); the structure around them (dict keys, lists,
tuples, numbers, strings) is kept as JSON in the entry "__structure__", and the device of each
tensor saved from a GPU in "__locations__" (absent when all were on the CPU). Nothing is ever
pickled, so loading a file runs no code from it. Writing to a path goes through `atomic_write`: a
temporary file beside the target, renamed over it once it is whole on disk, so a crash mid-write
never leaves a half file where the previous one was; an open binary file (or io.BytesIO) is
written where it stands. Reading takes the file's sizes from its zip directory and checks them
before anything is inflated: only the entries the structure names are read, each once, into
memory that the tensors naming it share.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import stat
import zipfile

from . import backend
from .tensor import Tensor

_STRUCTURE = "__structure__"
_LOCATIONS = "__locations__"  # {"t3": "cuda:0"}: where tensors lived when saved
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


def save(obj, f) -> None:
    """Write obj (dicts, lists, tuples, tensors, arrays, numbers, strings) to f.

    f is a path, written atomically (see atomic_write), or a binary file object such as an
    open(..., "wb") file or an io.BytesIO, written from its current position and left open.
    Nothing is written when obj holds something that cannot be stored.
    """
    arrays, locations = {}, {}
    structure = _encode(obj, arrays, locations, "")
    arrays[_STRUCTURE] = _json_array(structure)
    if locations:
        arrays[_LOCATIONS] = _json_array(locations)
    if _is_path(f):
        atomic_write(f, lambda file: backend.numpy.savez(file, **arrays), "save")
        return
    _check_file_object(f, "save", "write")
    # numpy.savez takes an object for a file only when it has a read method (never called)
    backend.numpy.savez(f if hasattr(f, "read") else _WriteOnly(f), **arrays)
    if callable(getattr(f, "flush", None)):
        f.flush()


def _json_array(value):
    return backend.numpy.frombuffer(json.dumps(value).encode(), dtype=backend.numpy.uint8)


def _is_path(f) -> bool:
    return isinstance(f, (str, bytes, os.PathLike))


def _check_file_object(f, who: str, needs: str) -> None:
    """A clear error unless f is an open binary file object with the method `needs`."""
    mode, doing = ("wb", "writing") if needs == "write" else ("rb", "reading")
    if isinstance(f, io.TextIOBase):
        raise TypeError(f"{who}: {_describe(f)} is open in text mode; open it in binary mode "
                        f"(open(path, {mode!r})) or pass the path itself")
    if not callable(getattr(f, needs, None)):
        raise TypeError(f"{who}: expected a path (str or os.PathLike) or a binary file object "
                        f"with a {needs}() method, got {type(f).__name__} {f!r:.80}")
    if getattr(f, "closed", False):
        raise ValueError(f"{who}: {_describe(f)} is closed")
    able = getattr(f, "writable" if needs == "write" else "readable", None)
    if callable(able) and not able():  # e.g. a file opened with "rb" given to save
        raise io.UnsupportedOperation(f"{who}: {_describe(f)} is not open for {doing}; open "
                                      f"it with {mode!r}")


def _describe(f) -> str:
    """How errors name a file object: its type, and its name when it has one."""
    name = getattr(f, "name", None)
    return type(f).__name__ + (f" {name!r}" if isinstance(name, (str, bytes)) else "")


class _WriteOnly:
    """A stream with only write() (and maybe flush()), as numpy.savez accepts one."""

    def __init__(self, stream):
        self.write = stream.write
        self.flush = getattr(stream, "flush", lambda: None)

    def read(self, *size):
        raise io.UnsupportedOperation("read")


def atomic_write(path, write, who: str = "atomic_write") -> None:
    """Call write(file) on a temporary file beside `path`, then rename it over `path`.

    A symbolic link is written through to its target. An existing file keeps its permission bits;
    a new one gets the umask's. Anything that is not a regular file is refused, and so is a file
    with other hard links (a rename would leave them holding the old contents). A crash or
    Ctrl-C before the rename leaves the previous file whole; the temporary is removed on every
    error, and one left by a killed process is removed by the next write to the same target.
    """
    shown = os.fsdecode(path)  # a bytes path too: the temporary's name is built from it
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


_PICKLE_ARGUMENTS = {"encoding", "errors", "fix_imports"}  # torch.load hands them to pickle


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         device=None, **pickle_load_args):
    """Read what save() wrote, from a path or from a binary file object's current position.

    Tensors go back to the device they were saved from, as in PyTorch, unless map_location says
    where: a device ("cpu", "cuda", "cuda:1" or mg.device(...)); a dict from saved locations to
    devices, {"cuda:0": "cpu"} (locations it does not name stay); or a function
    (storage, location) -> storage, called once per array with a stand-in storage on the CPU:
    return it to keep the array on the CPU, storage.cuda(i) or storage.to(device) to move it,
    None for its saved location. `device` is minigrad's older name for a device map_location.

    A minigrad file holds only tensors, numbers, strings, None, lists, tuples and dicts, and is
    never unpickled: weights_only=True and weights_only=False load the same things, and neither
    runs code from the file. mmap=True reads the arrays into memory, as mmap=False does (the
    values are the same). pickle_module must be None; PyTorch's pickle arguments (encoding,
    errors, fix_imports) are accepted and ignored, as there is no pickle to read.
    """
    _check_load_options(f, pickle_module, weights_only, mmap, pickle_load_args)
    if device is not None and map_location is not None:
        raise TypeError("load: give map_location or device (its older name), not both")
    if device is None:
        place = _placement(map_location, "map_location")
    else:
        place = _placement(device, "device")
    if _is_path(f):
        path = os.fsdecode(f)
        if not os.path.exists(path):
            raise FileNotFoundError(f"load: no such file {path!r}")
        return _load_from(path, repr(path), place)
    _check_file_object(f, "load", "read")
    if not all(callable(getattr(f, method, None)) for method in ("seek", "tell")) or (
        callable(getattr(f, "seekable", None)) and not f.seekable()
    ):
        raise io.UnsupportedOperation(
            f"load: {_describe(f)} cannot seek (a pipe or a socket?), and reading a zip file "
            "needs to; read it into memory first: load(io.BytesIO(stream.read()))"
        )
    return _load_from(f, _describe(f), place, start=f.tell())


def _check_load_options(f, pickle_module, weights_only, mmap, pickle_load_args) -> None:
    """Clear errors for the torch.load keywords that do not apply to minigrad's files."""
    if pickle_module is not None:
        raise TypeError(f"load: pickle_module={pickle_module!r:.60} does not apply: minigrad's "
                        "files hold no pickles and are never unpickled; leave it out")
    for name, value in (("weights_only", weights_only), ("mmap", mmap)):
        if not (value is None or isinstance(value, bool)):
            raise TypeError(f"load: {name} must be True, False or None, got {value!r:.60}")
    if mmap and not _is_path(f):
        raise ValueError(f"load: mmap=True needs a file path, as in PyTorch; got a "
                         f"{type(f).__name__}")
    unknown = sorted(set(pickle_load_args) - _PICKLE_ARGUMENTS)
    if unknown:
        raise TypeError(f"load() got an unexpected keyword argument {unknown[0]!r}")


def _placement(map_location, keyword: str):
    """A function from a saved location ("cpu", "cuda:0") to the Device its tensors load onto."""
    if map_location is None:  # where each tensor was saved from
        return _saved_device
    if isinstance(map_location, (str, backend.Device)):
        target = _device_named(map_location, keyword)
        return lambda saved: target
    if isinstance(map_location, dict):
        targets = {}
        for saved, target in map_location.items():
            if not isinstance(saved, str):
                raise TypeError(f"load: {keyword} has the key {saved!r}; its keys must be saved "
                                "locations, strings such as 'cpu' or 'cuda:0'")
            targets[saved] = _device_named(target, f"{keyword}[{saved!r}]")
        return lambda saved: targets[saved] if saved in targets else _saved_device(saved)
    if callable(map_location):
        return lambda saved: _call_map_location(map_location, saved, keyword)
    raise TypeError(f"load: {keyword} must be a device ('cpu', 'cuda:0' or mg.device(...)), a "
                    "dict {saved location: device} or a function (storage, location) -> "
                    f"storage; got {type(map_location).__name__} {map_location!r:.60}")


def _saved_device(saved: str):
    """The Device a saved location names ("cpu", "cuda:0"), or how to map one it does not."""
    try:
        return backend.device(saved)
    except ValueError as error:
        raise ValueError(f"load: tensors were saved on {saved!r}, not a device here ({error}); "
                         f"map it with map_location={{{saved!r}: 'cpu'}}") from None


def _device_named(spec, keyword: str):
    try:
        return backend.device(spec)
    except (TypeError, ValueError) as error:
        raise type(error)(f"load: {keyword}={spec!r:.60} is not a device: {error}") from None


def _call_map_location(function, saved: str, keyword: str):
    """The device function(storage, saved) sends an array to, as torch.load reads its answer."""
    try:
        result = function(_Storage(backend.CPU), saved)
    except AttributeError as error:
        raise AttributeError(f"load: {keyword}(storage, {saved!r}) failed ({error}); the storage "
                             "minigrad passes has only device, is_cuda, cpu(), cuda(device) "
                             "and to(device)") from None
    if result is None:  # torch: None means "where it was saved"
        return _saved_device(saved)
    if not isinstance(result, _Storage):
        raise TypeError(f"load: {keyword}(storage, {saved!r}) returned {type(result).__name__} "
                        f"{result!r:.60}; it must return the storage it was given (moved with "
                        ".cpu(), .cuda() or .to(device), or not) or None")
    return result.device


class _Storage:
    """What a map_location function gets in place of torch's storage: where the data goes."""

    def __init__(self, device):
        self.device = device

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def cpu(self):
        return _Storage(backend.CPU)

    def cuda(self, device=None, non_blocking=False):
        if isinstance(device, int):
            device = f"cuda:{device}"
        return _Storage(_device_named("cuda" if device is None else device, "storage.cuda"))

    def to(self, device, non_blocking=False):
        return _Storage(_device_named(device, "storage.to"))


def _load_from(source, shown: str, place, start=None):
    """The object saved in source: a path, or a seekable file object holding it from `start`."""
    with _reading(shown):
        archive = zipfile.ZipFile(source)
    with archive:
        if start is not None:
            _check_starts_at(archive, start, shown)
        with _reading(shown):
            file_size = os.path.getsize(source) if start is None else source.seek(0, os.SEEK_END)
            structure_entry = _entry_info(archive, _STRUCTURE, file_size)
            _check_inflation_budget([structure_entry])
            structure = _read_json(archive, structure_entry)
            names = dict.fromkeys(_tensor_names(structure))  # a name given twice is read once
            entries = {name: _entry_info(archive, name, file_size) for name in names}
            locations_entry = None
            if f"{_LOCATIONS}.npy" in archive.namelist():
                locations_entry = _entry_info(archive, _LOCATIONS, file_size)
            _check_inflation_budget([structure_entry, *entries.values()]
                                    + ([locations_entry] if locations_entry else []))
            locations = _read_locations(archive, locations_entry)
        targets = _targets(names, locations, place, shown)  # before any array is read
        with _reading(shown):
            arrays = {name: _read_entry(archive, entry) for name, entry in entries.items()}
    if start is not None:
        source.seek(0, os.SEEK_END)  # the object ends the stream: all of it was read
    return _decode(structure, arrays, targets, {})


@contextlib.contextmanager
def _reading(shown: str):
    """Any error while reading the file becomes one that names it and says it is damaged."""
    try:
        yield
    except _StructureMismatch as error:
        raise RuntimeError(
            f"load: {shown} is not a minigrad .npz file or is damaged "
            f"(its structure does not match its arrays: {error})"
        ) from None
    except Exception as error:
        raise RuntimeError(
            f"load: {shown} is not a minigrad .npz file or is damaged "
            f"({type(error).__name__}: {error})"
        ) from None


class _StructureMismatch(Exception):
    pass


def _check_starts_at(archive: zipfile.ZipFile, start: int, shown: str) -> None:
    """Refuse a stream whose saved object does not begin at its current position."""
    begins = min((info.header_offset for info in archive.infolist()), default=start)
    if begins != start:
        hint = " (call seek(0) between save and load?)" if begins < start else ""
        raise RuntimeError(
            f"load: {shown} holds a saved object beginning at byte {begins:,}, not at the "
            f"stream's current position {start:,}{hint}; load reads one object per stream, "
            "from the current position to the end"
        )


def _read_json(archive: zipfile.ZipFile, info: zipfile.ZipInfo):
    return json.loads(_read_entry(archive, info).tobytes().decode())


def _read_locations(archive: zipfile.ZipFile, info) -> dict:
    """{array name: saved location} for the tensors saved from a GPU ({} when none were)."""
    if info is None:
        return {}
    locations = _read_json(archive, info)
    if not isinstance(locations, dict) or not all(isinstance(v, str) for v in locations.values()):
        raise _StructureMismatch(f"its {_LOCATIONS} entry is not a {{array name: device}} object")
    return locations


def _targets(names, locations: dict, place, shown: str) -> dict:
    """{array name: Device}, each device checked to be usable here."""
    targets, checked = {}, set()
    for name in names:
        saved = locations.get(name, "cpu")
        targets[name] = place(saved)
        if (saved, targets[name]) in checked:
            continue
        checked.add((saved, targets[name]))
        try:
            backend.module_for(targets[name])
        except RuntimeError as error:
            raise RuntimeError(
                f"load: {shown} has tensors saved on {saved!r}, which cannot load onto "
                f"{targets[name]} here ({error}); pass map_location='cpu' to load them onto "
                "the CPU"
            ) from None
    return targets


def _tensor_names(node) -> list:
    """Every array name the structure refers to, checking the structure's shape on the way."""
    if not isinstance(node, dict) or len(node) != 1:
        raise _StructureMismatch(f"unexpected node {str(node)[:80]}")
    (kind, value), = node.items()
    if kind == "tensor" and isinstance(value, str) and value not in (_STRUCTURE, _LOCATIONS):
        return [value]
    if kind == "dict" and isinstance(value, list):
        if not all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
                   for pair in value):
            raise _StructureMismatch("a dict entry is not a [key, value] pair")
        return [name for _, child in value for name in _tensor_names(child)]
    if kind in ("list", "tuple") and isinstance(value, list):
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


def _encode(obj, arrays: dict, locations: dict, where: str):
    """The JSON structure of obj; arrays go into `arrays`, GPU arrays' devices into `locations`."""
    if isinstance(obj, Tensor) or backend.is_array(obj):
        array = obj.array if isinstance(obj, Tensor) else obj
        host = backend.to_host(array)
        if host.dtype.kind not in _STORABLE_KINDS:  # loading it would need pickle, or fail
            raise TypeError(
                f"save: cannot store {where or 'the object'}: an array of dtype {host.dtype}; "
                "mg.save stores arrays of bool, int, uint and float only"
            )
        name = f"t{len(arrays)}"
        arrays[name] = host
        if backend.device_of(array) is not backend.CPU:
            locations[name] = str(backend.device_of(array))
        return {"tensor": name}
    if isinstance(obj, dict):  # pairs, so int keys (optimizer state) survive JSON
        return {"dict": [[_encode_key(k), _encode(v, arrays, locations, f"{where}[{k!r}]")]
                         for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "tuple" if isinstance(obj, tuple) else "list"  # Adam's betas stay a tuple
        return {kind: [_encode(v, arrays, locations, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    numpy_number = isinstance(obj, backend.numpy.generic) and obj.dtype.kind in "biuf"
    if numpy_number:  # e.g. numpy.float32(0.1) as a learning rate
        return {"value": obj.item()}
    at = f" at {where}" if where else ""
    if callable(getattr(obj, "state_dict", None)):  # a model, an optimizer, a scheduler
        raise TypeError(_whole_object_message(obj, at))
    raise TypeError(f"save: cannot store a {type(obj).__name__}{at}; expected tensors, numbers, "
                    "strings, lists, tuples and dicts")


def _whole_object_message(obj, at: str) -> str:
    """What to save instead of a whole model or optimizer: its state_dict(), as PyTorch advises."""
    kind = type(obj).__name__
    if hasattr(obj, "param_groups"):  # told apart by what they have: this layer is below nn
        holder = "optimizer"
    elif callable(getattr(obj, "parameters", None)):
        holder = "model"
    else:
        holder = "obj"
    return (f"save: cannot store a whole {kind}{at}: minigrad saves data (tensors, numbers, "
            "strings, lists, tuples, dicts), never objects or their code. Save its state dict "
            f"instead, save({holder}.state_dict(), path), and to load it, build the {kind} and "
            f"call {holder}.load_state_dict(load(path)) (PyTorch's recommended way)")


def _encode_key(key):
    if not isinstance(key, (str, int)):
        raise TypeError(f"save: dict keys must be str or int, got {key!r}")
    return key


def _decode(node, arrays: dict, targets: dict, tensors: dict):
    """The object the structure describes; every tensor naming one array shares its memory."""
    if "tensor" in node:
        name = node["tensor"]
        if name in tensors:  # as torch.load's shared storage: same memory, same version counter
            return tensors[name].detach()
        # The array was just read into a buffer nothing else holds: the tensor takes it as is.
        array = backend.to_device(arrays[name], targets[name])
        tensors[name] = Tensor._wrap_no_copy_no_checks(array, targets[name])
        return tensors[name]
    if "dict" in node:
        return {key: _decode(value, arrays, targets, tensors) for key, value in node["dict"]}
    if "tuple" in node:
        return tuple(_decode(value, arrays, targets, tensors) for value in node["tuple"])
    if "list" in node:
        return [_decode(value, arrays, targets, tensors) for value in node["list"]]
    return node["value"]
