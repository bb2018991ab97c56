"""The array backend: the only module that imports NumPy (and, lazily, CuPy).

Everything device-specific lives here: parsing device names, picking the array module
(numpy or cupy) for a device or an array, moving arrays between host and GPU, dtypes,
and the seeded random generators.
"""

from __future__ import annotations

import importlib

import numpy

ndarray = numpy.ndarray
float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")
int64 = numpy.dtype("int64")
bool_ = numpy.dtype("bool")
uint64 = numpy.dtype("uint64")
float16 = numpy.dtype("float16")
int32 = numpy.dtype("int32")
int16 = numpy.dtype("int16")
int8 = numpy.dtype("int8")
uint8 = numpy.dtype("uint8")

# PyTorch's names for each dtype (torch.float is float32, torch.int is int32, torch.long int64).
_DTYPES = {
    "float16": float16,
    "half": float16,
    "float32": float32,
    "float": float32,
    "float64": float64,
    "double": float64,
    "int64": int64,
    "long": int64,
    "int32": int32,
    "int": int32,
    "int16": int16,
    "short": int16,
    "int8": int8,
    "uint8": uint8,
    "bool": bool_,
}

# PyTorch's legacy type names, as tensor.type() returns them.
TYPE_NAMES = {
    float16: "HalfTensor", float32: "FloatTensor", float64: "DoubleTensor", int64: "LongTensor",
    int32: "IntTensor", int16: "ShortTensor", int8: "CharTensor", uint8: "ByteTensor",
    bool_: "BoolTensor",
}


def scalar_name(dtype) -> str:
    """PyTorch's name for a dtype in its messages: 'Float', 'Long', 'Bool', ..."""
    return TYPE_NAMES.get(numpy.dtype(dtype), str(dtype)).removesuffix("Tensor")


_default_dtype = [float32]  # what Python floats and the float factories give


def get_default_dtype() -> numpy.dtype:
    """The dtype that Python floats give (float32 unless set_default_dtype changed it)."""
    return _default_dtype[0]


def set_default_dtype(d) -> None:
    """Make Python floats and the float factories give `d` (a floating-point dtype)."""
    d = dtype(d)
    if d is None or d.kind != "f":
        raise TypeError("only floating-point types are supported as the default type")
    _default_dtype[0] = d


class Device:
    """A place where arrays live: "cpu" or "cuda:N". Instances are interned, so `is` compares."""

    __slots__ = ("type", "index")

    def __init__(self, type: str, index: int | None):
        self.type = type
        self.index = index

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (
            f", index={self.index})" if self.index is not None else ")"
        )

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = Device("cpu", None)
_CUDA_DEVICES: dict[int, Device] = {}
_default_device = [CPU]  # where factories and layers put tensors when no device is given


def device(spec: str | Device | None) -> Device:
    """Parse "cpu", "cuda" or "cuda:N" (or a Device) into an interned Device; None is the
    default device (the CPU unless set_default_device changed it)."""
    if spec is None:
        return _default_device[0]
    if spec is CPU:
        return CPU
    if isinstance(spec, Device):
        spec = str(spec)  # a hand-made Device("cpu", None) must become the interned CPU
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
    name, _, index = spec.strip().partition(":")
    if name == "cpu" and index in ("", "0"):  # "cpu:0" is the CPU too, as in PyTorch
        return CPU
    if name == "cuda" and (not index or index.isdigit()):
        return _cuda_device(int(index) if index else 0)
    raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def set_default_device(spec) -> None:
    """Make factories and layers create tensors on `spec` when no device is given."""
    _default_device[0] = CPU if spec is None else device(spec)


def get_default_device() -> Device:
    """The device factories use when none is given."""
    return _default_device[0]


def _cuda_device(index: int) -> Device:
    if index not in _CUDA_DEVICES:
        _CUDA_DEVICES[index] = Device("cuda", index)
    return _CUDA_DEVICES[index]


# ---- CuPy, imported only when a CUDA device is asked for -------------------------------------

_cupy = None


def cupy_module():
    """Import CuPy on first use; raise a clear error when it or a GPU is missing."""
    global _cupy
    if _cupy is None:
        try:
            _cupy = importlib.import_module("cupy")
        except ImportError as error:
            raise RuntimeError(
                "device 'cuda' needs CuPy, which is not installed: pip install cupy-cuda13x "
                "(or cupy-cuda12x, to match your CUDA driver; in a checkout: "
                "pip install -e '.[cuda13]')"
            ) from error
    return _cupy


def nccl_module():
    """CuPy's NCCL binding (cupy.cuda.nccl), for the 'nccl' distributed backend."""
    cupy_module()
    try:
        return importlib.import_module("cupy.cuda.nccl")
    except ImportError as error:
        raise RuntimeError("backend='nccl' needs CuPy built with NCCL (cupy.cuda.nccl could not "
                           f"be imported: {error}); use backend='mpi' for CPU tensors") from error


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one GPU; never raises."""
    try:
        return cupy_module().cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def cuda_device_count() -> int:
    """Number of visible GPUs (0 without CuPy or a GPU)."""
    try:
        return cupy_module().cuda.runtime.getDeviceCount()
    except Exception:
        return 0


_cuda_devices_seen: dict = {}  # id(cupy module) -> the device indices already found to exist


def _check_cuda(dev: Device):
    """CuPy, once the device is known to exist (asked of the driver once per device: module_for
    runs on every op and every backward)."""
    xp = cupy_module()
    seen = _cuda_devices_seen.setdefault(id(xp), set())
    if dev.index in seen:
        return xp
    count = cuda_device_count()
    if dev.index >= count:
        raise RuntimeError(
            f"device '{dev}' is not available: this machine has {count} CUDA device(s)"
        )
    seen.add(dev.index)
    return xp


# ---- array modules, dtypes and transfers -----------------------------------------------------


def array_module(array):
    """The module (numpy or cupy) that owns an array."""
    if type(array) is ndarray or _cupy is None:
        return numpy
    return _cupy.get_array_module(array)


def module_for(dev: Device):
    """The array module for a device."""
    return numpy if dev is CPU else _check_cuda(dev)


def device_of(array) -> Device:
    """The Device an array lives on."""
    if type(array) is ndarray or _cupy is None or not isinstance(array, _cupy.ndarray):
        return CPU
    return _cuda_device(array.device.id)


def is_array(obj) -> bool:
    """True for a numpy or cupy ndarray."""
    return isinstance(obj, ndarray) or (_cupy is not None and isinstance(obj, _cupy.ndarray))


def is_cuda_array(obj) -> bool:
    """True for a cupy ndarray (an array on a GPU); never imports CuPy."""
    return _cupy is not None and isinstance(obj, _cupy.ndarray)


def dtype(spec) -> numpy.dtype | None:
    """Turn a dtype argument ("float64", numpy.float64, a dtype, None) into a numpy dtype."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in _DTYPES:
            raise TypeError(f"unknown dtype {spec!r}: expected one of {sorted(_DTYPES)}")
        return _DTYPES[spec]
    try:
        return numpy.dtype(spec)
    except TypeError as error:
        raise TypeError(f"unknown dtype {spec!r}") from error


def dtype_names() -> list:
    """The dtype names accepted as strings."""
    return sorted(_DTYPES)


def is_floating(dt) -> bool:
    """True for floating-point dtypes (the only ones that can require grad)."""
    return numpy.dtype(dt).kind == "f"


def as_array(data, dt=None, dev: Device = CPU):
    """Convert Python numbers, lists, NumPy or CuPy arrays into an array on `dev`.

    Python floats become the default dtype (float32) and ints int64, as in PyTorch; arrays keep
    their dtype.
    """
    if isinstance(data, numpy.ma.MaskedArray):
        raise TypeError(
            "cannot make a tensor from a masked array: its mask would be lost; pass "
            "array.filled(value) (or array.data to ignore the mask)"
        )
    if isinstance(data, ndarray) and type(data) is not ndarray:  # np.matrix: a plain array
        data = numpy.asarray(data)
    if not is_array(data):
        try:
            host = numpy.asarray(data)
        except ValueError as error:  # NumPy's "inhomogeneous shape" for ragged lists
            raise ValueError(
                f"cannot make a tensor from a ragged nested {type(data).__name__}: every row "
                f"must have the same length ({error})"
            ) from None
        if dt is None and host.dtype == float64 and not isinstance(data, numpy.generic):
            dt = _default_dtype[0]
    else:
        host = data
    if host.dtype.kind in "OUSVMm":  # objects, strings, bytes, void, dates: not numbers
        raise TypeError(
            f"cannot make a tensor from {type(data).__name__} with {host.dtype} elements: "
            "expected numbers, nested lists of numbers of equal lengths, or an array"
        )
    array = to_device(host, dev)
    if dt is not None and array.dtype != dt:
        array = array.astype(dt)
    return array


def to_device(array, dev: Device):
    """Move an array to a device (a no-op when it is already there)."""
    if dev is CPU:
        return array if type(array) is ndarray or not hasattr(array, "get") else array.get()
    xp = _check_cuda(dev)
    with xp.cuda.Device(dev.index):
        return xp.asarray(array)


def to_host(array):
    """A NumPy array with the same values (a copy when the array lives on a GPU)."""
    return array.get() if hasattr(array, "get") and not isinstance(array, ndarray) else array


def ensure_array(value, xp):
    """Reductions return scalars (numpy.float32); wrap them as 0-d arrays."""
    return value if isinstance(value, xp.ndarray) else xp.asarray(value)


def is_scalar(value) -> bool:
    """True for a NumPy scalar (numpy.float32(1.0)): what full reductions return on the CPU."""
    return isinstance(value, numpy.generic)


def can_cast(source, target) -> bool:
    """Whether an in-place result of dtype `source` may be written into `target` (PyTorch's rule:
    not float into int, nor int into bool)."""
    return bool(numpy.can_cast(source, target, casting="same_kind"))


def _address(array) -> int:
    return array.data.ptr if is_cuda_array(array) else array.__array_interface__["data"][0]


def flat_positions(view, base):
    """For each element of `view`, the index in base.reshape(-1) (C order) of the base element on
    the same memory: an int64 array shaped like view. None when base does not lay its elements
    out densely (in some order of its dims), so that an address does not name one element."""
    xp = array_module(base)
    itemsize = base.itemsize
    offset, remainder = divmod(_address(view) - _address(base), itemsize)
    if remainder or any(stride % itemsize for stride in view.strides + base.strides):
        return None
    # Each view element's distance from the base's first element, in elements.
    distance = xp.full(view.shape, offset, dtype=int64)
    for axis, (size, stride) in enumerate(zip(view.shape, view.strides, strict=True)):
        step = xp.arange(size, dtype=int64) * (stride // itemsize)
        distance = distance + step.reshape([-1 if a == axis else 1 for a in range(view.ndim)])
    # Read the distance back as the base's index along each dim, largest stride first: this
    # works when each dim's stride is the product of the sizes of the dims with smaller ones.
    dims = _dims_of_dense(base)
    if dims is None:
        return None
    positions, rest = xp.zeros(view.shape, dtype=int64), distance
    for d in dims:
        index, rest = xp.divmod(rest, base.strides[d] // itemsize)
        c_stride = 1
        for later in range(d + 1, base.ndim):
            c_stride *= base.shape[later]
        positions = positions + index * c_stride
    return positions


def expand(array, shape):
    """A view of array with size-1 dims stretched to `shape` (stride 0), writable, as PyTorch's
    expanded tensors are (NumPy's broadcast_to is read-only): an in-place op refuses to write into
    it (see has_internal_overlap), an assignment writes each memory location once."""
    xp = array_module(array)
    stretched = xp.broadcast_to(array, shape)
    if xp is numpy and array.flags.writeable:
        stretched = numpy.lib.stride_tricks.as_strided(
            array, stretched.shape, stretched.strides, writeable=True)
    return stretched


def has_internal_overlap(array) -> bool:
    """Whether two elements of the array share one memory location (a stretched dim; an empty
    array has no elements to share one, whatever NumPy gives as its strides)."""
    return array.size > 0 and any(
        stride == 0 and size > 1 for size, stride in zip(array.shape, array.strides, strict=True))


def starts_at_same_place(a, b) -> bool:
    """Whether a's first element is b's: a reshape that gave a view, not a copy."""
    return _address(a) == _address(b)


def partly_overlap(a, b) -> bool:
    """PyTorch's check before an in-place op reads an operand (x -= x[0], x.copy_(x[1:])): two
    dense arrays (each a contiguous block of memory, in some order) whose blocks overlap without
    being the very same elements in the same places (x.add_(x) is fine). Arrays with gaps or
    repeats are not checked, as PyTorch does not check them."""
    return overlap(a, b) and not same_elements(a, b)


def overlap(a, b) -> bool:
    """PyTorch's check before x[index_array] = value (index_put_): two dense arrays that share
    memory at all, the very same elements included. Arrays with gaps or repeats are not checked,
    as PyTorch does not check them."""
    if array_module(a) is not array_module(b) or not (_is_dense(a) and _is_dense(b)):
        return False
    return bool(array_module(a).may_share_memory(a, b))


def same_elements(a, b) -> bool:
    """Whether two arrays are the very same elements in the same places: one start, one shape,
    and one stride per dim, as PyTorch would give them (_torch_strides)."""
    return (_address(a) == _address(b) and a.shape == b.shape
            and _torch_strides(a) == _torch_strides(b))


def _torch_strides(array) -> tuple:
    """The array's strides as PyTorch gives the same view. NumPy gives a size-1 dim that it
    inserted (x[None], a broadcast's new dim) stride 0; PyTorch gives it the stride that goes on
    from the next dim (its size times its stride; the item size after the last dim), and
    compares strides, size-1 dims' included, to tell the same elements from a partial overlap."""
    strides, after = list(array.strides), array.itemsize
    for d in reversed(range(array.ndim)):
        if array.shape[d] == 1 and strides[d] == 0:
            strides[d] = after
        after = array.shape[d] * strides[d]
    return tuple(strides)


def _is_dense(array) -> bool:
    """Whether the elements fill one block of memory with no gaps and no repeats."""
    return _dims_of_dense(array) is not None


def _dims_of_dense(array):
    """The dims of size > 1 from the largest stride to the smallest, when the elements fill one
    block of memory (each stride is the product of the sizes of the dims with smaller strides);
    else None."""
    dims = sorted((d for d in range(array.ndim) if array.shape[d] > 1),
                  key=lambda d: array.strides[d], reverse=True)
    expected = array.itemsize
    for d in reversed(dims):
        if array.strides[d] != expected:
            return None
        expected *= array.shape[d]
    return dims


def broadcast_shapes(*shapes) -> tuple:
    """The shape that NumPy broadcasting gives for these shapes."""
    return numpy.broadcast_shapes(*shapes)


def scatter_add(target, index, values) -> None:
    """target[index] += values, adding repeated indices (numpy.add.at, cupy.add.at)."""
    array_module(target).add.at(target, index, values)


# ---- random numbers --------------------------------------------------------------------------


class _Generators:
    """One seeded generator per device, created on first use."""

    def __init__(self):
        self.seed: int | None = None
        self.by_device: dict = {}

    def get(self, dev: Device):
        if dev not in self.by_device:
            if dev is CPU:
                self.by_device[dev] = numpy.random.default_rng(self.seed)
            else:
                xp = _check_cuda(dev)
                with xp.cuda.Device(dev.index):
                    self.by_device[dev] = xp.random.default_rng(self.seed)
        return self.by_device[dev]


_generators = _Generators()


def as_int(value, what: str) -> int:
    """A Python int from an int or a NumPy integer (np.prod gives those); TypeError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)):
        raise TypeError(f"{what} must be an int, got {value!r} ({type(value).__name__})")
    return int(value)


def manual_seed(seed: int) -> None:
    """Seed every device's generator (later draws are reproducible)."""
    seed = as_int(seed, "manual_seed: seed")
    _generators.seed = seed
    _generators.by_device.clear()


def get_rng_state(dev: Device) -> dict:
    """The state of a device's generator, as plain Python data (NumPy's bit generator state).

    CuPy's generators expose no state: on a GPU this raises NotImplementedError.
    """
    if dev is not CPU:
        raise NotImplementedError(f"get_rng_state: CuPy's generator on {dev} exposes no state")
    return generator(dev).bit_generator.state


def set_rng_state(dev: Device, state: dict) -> None:
    """Put a device's generator back to a state from get_rng_state (later draws repeat)."""
    if dev is not CPU:
        raise NotImplementedError(f"set_rng_state: CuPy's generator on {dev} exposes no state")
    generator(dev).bit_generator.state = state


def generator(dev: Device):
    """The seeded random generator for a device (numpy or cupy Generator)."""
    return _generators.get(dev)
