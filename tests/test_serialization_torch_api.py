"""mg.save / mg.load called as PyTorch's tutorials call torch.save / torch.load.

weights_only, map_location in each of torch's forms, mmap, file objects (io.BytesIO, open
files), the tutorials' checkpoint recipe, and the refusal to save a whole model. Where torch can
run the same call here (CPU only), the test runs it too and compares; the "cuda" cases run on
the fake CuPy of tests/test_backend_seam.py.
"""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn
from tests.test_backend_seam import FakeGpuArray, fake_gpu  # noqa: F401 (a fixture)


def saved(obj, library=mg) -> io.BytesIO:
    """obj saved by `library` (mg or torch) into a BytesIO, rewound for reading."""
    buffer = io.BytesIO()
    library.save(obj, buffer)
    buffer.seek(0)
    return buffer


def values(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else tensor.numpy()


def small_net(library=mg):
    return library.nn.Sequential(library.nn.Linear(3, 4), library.nn.ReLU(),
                                 library.nn.Linear(4, 2))


class VGGSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Linear(4, 4)


# ---- keywords: weights_only, mmap, pickle's ---------------------------------------------------


@pytest.mark.parametrize("weights_only", [True, False, None])
def test_weights_only_is_accepted_as_torch_accepts_it(weights_only):
    ours = mg.load(saved({"w": mg.arange(3.0)}), weights_only=weights_only)
    theirs = torch.load(saved({"w": torch.arange(3.0)}, torch), weights_only=weights_only)
    assert np.array_equal(values(ours["w"]), values(theirs["w"]))


def test_weights_only_false_still_never_unpickles(tmp_path):
    marker = tmp_path / "code-ran"

    class RunsCode:
        def __reduce__(self):  # unpickling this would call open(marker, "w")
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    np.savez(path, __structure__=np.frombuffer(b'{"tensor": "t0"}', np.uint8),
             t0=np.array([RunsCode()], dtype=object))
    with pytest.raises(RuntimeError, match="holds dtype object, which mg.save never writes"):
        mg.load(path, weights_only=False)
    assert not marker.exists()


def test_mmap_is_accepted_for_paths_and_refused_for_file_objects_as_in_torch(tmp_path):
    mg.save({"w": mg.ones(4)}, tmp_path / "w.pth")
    assert values(mg.load(tmp_path / "w.pth", mmap=True)["w"]).tolist() == [1.0] * 4
    assert values(mg.load(tmp_path / "w.pth", mmap=False)["w"]).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="file path"):
        torch.load(saved(torch.ones(1), torch), mmap=True)
    with pytest.raises(ValueError, match="mmap=True needs a file path"):
        mg.load(saved(mg.ones(1)), mmap=True)


def test_pickle_arguments_are_accepted_and_unknown_keywords_refused():
    assert mg.load(saved([1, 2]), encoding="latin1", errors="strict", fix_imports=True) == [1, 2]
    with pytest.raises(TypeError, match="unexpected keyword argument 'map_locaton'"):
        mg.load(saved([1]), map_locaton="cpu")
    with pytest.raises(TypeError, match="pickle_module=.* does not apply"):
        mg.load(saved([1]), pickle_module=pickle)
    with pytest.raises(TypeError, match="weights_only must be True, False or None, got 'yes'"):
        mg.load(saved([1]), weights_only="yes")
    with pytest.raises(TypeError, match="mmap must be True, False or None, got 1"):
        mg.load(saved([1]), mmap=1)


# ---- map_location on the CPU, beside torch ----------------------------------------------------


CPU_FORMS = {
    "string": ("cpu", "cpu"),
    "device": (mg.device("cpu"), torch.device("cpu")),
    "dict": ({"cpu": "cpu"}, {"cpu": "cpu"}),
    "dict-of-others": ({"cuda:0": "cpu"}, {"cuda:0": "cpu"}),
    "keep-storage": (lambda storage, location: storage, lambda storage, location: storage),
    "to-cpu": (lambda storage, location: storage.cpu(), lambda storage, location: storage.cpu()),
    "none-means-saved": (lambda storage, location: None, lambda storage, location: None),
}


@pytest.mark.parametrize("form", CPU_FORMS)
def test_map_location_forms_load_onto_the_cpu_as_torch(form):
    ours_form, theirs_form = CPU_FORMS[form]
    ours = mg.load(saved({"w": mg.arange(4.0)}), map_location=ours_form)["w"]
    theirs = torch.load(saved({"w": torch.arange(4.0)}, torch), map_location=theirs_form)["w"]
    assert ours.device == "cpu" and theirs.device.type == "cpu"
    assert np.array_equal(values(ours), values(theirs))


def test_map_location_function_gets_the_saved_location_as_torch_passes_it():
    seen = {"mg": [], "torch": []}
    mg.load(saved({"a": mg.ones(1), "b": mg.ones(2)}),
            map_location=lambda storage, location: seen["mg"].append(location))
    torch.load(saved({"a": torch.ones(1), "b": torch.ones(2)}, torch),
               map_location=lambda storage, location: seen["torch"].append(location))
    assert seen["mg"] == seen["torch"] == ["cpu", "cpu"]


def test_load_ignores_the_default_device_as_torch_does(fake_gpu):  # noqa: F811
    buffer, theirs_buffer = saved({"w": mg.ones(2)}), saved({"w": torch.ones(2)}, torch)
    mg.set_default_device("cuda")
    torch.set_default_device("meta")
    try:
        ours, theirs = mg.load(buffer)["w"], torch.load(theirs_buffer)["w"]
    finally:
        mg.set_default_device(None)
        torch.set_default_device(None)
    assert ours.device == "cpu" and theirs.device.type == "cpu"


# ---- map_location with a GPU (the fake CuPy) --------------------------------------------------


def test_gpu_tensors_load_back_onto_the_gpu_by_default(fake_gpu):  # noqa: F811
    buffer = saved({"gpu": mg.arange(3.0, device="cuda"), "cpu": mg.arange(2.0)})
    loaded = mg.load(buffer)
    assert loaded["gpu"].device == "cuda:0" and type(loaded["gpu"].array) is FakeGpuArray
    assert loaded["cpu"].device == "cpu"
    assert values(loaded["gpu"]).tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("map_location", [
    "cpu", mg.device("cpu"), {"cuda:0": "cpu"}, lambda storage, location: storage,
    lambda storage, location: storage.cpu(),
], ids=["string", "device", "dict", "keep-storage", "to-cpu"])
def test_map_location_moves_gpu_tensors_to_the_cpu(fake_gpu, map_location):  # noqa: F811
    loaded = mg.load(saved({"w": mg.arange(3.0, device="cuda")}), map_location=map_location)
    assert loaded["w"].device == "cpu" and type(loaded["w"].array) is np.ndarray
    assert values(loaded["w"]).tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("map_location", [
    "cuda", "cuda:0", mg.device("cuda:0"), {"cpu": "cuda:0"},
    lambda storage, location: storage.cuda(), lambda storage, location: storage.cuda(0),
    lambda storage, location: storage.to("cuda"),
], ids=["string", "string-index", "device", "dict", "storage.cuda()", "storage.cuda(0)",
        "storage.to"])
def test_map_location_moves_cpu_tensors_to_the_gpu(fake_gpu, map_location):  # noqa: F811
    loaded = mg.load(saved({"w": mg.arange(3.0)}), map_location=map_location)
    assert loaded["w"].device == "cuda:0" and type(loaded["w"].array) is FakeGpuArray


def test_a_dict_map_location_moves_only_the_locations_it_names(fake_gpu):  # noqa: F811
    buffer = saved({"gpu": mg.ones(2, device="cuda"), "cpu": mg.ones(2)})
    loaded = mg.load(buffer, map_location={"cpu": "cuda:0"})
    assert loaded["gpu"].device == "cuda:0" and loaded["cpu"].device == "cuda:0"
    buffer.seek(0)
    loaded = mg.load(buffer, map_location={"cuda:0": "cpu"})
    assert loaded["gpu"].device == "cpu" and loaded["cpu"].device == "cpu"


def test_a_missing_gpu_is_a_clear_error_that_names_the_way_out(fake_gpu):  # noqa: F811
    buffer = saved({"w": mg.ones(2)})
    with pytest.raises(RuntimeError, match=r"saved on 'cpu', which cannot load onto cuda:1 here "
                                           r"\(device 'cuda:1' is not available: this machine has "
                                           r"1 CUDA device\(s\)\); pass map_location='cpu'"):
        mg.load(buffer, map_location="cuda:1")


def file_saved_on(tmp_path, location: str):
    """A minigrad file whose one tensor was saved from `location` (as a GPU machine writes it)."""
    path = tmp_path / "from-elsewhere.npz"
    np.savez(path, __structure__=np.frombuffer(b'{"dict": [["w", {"tensor": "t0"}]]}', np.uint8),
             __locations__=np.frombuffer(f'{{"t0": "{location}"}}'.encode(), np.uint8),
             t0=np.arange(3.0))
    return path


def test_a_file_from_a_gpu_loads_onto_the_cpu_with_map_location(tmp_path):
    path = file_saved_on(tmp_path, "cuda:7")  # no machine running these tests has eight GPUs
    with pytest.raises(RuntimeError, match=r"saved on 'cuda:7', which cannot load onto cuda:7 "
                                           r"here \(.*\); pass map_location='cpu'"):
        mg.load(path)
    for map_location in ("cpu", {"cuda:7": "cpu"}, lambda storage, location: storage):
        loaded = mg.load(path, map_location=map_location)["w"]
        assert loaded.device == "cpu" and values(loaded).tolist() == [0.0, 1.0, 2.0]


def test_an_unknown_saved_location_can_be_mapped_as_in_torch(tmp_path):
    path = file_saved_on(tmp_path, "tpu")
    with pytest.raises(ValueError, match=r"tensors were saved on 'tpu', not a device here .*"
                                         r"map_location=\{'tpu': 'cpu'\}"):
        mg.load(path)
    assert mg.load(path, map_location={"tpu": "cpu"})["w"].device == "cpu"


BAD_MAP_LOCATIONS = [
    (5, TypeError, "map_location must be a device .* got int 5"),
    (b"cpu", TypeError, "map_location must be a device .* got bytes b'cpu'"),
    ("tpu", ValueError, "map_location='tpu' is not a device: unknown device 'tpu'"),
    ({0: "cpu"}, TypeError, "map_location has the key 0; its keys must be saved locations"),
    ({"cpu": "gpu"}, ValueError, r"map_location\['cpu'\]='gpu' is not a device"),
    ({"cpu": 3}, TypeError, r"map_location\['cpu'\]=3 is not a device"),
    (lambda storage, location: "cpu", TypeError,
     r"map_location\(storage, 'cpu'\) returned str 'cpu'; it must return the storage"),
    (lambda storage, location: storage.pin_memory(), AttributeError,
     r"map_location\(storage, 'cpu'\) failed .*pin_memory.*has only device, is_cuda, cpu\(\)"),
    (lambda storage, location: storage.cuda("tpu"), ValueError,
     "^load: storage.cuda='tpu' is not a device"),
]


@pytest.mark.parametrize("map_location, error, message", BAD_MAP_LOCATIONS,
                         ids=["int", "bytes", "unknown-device", "int-key", "bad-target",
                              "int-target", "returns-string", "pin-memory", "cuda-tpu"])
def test_a_bad_map_location_is_a_clear_error(map_location, error, message):
    with pytest.raises(error, match=message):
        mg.load(saved({"w": mg.ones(1)}), map_location=map_location)


def test_device_is_the_older_name_of_map_location(tmp_path):
    mg.save({"w": mg.ones(1)}, tmp_path / "w.pth")
    assert mg.load(tmp_path / "w.pth", device="cpu")["w"].device == "cpu"
    with pytest.raises(TypeError, match="give map_location or device .*, not both"):
        mg.load(tmp_path / "w.pth", map_location="cpu", device="cpu")


# ---- file objects -----------------------------------------------------------------------------


def test_bytesio_round_trips_nested_structures_as_torch_does():
    def nested(library):
        return {"weights": [library.ones(2), (library.zeros(1), 3)], 7: {"lr": 0.1, "name": "x"},
                "betas": (0.9, 0.999), "empty": [], "none": None}

    ours, theirs = mg.load(saved(nested(mg))), torch.load(saved(nested(torch), torch))

    def shape_of(obj):  # the structure with every tensor replaced by its values
        if isinstance(obj, dict):
            return {key: shape_of(value) for key, value in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(shape_of(value) for value in obj)
        return values(obj).tolist() if hasattr(obj, "detach") else obj

    assert shape_of(ours) == shape_of(theirs)
    assert list(ours) == list(theirs) == ["weights", 7, "betas", "empty", "none"]
    assert type(ours["betas"]) is type(theirs["betas"]) is tuple
    assert type(ours["weights"][1]) is tuple and type(ours["weights"]) is list


def test_a_state_dict_round_trips_through_bytesio():
    model = small_net()
    other = small_net()
    other.load_state_dict(mg.load(saved(model.state_dict()), weights_only=True))
    x = mg.randn(5, 3)
    assert np.array_equal(values(other(x).detach()), values(model(x).detach()))


def test_save_and_load_through_open_binary_files(tmp_path):
    path = tmp_path / "model.pth"
    with open(path, "wb") as file:
        file.write(b"a header")  # save writes from the current position, as torch.save does
        mg.save({"w": mg.arange(3.0)}, file)
        assert not file.closed and file.tell() == os.path.getsize(path)
    with open(path, "rb") as file:
        file.seek(len(b"a header"))
        loaded = mg.load(file)
        assert file.tell() == os.path.getsize(path)
    assert values(loaded["w"]).tolist() == [0.0, 1.0, 2.0]
    assert path.read_bytes().startswith(b"a header")


def test_save_keeps_what_a_bytesio_already_holds():
    buffer = io.BytesIO(b"kept")
    buffer.seek(0, os.SEEK_END)
    mg.save([1, 2], buffer)
    assert buffer.getvalue().startswith(b"kept")
    buffer.seek(4)
    assert mg.load(buffer) == [1, 2]


def test_save_writes_to_an_object_that_only_has_write():
    class Sink:
        def __init__(self):
            self.data = bytearray()

        def write(self, chunk):
            self.data += bytes(chunk)
            return len(chunk)

    sink = Sink()
    mg.save({"w": mg.ones(2)}, sink)
    assert values(mg.load(io.BytesIO(bytes(sink.data)))["w"]).tolist() == [1.0, 1.0]


def test_load_without_rewinding_says_to_seek():
    buffer = io.BytesIO()
    mg.save([1], buffer)  # and no buffer.seek(0)
    with pytest.raises(RuntimeError, match=r"BytesIO holds a saved object beginning at byte 0, "
                                           r"not at the stream's current position [\d,]+ "
                                           r"\(call seek\(0\) between save and load\?\)"):
        mg.load(buffer)


def test_one_object_per_stream_is_read_from_the_current_position():
    buffer = io.BytesIO()
    mg.save([1], buffer)
    second = buffer.tell()
    mg.save([2], buffer)
    buffer.seek(0)
    with pytest.raises(RuntimeError, match=f"beginning at byte {second:,}, not at the stream's "
                                           "current position 0; load reads one object per stream"):
        mg.load(buffer)
    buffer.seek(second)
    assert mg.load(buffer) == [2]


def test_file_objects_that_cannot_work_are_named(tmp_path):
    with open(tmp_path / "text.txt", "w") as text:
        with pytest.raises(TypeError, match="'.*text.txt' is open in text mode; open it in "
                                            r"binary mode \(open\(path, 'wb'\)\)"):
            mg.save({}, text)
    with open(tmp_path / "text.txt") as text:
        with pytest.raises(TypeError, match=r"is open in text mode; .*open\(path, 'rb'\)"):
            mg.load(text)
    with pytest.raises(TypeError, match="expected a path .* or a binary file object with a "
                                        r"write\(\) method, got int 5"):
        mg.save({}, 5)
    with pytest.raises(TypeError, match=r"with a read\(\) method, got int 5"):
        mg.load(5)
    with open(tmp_path / "text.txt", "rb") as reading_only:
        with pytest.raises(io.UnsupportedOperation, match="'.*text.txt' is not open for writing; "
                                                          "open it with 'wb'"):
            mg.save({}, reading_only)
    with open(tmp_path / "text.txt", "ab") as writing_only:
        with pytest.raises(io.UnsupportedOperation, match="is not open for reading; open it "
                                                          "with 'rb'"):
            mg.load(writing_only)
    closed = io.BytesIO()
    closed.close()
    with pytest.raises(ValueError, match="BytesIO is closed"):
        mg.save({}, closed)
    assert os.listdir(tmp_path) == ["text.txt"]


def test_load_from_a_pipe_says_to_read_it_into_memory():
    read_end, write_end = os.pipe()
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        with pytest.raises(io.UnsupportedOperation,
                           match=r"cannot seek .*load\(io.BytesIO\(stream.read\(\)\)\)"):
            mg.load(pipe)


def test_save_and_load_take_bytes_paths(tmp_path):
    path = os.fsencode(tmp_path / "w.pth")
    mg.save({"w": mg.ones(2)}, path)
    assert values(mg.load(path)["w"]).tolist() == [1.0, 1.0]
    assert os.listdir(tmp_path) == ["w.pth"]


# ---- whole models: refused, with what to do instead -------------------------------------------


def test_saving_a_whole_model_says_to_save_its_state_dict(tmp_path):
    path = tmp_path / "model.pth"
    with pytest.raises(TypeError, match=r"cannot store a whole VGGSmall: minigrad saves data .* "
                                        r"never objects or their code\. .*"
                                        r"save\(model\.state_dict\(\), path\).*build the VGGSmall "
                                        r"and call model\.load_state_dict\(load\(path\)\)"):
        mg.save(VGGSmall(), path)
    assert not path.exists()
    buffer = io.BytesIO()
    with pytest.raises(TypeError, match=r"whole VGGSmall at \['model'\]"):
        mg.save({"model": VGGSmall(), "epoch": 3}, buffer)
    assert buffer.getvalue() == b""  # nothing written


def test_saving_a_whole_optimizer_says_to_save_its_state_dict():
    optimizer = mg.optim.SGD(VGGSmall().parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"whole SGD: .*save\(optimizer\.state_dict\(\), path\)"):
        mg.save(optimizer, io.BytesIO())


def test_the_recommended_way_round_trips(tmp_path):
    model = VGGSmall()
    mg.save(model.state_dict(), tmp_path / "model.pth")
    fresh = VGGSmall()
    fresh.load_state_dict(mg.load(tmp_path / "model.pth", weights_only=True))
    assert np.array_equal(values(fresh.features.weight.detach()),
                          values(model.features.weight.detach()))


# ---- the tutorials' checkpoint recipe ---------------------------------------------------------


def train(library, model, optimizer, steps: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        x = library.tensor(rng.standard_normal((8, 3)).astype(np.float32))
        y = library.tensor(rng.integers(0, 2, 8))
        loss = library.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("make_optimizer", [
    lambda library, params: library.optim.Adam(params, lr=0.01, betas=(0.8, 0.99)),
    lambda library, params: library.optim.SGD(params, lr=0.1, momentum=0.9),
], ids=["Adam", "SGD"])
@pytest.mark.parametrize("library", [mg, torch], ids=["minigrad", "torch"])
def test_the_tutorials_general_checkpoint_resumes_training_exactly(library, make_optimizer):
    """PyTorch's "Saving and loading a general checkpoint" recipe, run on both libraries."""
    library.manual_seed(0)
    model = small_net(library)
    optimizer = make_optimizer(library, model.parameters())
    losses = train(library, model, optimizer, 3, seed=1)
    buffer = saved({"epoch": 3, "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": optimizer.state_dict(), "loss": losses[-1]}, library)
    expected = train(library, model, optimizer, 3, seed=2)

    checkpoint = library.load(buffer, weights_only=True)
    resumed = small_net(library)
    resumed_optimizer = make_optimizer(library, resumed.parameters())
    resumed.load_state_dict(checkpoint["model_state_dict"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    assert checkpoint["epoch"] == 3 and checkpoint["loss"] == losses[-1]
    group = resumed_optimizer.param_groups[0]
    assert group == {**optimizer.param_groups[0], "params": group["params"]}
    assert train(library, resumed, resumed_optimizer, 3, seed=2) == expected
