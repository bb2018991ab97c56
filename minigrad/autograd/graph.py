"""torch.autograd.graph's saved-tensor hooks: choose how forward keeps what backward needs.

    with mg.autograd.graph.saved_tensors_hooks(pack, unpack):
        loss = model(x)           # every tensor an op saves is kept as pack(tensor)
    loss.backward()               # and given back to backward as unpack(packed)

    with mg.autograd.graph.save_on_cpu():   # keep saved tensors in host memory
        loss = model(x)

The engine's side is PackedTensor in minigrad/engine/function.py.
"""

from __future__ import annotations

from ..grad_mode import grad_mode


class saved_tensors_hooks:  # noqa: N801  (PyTorch's name)
    """Inside it, each tensor an op saves for backward is kept as pack_hook(tensor), and
    backward reads unpack_hook(packed) instead. The innermost one applies; nesting restores."""

    def __init__(self, pack_hook, unpack_hook):
        if not callable(pack_hook) or not callable(unpack_hook):
            raise TypeError("saved_tensors_hooks: pack_hook and unpack_hook must be callables")
        self.hooks = (pack_hook, unpack_hook)

    def __enter__(self):
        self.previous = grad_mode.saved_hooks
        grad_mode.saved_hooks = self.hooks
        return self

    def __exit__(self, *exc_info):
        grad_mode.saved_hooks = self.previous


class save_on_cpu(saved_tensors_hooks):  # noqa: N801
    """Keep saved tensors in host memory and move them back for backward (on the CPU: copies,
    so a saved tensor changed in place afterwards is not seen, as with any pack hook)."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda"):
        def pack(tensor):
            return tensor.device, tensor.detach().cpu().clone()

        def unpack(packed):
            device, tensor = packed
            return tensor.to(device)

        super().__init__(pack, unpack)


__all__ = ["saved_tensors_hooks", "save_on_cpu"]
