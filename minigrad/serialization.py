"""mg.save / mg.load: state dicts (nested dicts and lists of tensors and numbers) as .npz files.

Each tensor becomes one array entry ("t0", "t1", ...); the structure around them (dict keys, lists,
numbers, strings) is kept as JSON in the entry "__structure__". Writing goes to a temporary file in
the same folder that is then renamed over the target, so a crash mid-write never leaves a half
file where the previous one was.
"""

from __future__ import annotations

import json
import os
import secrets

from . import backend
from .tensor import Tensor

_STRUCTURE = "__structure__"


def save(obj, path) -> None:
    """Write obj (dicts, lists, tensors, arrays, numbers, strings) to path, atomically."""
    arrays: dict = {}
    structure = json.dumps(_encode(obj, arrays))
    arrays[_STRUCTURE] = backend.numpy.frombuffer(structure.encode(), dtype=backend.numpy.uint8)
    atomic_write(path, lambda file: backend.numpy.savez(file, **arrays), "save")


def atomic_write(path, write, who: str = "atomic_write") -> None:
    """Call write(file) on a temporary file beside `path`, then rename it over `path`.

    A crash or Ctrl-C before the rename leaves the previous file whole and removes the temporary.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"{who}: {folder!r} is a file, not a folder")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{who}: folder {folder!r} does not exist")
    # A fresh name next to the target ("x" mode never reuses one); unlike mkstemp's private
    # 0600 file, the result gets the permissions of any file the user creates (the umask).
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    file = open(temporary, "xb")
    try:
        with file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename makes it the file
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load(path, device=None):
    """Read what save() wrote; tensors go to `device` (default: the CPU)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}")
    try:
        with backend.numpy.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        structure = json.loads(bytes(arrays.pop(_STRUCTURE)).decode())
    except Exception as error:
        raise RuntimeError(
            f"load: {path!r} is not a minigrad .npz file or is damaged "
            f"({type(error).__name__}: {error})"
        ) from None
    device = backend.device(device)
    try:
        return _decode(structure, arrays, device)
    except (KeyError, TypeError, AttributeError) as error:  # valid JSON, but not our layout
        raise RuntimeError(
            f"load: {path!r} is not a minigrad .npz file or is damaged "
            f"(its structure does not match its arrays: {type(error).__name__}: {error})"
        ) from None


def _encode(obj, arrays: dict):
    if isinstance(obj, Tensor) or backend.is_array(obj):
        name = f"t{len(arrays)}"
        arrays[name] = backend.to_host(obj.array if isinstance(obj, Tensor) else obj)
        return {"tensor": name}
    if isinstance(obj, dict):  # pairs, so int keys (optimizer state) survive JSON
        return {"dict": [[_encode_key(k), _encode(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"list": [_encode(v, arrays) for v in obj]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    numpy_number = isinstance(obj, backend.numpy.generic) and obj.dtype.kind in "biuf"
    if numpy_number:  # e.g. numpy.float32(0.1) as a learning rate
        return {"value": obj.item()}
    raise TypeError(
        f"save: cannot store a {type(obj).__name__}; "
        "expected tensors, numbers, strings, lists and dicts"
    )


def _encode_key(key):
    if not isinstance(key, (str, int)):
        raise TypeError(f"save: dict keys must be str or int, got {key!r}")
    return key


def _decode(node, arrays: dict, device):
    if "tensor" in node:
        return Tensor(arrays[node["tensor"]], device=device)
    if "dict" in node:
        return {key: _decode(value, arrays, device) for key, value in node["dict"]}
    if "list" in node:
        return [_decode(value, arrays, device) for value in node["list"]]
    return node["value"]
