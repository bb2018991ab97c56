"""Built-in differentiable operations, one small Function class per op."""

from .activation import LogSoftmax, ReLU, ReLUBackward, Sigmoid, Softmax, Softplus, Tanh
from .broadcast import BroadcastTo, SumTo, expand_grad, normalize_dims, unbroadcast
from .elementwise import (
    Add,
    Clamp,
    ClampByTensors,
    Div,
    Exp,
    Log,
    Mul,
    Neg,
    Pow,
    Reciprocal,
    Sqrt,
    Sub,
    Where,
)
from .loss import CrossEntropy, CrossEntropyBackward
from .matmul import Linear, LinearBackward, LinearReLU, MatMul
from .movement import (
    Cast,
    Cat,
    Clone,
    Copy,
    Fill,
    GetItem,
    Reshape,
    ScatterAdd,
    SetItem,
    ToDevice,
    Transpose,
)
from .reduce import AMax, AMin, Max, MaxDim, Mean, Sum

__all__ = [
    "AMax", "AMin", "Add", "BroadcastTo", "Cast", "Cat", "Clamp", "ClampByTensors", "Clone",
    "Copy", "CrossEntropy", "CrossEntropyBackward", "Div", "Exp", "Fill", "GetItem", "Linear",
    "LinearBackward", "LinearReLU", "Log", "LogSoftmax",
    "MatMul", "Max", "MaxDim", "Mean", "Mul", "Neg", "Pow", "Reciprocal", "ReLU", "ReLUBackward",
    "Reshape",
    "ScatterAdd", "SetItem", "Sigmoid", "Softmax", "Softplus", "Sqrt", "Sub", "Sum", "SumTo",
    "Tanh", "ToDevice", "Transpose", "Where", "expand_grad", "normalize_dims", "unbroadcast",
]
