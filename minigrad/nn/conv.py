"""Convolutional layers under PyTorch's names: Conv1d, Conv2d, the pools, Dropout2d,
BatchNorm1d/2d, Unfold and Fold. Each holds its settings and parameters and calls its function
in functional_conv.py, where the math is."""

from __future__ import annotations

import math

from .. import backend
from ..tensor import Tensor
from . import functional_conv as F
from . import init
from .module import Module, Parameter


class _ConvNd(Module):
    """What Conv1d and Conv2d share: the weight (out, in / groups, *kernel), the bias (out,),
    PyTorch's checks and its default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""

    dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} is not supported in "
                                      "minigrad (only 'zeros')")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "['valid', 'same']")
            if padding == "same" and any(s != 1 for s in F._tuple(stride, self.dims, "stride",
                                                                    name)):
                raise ValueError("padding='same' is not supported for strided convolutions")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = F._tuple(kernel_size, self.dims, "kernel_size", name)
        self.stride = F._tuple(stride, self.dims, "stride", name)
        self.padding = padding if isinstance(padding, str) else F._tuple(padding, self.dims,
                                                                         "padding", name)
        self.dilation = F._tuple(dilation, self.dims, "dilation", name)
        self.groups, self.padding_mode = groups, padding_mode
        dev, dt = backend.device(device), backend.dtype(dtype) or backend.float32
        xp = backend.module_for(dev)
        wrap = Tensor._wrap_no_copy_no_checks
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(wrap(xp.empty(shape, dt), dev))
        self.bias = Parameter(wrap(xp.empty(out_channels, dt), dev)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight and bias uniform in +-1/sqrt(fan_in)."""
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        bound = init.linear_bound(fan_in)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        """The settings shown inside Conv2d(...) when printed, as PyTorch shows them."""
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self.dims:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """y = conv2d(x, W, b): (N, C_in, H, W) -> (N, C_out, H_out, W_out)."""

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        """The convolution of the input with this layer's kernels."""
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class Conv1d(_ConvNd):
    """y = conv1d(x, W, b): (N, C_in, L) -> (N, C_out, L_out)."""

    dims = 1

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        """The convolution of the input with this layer's kernels."""
        return F.conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class MaxPool2d(Module):
    """y = the max over each kernel_size window (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor):  # noqa: A002
        """The pooled input (and where each max came from, with return_indices)."""
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        """The settings, as PyTorch prints them."""
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """y = the mean over each kernel_size window (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        """The pooled input."""
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        """The settings, as PyTorch prints them."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """y = the mean over the windows that split the input into output_size cells."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        """The pooled input, of spatial size output_size."""
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        """The settings, as PyTorch prints them."""
        return f"output_size={self.output_size}"


class Dropout2d(Module):
    """In training, zero whole channels with probability p and scale the rest by 1 / (1 - p)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        """Channel dropout in training mode; the input itself in eval mode."""
        return F.dropout2d(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        """The settings, as PyTorch prints them."""
        return f"p={self.p}, inplace={self.inplace}"


class _BatchNorm(Module):
    """Per-channel normalisation over the batch (and the other dims), with running statistics
    for eval: running_mean, running_var and num_batches_tracked are buffers, as in PyTorch."""

    input_dims: tuple = (2, 3)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *,
                 bias: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.has_bias = affine and bias
        dev, dt = backend.device(device), backend.dtype(dtype) or backend.float32
        xp = backend.module_for(dev)
        wrap = Tensor._wrap_no_copy_no_checks
        self.weight = Parameter(wrap(xp.ones(num_features, dt), dev)) if affine else None
        self.bias = Parameter(wrap(xp.zeros(num_features, dt), dev)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", wrap(xp.zeros(num_features, dt), dev))
            self.register_buffer("running_var", wrap(xp.ones(num_features, dt), dev))
            self.register_buffer("num_batches_tracked",
                                 wrap(xp.zeros((), backend.int64), dev))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        """Normalised by the batch's statistics in training (updating the running ones), by
        the running statistics in eval."""
        if input.ndim not in self.input_dims:
            raise ValueError(f"expected {' or '.join(f'{d}D' for d in self.input_dims)} input "
                             f"(got {input.ndim}D input)")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array[...] += 1
            self.num_batches_tracked._bump_version()
            if self.momentum is None:  # a cumulative average of every batch so far
                momentum = 1.0 / float(self.num_batches_tracked.array)
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(input, self.running_mean if not use_batch or self.training else None,
                            self.running_var if not use_batch or self.training else None,
                            self.weight, self.bias, use_batch, momentum, self.eps)

    def extra_repr(self) -> str:
        """The settings, as PyTorch prints them."""
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.has_bias}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) inputs, per channel C."""

    input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) inputs, per channel C."""

    input_dims = (4,)


class Unfold(Module):
    """The patches of each kernel_size window as columns (F.unfold)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = (kernel_size, dilation,
                                                                      padding, stride)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        """(N, C, H, W) -> (N, C*kh*kw, L)."""
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(Module):
    """Columns added back into an image of output_size (F.fold, unfold's adjoint)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        """(N, C*kh*kw, L) -> (N, C, H, W)."""
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)
