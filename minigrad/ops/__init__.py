"""Built-in differentiable operations, one small Function class (an Op) per op; and inplace.py,
which runs and records in-place operations (with CopySlices and AsStrided from movement.py)."""

from .activation import LogSoftmax, ReLU, ReLUBackward, Sigmoid, Softmax, Softplus, Tanh
from .conv import Conv2d, Fold, MaxPool2d, Pad, Unfold
from .elementwise import (
    Abs,
    Add,
    Cos,
    Div,
    Exp,
    Log,
    Mul,
    Neg,
    Pow,
    Reciprocal,
    Sign,
    Sin,
    Sqrt,
    Sub,
)
from .loss import (
    BCEWithLogits,
    CrossEntropy,
    CrossEntropyBackward,
    MSELoss,
    NLLLoss,
    NLLLossBackward,
)
from .matmul import Linear, LinearBackward, LinearReLU, MatMul
from .movement import (
    AsStrided,
    Cast,
    Cat,
    Clone,
    Copy,
    CopySlices,
    Fill,
    GetItem,
    Permute,
    Reshape,
    ScatterAdd,
    SetItem,
    ToDevice,
    Transpose,
)
from .reduce import (
    BroadcastTo,
    Mean,
    Norm,
    Std,
    Sum,
    SumTo,
    Var,
    cascade_sum,
    expand_grad,
    normalize_dims,
    unbroadcast,
)
from .selection import (
    AMax,
    AMin,
    Clamp,
    ClampByTensors,
    Max,
    MaxDim,
    Maximum,
    Min,
    Minimum,
    Where,
)

__all__ = [
    "AMax", "AMin", "Abs", "Add", "AsStrided", "BCEWithLogits", "BroadcastTo", "Cast", "Cat",
    "Clamp", "ClampByTensors", "Clone", "Conv2d", "Copy", "CopySlices", "Cos", "CrossEntropy",
    "CrossEntropyBackward", "Div", "Exp", "Fill", "Fold", "GetItem", "Linear",
    "LinearBackward", "LinearReLU", "Log", "LogSoftmax", "MSELoss", "MatMul", "Max", "MaxDim",
    "MaxPool2d", "Maximum", "Mean", "Min", "Minimum", "Mul", "NLLLoss", "NLLLossBackward",
    "Neg", "Norm", "Pad", "Permute", "Pow", "ReLU", "ReLUBackward", "Reciprocal", "Reshape",
    "ScatterAdd", "SetItem", "Sigmoid", "Sign", "Sin", "Softmax", "Softplus", "Sqrt", "Std",
    "Sub", "Sum", "SumTo", "Tanh", "ToDevice", "Transpose", "Unfold", "Var", "Where",
    "cascade_sum", "expand_grad", "normalize_dims", "unbroadcast",
]
