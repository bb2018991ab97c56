"""The backend seam: only backend.py may know which array library runs, so the ops work on CuPy.

Two checks that run on a machine without a GPU:

1. Static: no module in minigrad/ except backend.py imports numpy, cupy or cupyx, and the modules
   that compute on device arrays (ops, nn, optim, cuda, the engine, the loader) never reach for
   `backend.numpy`.
2. Runtime: a fake CuPy is installed into minigrad.backend, so "cuda" tensors hold FakeGpuArrays.
   Their numbers are computed by NumPy inside, but they behave like cupy.ndarray where it matters:
   they are not numpy.ndarray, NumPy functions and ufuncs refuse them (numpy.add.at, numpy.exp,
   numpy.asarray raise TypeError, as a numpy call on a cupy array would break or copy), they refuse
   to mix with host numpy arrays in arithmetic, the module offers only functions that CuPy has
   (FUNCTIONS) and its random Generator only cupy.random.Generator's methods (no permutation),
   and reading a value on the host (int(), float(), bool(), .item(), .get()) is counted, so a
   test can say that a training step never waits for the GPU. Every op of tests/test_ops.py then
   runs forward and backward on the fake GPU against PyTorch, and a small training loop runs.

What this does not catch: where CuPy computes differently from NumPy (type promotion corners,
out-of-range fancy indices wrap instead of raising, a function with the same name but other
arguments), host syncs inside CuPy itself (boolean masks), anything about real device memory,
streams or speed, and the fused kernels, which are switched off here (minigrad.cuda.kernels;
tests/test_cuda_kernels.py runs them). A real GPU run (benchmarks/gpu_check.sh) covers those.
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import numpy
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.cuda import kernels
from tests.test_ops import DTYPES, ELEMENTWISE, INDEX, MATMUL, REDUCE, SHAPE, UNARY, check_op

PACKAGE = Path(mg.__file__).parent
ARRAY_LIBRARIES = {"numpy", "cupy", "cupyx"}
# Modules that compute on device arrays: a backend.numpy call there would break on the GPU.
DEVICE_CODE = ["ops", "nn", "optim", "cuda", "fused", "engine",
               "data/loader.py"]


# ---- 1. static: who imports what --------------------------------------------------------------


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "backend.py" or p.parent != PACKAGE)


def _imported_libraries(tree: ast.AST) -> set:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (  # importlib.import_module("cupy")
            isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
            and node.args and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value).split(".")[0])
    return found & ARRAY_LIBRARIES


def test_only_backend_imports_numpy_or_cupy():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(libraries)
        for path in _modules()
        if (libraries := _imported_libraries(ast.parse(path.read_text(), str(path))))
    }
    assert not offenders, f"only minigrad/backend.py may import array libraries: {offenders}"


def test_device_code_never_reaches_for_backend_numpy():
    offenders = []
    for part in DEVICE_CODE:
        root = PACKAGE / part
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Attribute) and node.attr == "numpy"
                        and getattr(node.value, "id", "") == "backend"):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, (
        "device code must get its array module from backend.array_module(x) or "
        f"backend.module_for(device), not backend.numpy: {offenders}"
    )


# ---- 2. runtime: a fake CuPy ------------------------------------------------------------------

# cupy.ndarray has every numpy.ndarray method but these (checked against CuPy 14).
NUMPY_ONLY_METHODS = {"ctypes", "getfield", "resize", "setfield", "setflags", "to_device"}
# Functions the fake module offers: each exists in CuPy (checked against CuPy 14). When minigrad
# starts using another one, check that CuPy has it and add it here.
FUNCTIONS = """abs absolute all any arange argmax argmin ascontiguousarray broadcast_to clip
    concatenate copyto cos empty empty_like exp eye expand_dims expm1 full full_like isfinite isnan
    log log1p logical_and logical_not matmul maximum may_share_memory minimum moveaxis multiply
    divmod ones ones_like shares_memory sign sin sqrt square
    stack sum take_along_axis tanh where zeros zeros_like""".split()
DTYPE_NAMES = "float16 float32 float64 int32 int64 uint8 uint64 bool_ dtype".split()
GENERATOR_METHODS = """beta binomial chisquare dirichlet exponential f gamma geometric
    hypergeometric integers logseries poisson power random standard_exponential standard_gamma
    standard_normal uniform""".split()  # cupy.random.Generator's methods in CuPy 14
HOST_READS = {"item", "tolist", "get"}


class FakeStream:
    """cupy.cuda.Stream: capture records our kernels (tests/test_cuda_kernels.py), nothing else.

    While a stream captures, any other GPU work on the fake (an array op, a CuPy function, an
    allocation) raises, so a test can say that a captured step is made of our kernels only and
    allocates nothing (cuBLAS calls raise during a real capture; CuPy issue 6290).
    """

    def __init__(self, null: bool = False, non_blocking: bool = False):
        self.null = null
        self.ptr = 0 if null else id(self)  # cupy.cuda.Stream.ptr: 0 for the default stream

    def __enter__(self):  # the current stream inside `with stream:`, as in CuPy
        self.previous, CURRENT.stream = CURRENT.stream, self
        return self

    def __exit__(self, *exc):
        CURRENT.stream = self.previous
        return False

    def begin_capture(self, mode=None):
        if self.null:
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if CAPTURE.recording is not None:
            raise RuntimeError("fake CuPy: a capture is already running")
        CAPTURE.recording = []

    def end_capture(self):
        calls, CAPTURE.recording = CAPTURE.recording, None
        return FakeGraph(calls)

    def synchronize(self):
        pass


class FakeGraph:
    """cupy.cuda.Graph: launch() replays the recorded kernel launches, arguments as recorded."""

    def __init__(self, calls: list):
        self.calls = calls

    def launch(self, stream=None):
        launched("graph_launch")
        for call in self.calls:
            call()


# The current stream and device, as `with stream:` and `with Device(i):` set them.
CURRENT = types.SimpleNamespace(stream=FakeStream(null=True), device=0)
# While a fake stream captures, `recording` is the list of recorded kernel launches.
CAPTURE = types.SimpleNamespace(recording=None)
# hook(name) is called for each call that CuPy would run on the GPU (a kernel or a copy).
CALLS = types.SimpleNamespace(hook=None)
ALLOCATIONS = {"function:empty", "function:empty_like"}  # no kernel, but refused in a capture


def launched(name: str, result=None, inputs=()) -> None:
    """Note a call that CuPy would launch on the GPU; a view of an input launches nothing."""
    if CALLS.hook is None and CAPTURE.recording is None:
        return
    data = getattr(result, "_data", None)
    if data is not None and any(
        numpy.may_share_memory(data, a._data) for a in inputs if isinstance(a, FakeGpuArray)
    ):
        return  # reshape, .T, basic indexing, astype(copy=False) of the same dtype...
    if CAPTURE.recording is not None:
        raise RuntimeError(f"fake CuPy: {name} during a stream capture (only our kernels may "
                           "run in a captured step, and nothing may be allocated)")
    if name not in ALLOCATIONS:
        CALLS.hook(name)


class FakeDevice:
    """cupy.cuda.Device: a context manager with an id."""

    def __init__(self, id: int = 0):
        self.id = id

    def __enter__(self):  # the current device inside `with Device(i):`, as in CuPy
        self.previous, CURRENT.device = CURRENT.device, self.id
        return self

    def __exit__(self, *exc):
        CURRENT.device = self.previous
        return False

    def use(self):  # cupy.cuda.Device.use(): make it the current device
        CURRENT.device = self.id


class FakeGpuArray:
    """A cupy.ndarray stand-in: NumPy data inside, which NumPy itself refuses to touch."""

    __array_ufunc__ = None  # numpy.exp(fake), numpy.add.at(fake, ...) -> TypeError
    host_reads = 0  # values read on the host since the fixture started (each a GPU sync on CuPy)

    def __init__(self, data: numpy.ndarray):
        self._data = data

    def __array__(self, dtype=None, copy=None):
        raise TypeError("implicit conversion of a GPU array to NumPy (use backend.to_host)")

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented  # numpy.<function>(fake) -> TypeError

    @property
    def device(self):
        return FakeDevice(0)

    @property
    def data(self):  # cupy.ndarray.data: a MemoryPointer; .ptr is the address (on the host here)
        return types.SimpleNamespace(ptr=self._data.ctypes.data)

    def get(self):
        _host_read()
        return self._data.copy()

    def __getattr__(self, name):  # the methods and attributes of cupy.ndarray, computed by NumPy
        if name in NUMPY_ONLY_METHODS or name.startswith("__"):
            raise AttributeError(f"cupy.ndarray has no attribute {name!r}")
        value = getattr(self._data, name)
        if name in HOST_READS:
            _host_read()
        if callable(value):
            def method(*args, **kwargs):
                result = _wrap(value(*_unwrap(args), **_unwrap(kwargs)))
                if name not in HOST_READS:
                    launched(f"method:{name}", result, (self,))
                return result

            return method
        return _wrap(value)

    def __getitem__(self, index):
        result = _wrap(self._data[_unwrap_index(index)])
        launched("getitem", result, (self,))
        return result

    def __setitem__(self, index, value):
        self._data[_unwrap_index(index)] = _unwrap(value)
        launched("setitem")

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        return f"FakeGpuArray({self._data!r})"

    def __int__(self):
        _host_read()
        return int(self._data)

    def __float__(self):
        _host_read()
        return float(self._data)

    def __bool__(self):
        _host_read()
        return bool(self._data)


def _host_read():
    FakeGpuArray.host_reads += 1


def _binary(name: str):
    def method(self, other):
        result = _wrap(getattr(self._data, name)(_unwrap(other)))
        launched(name, result, (self, other))
        return result

    return method


def _in_place(name: str):
    def method(self, other):
        getattr(self._data, name)(_unwrap(other))
        launched(name)
        return self

    return method


def _unary(name: str):
    def method(self):
        result = _wrap(getattr(self._data, name)())
        launched(name, result, (self,))
        return result

    return method


# A test double may generate its operators in a loop; minigrad itself writes each one out.
for _op in ("add sub mul truediv floordiv mod pow matmul and or xor lt le gt ge eq ne").split():
    setattr(FakeGpuArray, f"__{_op}__", _binary(f"__{_op}__"))
    if _op not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(FakeGpuArray, f"__r{_op}__", _binary(f"__r{_op}__"))
        setattr(FakeGpuArray, f"__i{_op}__", _in_place(f"__i{_op}__"))
for _op in ("neg", "pos", "abs", "invert"):
    setattr(FakeGpuArray, f"__{_op}__", _unary(f"__{_op}__"))
FakeGpuArray.__hash__ = None  # like cupy.ndarray


def _unwrap(value):
    """FakeGpuArray -> its NumPy data; a host numpy.ndarray is refused, as CuPy refuses it."""
    if isinstance(value, FakeGpuArray):
        return value._data
    if isinstance(value, numpy.ndarray):
        raise TypeError(
            f"a host numpy.ndarray {value.shape} met a GPU array: CuPy refuses to mix them; "
            "move it with backend.to_device first"
        )
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _unwrap_index(index):
    """Indices may also be host arrays or lists (CuPy copies them to the device)."""
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i) for i in index)
    return index._data if isinstance(index, FakeGpuArray) else index


def _wrap(value):
    """NumPy results -> FakeGpuArrays; a NumPy scalar becomes a 0-d array, as CuPy returns."""
    if isinstance(value, numpy.ndarray):
        return FakeGpuArray(value)
    if isinstance(value, numpy.generic):
        return FakeGpuArray(numpy.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _device_function(function, name: str = "function"):
    def call(*args, **kwargs):
        result = _wrap(function(*_unwrap(args), **_unwrap(kwargs)))
        # Writing into out (a keyword, or a ufunc's extra argument) is work even when out is
        # also an input: the result is not a view.
        out_given = "out" in kwargs or (
            isinstance(function, numpy.ufunc) and len(args) > function.nin)
        launched(f"function:{name}", result, () if out_given else args)
        return result

    return call


def _asarray(data, dtype=None):
    """cupy.asarray: host data (lists, numpy arrays) is copied to the device."""
    if isinstance(data, FakeGpuArray):
        return data if dtype is None else data.astype(dtype, copy=False)
    launched("function:asarray (host to device)")
    return FakeGpuArray(numpy.array(data, dtype=dtype))


class FakeGenerator:
    """cupy.random.Generator: only the methods CuPy has (no permutation, no shuffle)."""

    def __init__(self, seed=None):
        self._rng = numpy.random.default_rng(seed)

    def __getattr__(self, name):
        if name not in GENERATOR_METHODS:
            raise AttributeError(f"cupy.random.Generator has no method {name!r}")
        return _device_function(getattr(self._rng, name), f"random:{name}")


def make_fake_cupy() -> tuple[types.ModuleType, types.ModuleType]:
    """(cupy, cupyx) stand-ins with the parts of their API that minigrad may use."""
    cupy = types.ModuleType("fake_cupy")
    for name in FUNCTIONS:
        setattr(cupy, name, _device_function(getattr(numpy, name), name))
    for name in DTYPE_NAMES:
        setattr(cupy, name, getattr(numpy, name))
    cupy.ndarray = FakeGpuArray
    cupy.asarray = cupy.array = _asarray
    cupy.get_array_module = lambda *arrays: (
        cupy if any(isinstance(a, FakeGpuArray) for a in arrays) else numpy
    )
    cupy.cuda = types.SimpleNamespace(
        Device=FakeDevice, runtime=types.SimpleNamespace(getDeviceCount=lambda: 1,
                                                         getDevice=lambda: CURRENT.device),
        Stream=FakeStream, get_current_stream=lambda: CURRENT.stream,
    )
    cupy.random = types.SimpleNamespace(default_rng=FakeGenerator)
    cupyx = types.ModuleType("fake_cupyx")

    def add_at(target, slices, value):
        numpy.add.at(target._data, _unwrap_index(slices), _unwrap(value))
        launched("function:add.at")

    cupy.add = _device_function(numpy.add, "add")  # cupy.add(a, b, out=...) and cupy.add.at
    cupy.add.at = add_at

    def where(condition, x, y):
        if not isinstance(condition, FakeGpuArray):  # CuPy calls condition.astype(...)
            raise AttributeError(f"cupy.where: condition must be a GPU array, got {condition!r}")
        result = _wrap(numpy.where(condition._data, *_unwrap((x, y))))
        launched("function:where")
        return result

    cupy.where = where
    return cupy, cupyx


@pytest.fixture
def fake_gpu(monkeypatch):
    """For one test, "cuda" means the fake CuPy (fused kernels off); returns the fake module."""
    cupy, cupyx = make_fake_cupy()
    monkeypatch.setattr(backend, "_cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.setattr(backend, "_generators", backend._Generators())
    monkeypatch.setattr(kernels, "enabled", False)
    monkeypatch.setattr(FakeGpuArray, "host_reads", 0)
    monkeypatch.setattr(CAPTURE, "recording", None)
    monkeypatch.setattr(CALLS, "hook", None)
    return cupy


def test_fake_gpu_arrays_are_refused_by_numpy(fake_gpu):
    x = mg.ones(3, device="cuda")
    assert type(x.array) is FakeGpuArray and x.device == "cuda:0"
    for numpy_call in (numpy.exp, numpy.asarray, lambda a: numpy.add.at(a, [0], 1.0)):
        with pytest.raises(TypeError):
            numpy_call(x.array)
    with pytest.raises(TypeError, match="CuPy refuses to mix"):
        x.array + numpy.ones(3)
    with pytest.raises(AttributeError, match="permutation"):
        backend.generator(mg.device("cuda")).permutation(3)
    assert x.tolist() == [1.0, 1.0, 1.0] and FakeGpuArray.host_reads == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shapes, torch_fn, mg_fn, low, high", ELEMENTWISE + MATMUL + REDUCE + UNARY + SHAPE + INDEX
)
def test_op_runs_on_a_gpu_array_module(fake_gpu, dtype, shapes, torch_fn, mg_fn, low, high):
    check_op("cuda", dtype, shapes, torch_fn, mg_fn, low, high)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_runs_on_a_gpu_array_module(fake_gpu, dtype):
    logits = mg.randn(5, 4, dtype=dtype, device="cuda", requires_grad=True)
    target = mg.tensor([0, 3, 1, 1, 2], device="cuda")
    on_cpu = logits.detach().cpu().requires_grad_()
    loss, expected = mg.nn.functional.cross_entropy(logits, target), mg.nn.functional.cross_entropy(
        on_cpu, target.cpu()
    )
    loss.backward()
    expected.backward()
    assert numpy.allclose(loss.item(), expected.item())
    assert numpy.allclose(logits.grad.detach().numpy(), on_cpu.grad.detach().numpy())
    with pytest.raises(IndexError, match="target 7 is out of range"):
        mg.nn.functional.cross_entropy(logits, mg.tensor([0, 7, 1, 1, 2], device="cuda"))


def _mlp():
    return mg.nn.Sequential(mg.nn.Linear(6, 5), mg.nn.ReLU(), mg.nn.Linear(5, 3))


def test_training_on_a_gpu_array_module_matches_the_cpu_and_never_waits(fake_gpu):
    """Loader, Linear, ReLU, backward and SGD (nesterov, weight decay) read nothing on the host."""
    inputs = numpy.random.default_rng(0).standard_normal((20, 6)).astype(numpy.float32)
    start = _mlp().state_dict()
    results = {}
    for device in ("cpu", "cuda"):
        model = _mlp().to(device)
        model.load_state_dict(start)
        optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                 weight_decay=1e-3)
        loader = mg.data.DataLoader((inputs, numpy.arange(20)), batch_size=8, shuffle=False,
                                    device=device)
        FakeGpuArray.host_reads = 0
        for x, _ in loader:
            out = model(x)
            loss = (out * out).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert FakeGpuArray.host_reads == 0, "a training step read a value on the host"
        results[device] = [p.detach().numpy() for p in model.parameters()]
    for ours, expected in zip(results["cuda"], results["cpu"], strict=True):
        assert numpy.allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_factories_loader_shuffle_and_save_load_on_a_gpu_array_module(fake_gpu, tmp_path):
    mg.manual_seed(1)
    for t in (mg.randn(3, 2, device="cuda"), mg.rand(4, device="cuda"), mg.zeros(2, device="cuda"),
              mg.arange(5, device="cuda"), mg.nn.Linear(3, 2, device="cuda").weight):
        assert type(t.array) is FakeGpuArray
    loader = mg.data.DataLoader((numpy.arange(10.0), numpy.arange(10)), 4, shuffle=True,
                                device="cuda")
    seen = sorted(v for _, y in loader for v in y.tolist())
    assert seen == list(range(10))
    model = mg.nn.Linear(3, 2, device="cuda")
    mg.save(model.state_dict(), tmp_path / "m.npz")
    loaded = mg.load(tmp_path / "m.npz", device="cuda")
    assert type(loaded["weight"].array) is FakeGpuArray
    assert numpy.array_equal(loaded["weight"].detach().numpy(), model.weight.detach().numpy())


def test_a_compiled_step_on_a_gpu_array_module_matches_the_cpu_and_never_waits(fake_gpu):
    """mg.compile's program replays on CuPy arrays (through the ops' own forward and backward:
    the NumPy kernels are for the CPU) and reads nothing on the host once traced."""
    inputs = numpy.random.default_rng(0).standard_normal((24, 6)).astype(numpy.float32)
    start = _mlp().state_dict()
    results = {}
    for device in ("cpu", "cuda"):
        model = _mlp().to(device)
        model.load_state_dict(start)
        optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        labels = mg.tensor(numpy.arange(24) % 3, device=device)
        batches = [(mg.tensor(inputs[i:i + 8], device=device), labels[i:i + 8])
                   for i in range(0, 24, 8)]

        def train_step(x, y, model=model, optimizer=optimizer):
            optimizer.zero_grad()
            out = model(x)  # (cross-entropy's label check reads the host without the kernels)
            loss = (out * out).mean() + (y * 0).sum()
            loss.backward()
            optimizer.step()
            return loss

        step = mg.compile(train_step)
        step(*batches[0])  # the trace
        FakeGpuArray.host_reads = 0
        for x, y in batches[1:] * 2:
            step(x, y)
        if device == "cuda":
            assert FakeGpuArray.host_reads == 0, "a replayed step read a value on the host"
        assert step.traces == 1
        results[device] = [p.detach().numpy() for p in model.parameters()]
    for ours, expected in zip(results["cuda"], results["cpu"], strict=True):
        assert numpy.allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_normal_initialisers_run_on_a_gpu_array_module(fake_gpu):
    """CuPy's Generator has standard_normal but no normal: normal_, kaiming_normal_,
    xavier_normal_ and Tensor.normal_ draw from standard_normal (the fake refuses normal)."""
    with pytest.raises(AttributeError, match="normal"):
        backend.generator(mg.device("cuda")).normal(0.0, 1.0, (2,))
    weight = mg.empty(400, 300, device="cuda")
    for init in (lambda w: mg.nn.init.normal_(w, 1.0, 0.5), mg.nn.init.kaiming_normal_,
                 mg.nn.init.xavier_normal_, lambda w: w.normal_(1.0, 0.5)):
        init(weight)
        values = weight.numpy()
        assert type(weight.array) is FakeGpuArray and numpy.isfinite(values).all()
        assert values.std() > 0
    mg.nn.init.normal_(weight, 1.0, 0.5)
    assert abs(weight.numpy().mean() - 1.0) < 0.01 and abs(weight.numpy().std() - 0.5) < 0.01


def test_module_for_asks_the_driver_for_the_device_count_once(fake_gpu, monkeypatch):
    """module_for runs on every op and backward: the device count is asked once per device."""
    asked = []
    count = fake_gpu.cuda.runtime.getDeviceCount
    monkeypatch.setattr(fake_gpu.cuda.runtime, "getDeviceCount",
                        lambda: asked.append(1) or count())
    monkeypatch.setattr(backend, "_cuda_devices_seen", {})
    x = mg.ones(3, device="cuda", requires_grad=True)
    (x * x).sum().backward()
    for _ in range(5):
        backend.module_for(mg.device("cuda"))
    assert len(asked) == 1
    with pytest.raises(RuntimeError, match="not available: this machine has 1 CUDA device"):
        backend.module_for(mg.device("cuda:1"))
