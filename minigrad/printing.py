"""How a tensor prints: PyTorch's format, rule by rule, so both libraries print the same text.

`repr(tensor)` is "tensor(" + the data + the suffixes + ")", built in four steps:

1. Summarise. A tensor of more than `threshold` (1000) elements shows, along every dim, only its
   first and last `edgeitems` (3) entries, with "..." in between.
2. Choose one format for all the elements shown (class Formatter). Integers and bools print as
   Python prints them. Floats look at their finite non-zero values only:
   - scientific (`1.0000e+08`) when the largest |value| is over 1000 times the smallest, over
     1e8, or the smallest is under 1e-4 (or always/never after set_printoptions(sci_mode=...));
   - else "integer mode" when every one is a whole number: `1.`, `-2.`, no digits after the point;
   - else fixed, with `precision` (4) digits after the point: `0.1235`.
   nan, inf and -inf print as `nan`, `inf`, `-inf`.
3. Pad every element on the left to one width: that of the widest finite non-zero value (or of
   the longest integer), so the columns line up.
4. Lay out. A 1-d row is "[a, b, c]", wrapped to `linewidth` (80): as many elements a line as
   fit, each counted with its ", ". A higher-dim tensor is its rows one per line, each indented
   one more space than its "["; between the rows of a d-dim tensor come d - 1 newlines (a blank
   line between the matrices of a 3-d tensor).

The suffixes (device=, size=, dtype=, grad_fn= or requires_grad=True) follow the data, each
after ", ", or on a new line under the "(" of "tensor(" when the line would grow past linewidth.
An empty tensor prints `tensor([])`, plus `size=(0, 3)` when it is not 1-d, and its dtype unless
that is the default float dtype.
"""

from __future__ import annotations

import math

from . import backend

PREFIX = "tensor("

# PyTorch's named profiles for set_printoptions(profile=...).
PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}

print_options = {**PROFILES["default"], "sci_mode": None}


def set_printoptions(
    precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None
) -> None:
    """Change how tensors print, as torch.set_printoptions does (None keeps a setting)."""
    if profile is not None:
        if profile not in PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {list(PROFILES)}, "
                             f"got {profile!r}")
        print_options.update(PROFILES[profile])
    for name, value in [("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)]:
        if value is not None:
            print_options[name] = value
    print_options["sci_mode"] = sci_mode  # (as in PyTorch: every call sets it, None = automatic)


class Formatter:
    """One format for every element shown: integer, fixed or scientific, and a common width."""

    def __init__(self, values: list, is_float: bool):
        self.is_float = is_float
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        if not is_float:
            self.width = max([1] + [len(str(value)) for value in values])
            return
        finite = [value for value in values if math.isfinite(value) and value != 0]
        if not finite:
            return  # only zeros, nan and inf: integer mode (`0.`, `nan`)
        largest = max(abs(value) for value in finite)
        smallest = min(abs(value) for value in finite)
        self.int_mode = all(value.is_integer() for value in finite)
        if print_options["sci_mode"] is None:
            self.sci_mode = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
        else:
            self.sci_mode = print_options["sci_mode"]
        self.width = max(len(self.text(value)) for value in finite)

    def text(self, value) -> str:
        """One element without padding: `1.`, `0.1235`, `1.0000e+08`, `nan`, `7`, `True`."""
        precision = print_options["precision"]
        if not self.is_float:
            return str(value)
        if self.sci_mode:
            return f"{value:.{precision}e}"
        if self.int_mode:
            return f"{value:.0f}" + ("." if math.isfinite(value) else "")
        return f"{value:.{precision}f}"

    def format(self, value) -> str:
        """One element padded on the left to the common width."""
        return self.text(value).rjust(self.width)


def shown_indices(size: int, summarize: bool) -> list:
    """The indices shown along one dim: all, or the first and last edgeitems (None for '...')."""
    edge = print_options["edgeitems"]
    if summarize and size > 2 * edge:
        return list(range(edge)) + [None] + list(range(size - edge, size))
    return list(range(size))


def shown_values(array, summarize: bool) -> list:
    """The elements that will be printed, as Python numbers (what the Formatter looks at)."""
    if array.ndim == 0:
        return [array.item()]
    if not summarize:
        return array.reshape(-1).tolist()
    values = []
    for index in shown_indices(array.shape[0], summarize):
        if index is not None:
            values += shown_values(array[index], summarize)
    return values


def row_text(array, indent: int, summarize: bool, formatter: Formatter) -> str:
    """A 1-d array as "[a, b, c]", wrapped so that each line fits in linewidth."""
    ellipsis = " ..." if print_options["edgeitems"] else "..."  # (PyTorch's spacing)
    items = [
        ellipsis if index is None else formatter.format(array[index].item())
        for index in shown_indices(array.shape[0], summarize)
    ]
    per_line = max(1, (print_options["linewidth"] - indent) // (formatter.width + 2))
    lines = [", ".join(items[start:start + per_line]) for start in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def array_text(array, indent: int, summarize: bool, formatter: Formatter) -> str:
    """The nested brackets of an array whose "[" sits at column `indent`."""
    if array.ndim == 0:
        return formatter.format(array.item())
    if array.ndim == 1:
        return row_text(array, indent, summarize, formatter)
    rows = [
        "..." if index is None else array_text(array[index], indent + 1, summarize, formatter)
        for index in shown_indices(array.shape[0], summarize)
    ]
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def data_text(array, indent: int) -> str:
    """The data part of the repr: summarise, choose the format, lay out."""
    if array.size == 0:
        return "[]"
    summarize = array.size > print_options["threshold"]
    formatter = Formatter(shown_values(array, summarize), backend.is_floating(array.dtype))
    return array_text(array, indent, summarize, formatter)


def suffixes(tensor) -> list:
    """What follows the data: device=, size=, dtype=, then grad_fn= or requires_grad=True."""
    found = []
    if tensor.device is not backend.CPU:
        found.append(f"device='{tensor.device}'")
    empty = tensor.array.size == 0
    if (empty and tensor.ndim != 1) or (not empty and not print_options["edgeitems"]):
        found.append(f"size={tuple(tensor.shape)}")
    default_dtypes = [backend.get_default_dtype()] + ([] if empty else [backend.int64,
                                                                         backend.bool_])
    if tensor.dtype not in default_dtypes:  # (an empty tensor can't show that it holds ints)
        found.append(f"dtype=minigrad.{tensor.dtype}")
    if tensor._view_of is not None and tensor._lost_history():
        found.append("grad_fn=<Invalid>")  # (as PyTorch prints it; reading grad_fn raises)
    elif tensor.grad_fn is not None:
        found.append(f"grad_fn={tensor.grad_fn!r}")
    elif tensor.requires_grad:
        found.append("requires_grad=True")
    return found


def add_suffixes(text: str, extras: list, indent: int) -> str:
    """Append each suffix after ", ", or on a new indented line when it would pass linewidth."""
    used = len(text.rsplit("\n", 1)[-1]) + 2  # PyTorch counts the last line 2 longer
    for suffix in extras:
        if used + len(suffix) + 2 > print_options["linewidth"]:
            text += ",\n" + " " * indent + suffix
            used = indent + len(suffix)
        else:
            text += ", " + suffix
            used += len(suffix) + 2
    return text + ")"


def tensor_repr(tensor) -> str:
    """repr(tensor) as PyTorch writes it: `tensor([0.1235, 1.0000], requires_grad=True)`."""
    text = PREFIX + data_text(backend.to_host(tensor.array), len(PREFIX))
    return add_suffixes(text, suffixes(tensor), len(PREFIX))
