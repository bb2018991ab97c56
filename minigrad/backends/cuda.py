"""torch.backends.cuda: matmul's precision switches, accepted; minigrad's GPU products are
float32 throughout (no TF32), whatever they say."""

from types import SimpleNamespace

from .. import backend

matmul = SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                         allow_bf16_reduced_precision_reduction=True)


def is_built() -> bool:
    """Whether minigrad can use a GPU here: CuPy imports."""
    try:
        backend.cupy_module()
    except Exception:
        return False
    return True
