"""In place on memory that views share, as PyTorch does it: four gaps of the differential fuzzer,
closed (tests/differential.py's KNOWN_GAPS: inplace-overlapping-operand,
transpose-of-0d-untracked, write-into-expanded-view, multi-output-view-inplace).

Each test runs one small program under torch and under minigrad and claims they agree: the same
values, or the same kind of error with torch's words in minigrad's message.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import minigrad as mg

PARTLY_OVERLAPS = "some elements of the input tensor and the written-to tensor refer to a single"
EXPANDED = "more than one element of the written-to tensor refers to a single memory location"
MULTI_OUTPUT_CHANGED = "its base or another view of its base has been modified inplace"


def outcome(lib, program):
    """("values", what program(lib) returns, as lists) or ("raises", error type, message)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns on index_put_ into an expanded view
            result = program(lib)
    except Exception as error:  # noqa: BLE001  (any error: its type is compared)
        return "raises", type(error), str(error)
    return "values", _plain(result)


def _plain(result):
    if isinstance(result, (tuple, list)):
        return [_plain(r) for r in result]
    return result.tolist() if hasattr(result, "tolist") else result


def agree(program, words: str | None = None) -> None:
    """program gives the same values under both, or raises the same error type in both (and
    minigrad's message has `words`, torch's too)."""
    expected, got = outcome(torch, program), outcome(mg, program)
    assert expected[:2] == got[:2], f"torch: {expected}\nminigrad: {got}"
    if words is not None:
        assert words in expected[2] and words in got[2], f"torch: {expected}\nminigrad: {got}"


def matrix(lib, requires_grad=False):
    """[[1, 2, 3], [4, 5, 6], [7, 8, 9]], computed (not a leaf) when it requires grad."""
    x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], dtype=lib.float64,
                   requires_grad=requires_grad)
    return x * 1.0 if requires_grad else x


# ---- inplace-overlapping-operand -----------------------------------------------------------------

PARTLY_OVERLAPPING = {
    "x -= x[0]": lambda x: x.sub_(x[0]),
    "x.mul_(x.t())": lambda x: x.mul_(x.t()),
    "x.add_(x[0], alpha=2)": lambda x: x.add_(x[0], alpha=2),
    "x *= x[1, 1]": lambda x: x.mul_(x[1, 1]),
    "x.clamp_(min=x[0])": lambda x: x.clamp_(min=x[0]),
    "x[0].add_(x)": lambda x: x[0].add_(x),
    "x[1:] = x[:2]": lambda x: x.__setitem__(slice(1, None), x[:2]),
    "x[0, :2] = x[0, 1:]": lambda x: x.__setitem__((0, slice(0, 2)), x[0, 1:]),
    "x[[0, 1]] = x[1]": lambda x: x.__setitem__([0, 1], x[1]),
    "x[[0, 1, 2]] = x": lambda x: x.__setitem__([0, 1, 2], x),
}


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("name", PARTLY_OVERLAPPING)
def test_an_operand_that_partly_overlaps_the_written_tensor_is_refused(name, requires_grad):
    agree(lambda lib: PARTLY_OVERLAPPING[name](matrix(lib, requires_grad)), PARTLY_OVERLAPS)


NOT_OVERLAPPING_FOR_TORCH = {
    "x.add_(x)": lambda x: x.add_(x),  # the very same elements
    "x.add_(x.detach())": lambda x: x.add_(x.detach()),
    "x[0] += x[1]": lambda x: x[0].add_(x[1]),  # disjoint
    "x[0] = x[0]": lambda x: x.__setitem__(0, x[0]),
    "x[0:1] = x[0]": lambda x: x.__setitem__(slice(0, 1), x[0]),
    "x[1:] = x[0]": lambda x: x.__setitem__(slice(1, None), x[0]),  # broadcast: not checked
    "x.fill_(x[0, 0])": lambda x: x.fill_(x[0, 0]),  # fill_ reads its value first
    "x[x > 4] = x[2, 1]": lambda x: x.__setitem__(x > 4, x[2, 1]),  # masked_fill_, likewise
}


def test_only_a_partial_overlap_is_refused_not_the_same_disjoint_or_broadcast_elements():
    for write in NOT_OVERLAPPING_FOR_TORCH.values():
        agree(lambda lib, write=write: (lambda x: (write(x), x)[1])(matrix(lib)))
    agree(lambda lib: PARTLY_OVERLAPPING["x -= x[0]"](matrix(lib)), PARTLY_OVERLAPS)


# x[index] = x with a one-element x: PyTorch drops the value's leading size-1 dims and expands
# what is left; a 0-d leftover expands with stride 0 everywhere, which is never the written
# elements' own strides (a partial overlap) unless nothing needs expanding (found by the fuzzer,
# seed 43).
SELF_ASSIGNED = [((1,), (None, slice(None))), ((1, 1), (None,)), ((1,), (None,)),
                 ((1,), (slice(None), None)), ((1, 2), (None, 0)), ((2, 1), (None,)),
                 ((1,), (None, None, Ellipsis)), ((1, 1), (0,)), ((1, 1), (0, 0)),
                 ((1, 1), (slice(None),)), ((1, 1), (None, 0)), ((1,), (0,)), ((1,), Ellipsis),
                 ((3,), (None, slice(None))), ((1, 3), (0,)), ((1, 1, 1), (0, 0))]


@pytest.mark.parametrize("shape, index", SELF_ASSIGNED, ids=str)
def test_assigning_a_tensor_into_its_own_elements_raises_where_torch_does(shape, index):
    def program(lib):
        x = lib.arange(1.0, 1.0 + torch.Size(shape).numel(), dtype=lib.float64).reshape(shape)
        x[index] = x
        return x
    agree(program)


def test_one_expanded_element_assigned_to_itself_is_the_same_elements_as_in_torch():
    """Split pieces of an expanded 0-d tensor are one memory location with stride 0: writing
    one into the other through x[None, :] is the same elements for torch (seed 29)."""
    def program(lib):
        v2 = lib.tensor(0.79, dtype=lib.float64).expand(2)
        v5, v6 = v2.split(1, dim=0)
        v5[None, :] = v6
        return v2
    agree(program)


def test_a_value_with_leading_size_1_dims_is_written_as_torch_writes_it():
    """x[0] = ones(1) writes one number (NumPy refuses it), with its gradient of the value's
    shape; a value that does not fit is torch's RuntimeError."""
    def program(lib):
        x = lib.zeros(3, dtype=lib.float64, requires_grad=True)
        v = lib.tensor([[2.0]], dtype=lib.float64, requires_grad=True)
        y = x * 1.0
        y[1] = v * 3.0
        y[2] = lib.ones(1, 1, 1, dtype=lib.float64)
        weights = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)
        grads = lib.autograd.grad((y * weights).sum(), [x, v])
        plain = lib.zeros(2, 3)
        plain[0, 1] = lib.ones(1, 1)
        plain[1] = lib.ones(1, 3) * 4
        return y, grads[0], grads[1], grads[1].shape, plain
    agree(program)
    for write in (lambda x: x.__setitem__((slice(None), None), lib_ones(x, 3)),
                  lambda x: x.__setitem__(0, lib_ones(x, 2, 1)),
                  lambda x: x.__setitem__([0, 1], lib_ones(x, 3))):
        agree(lambda lib, write=write: write(lib.zeros(3)))
        agree(lambda lib, write=write: write(lib.zeros(3, requires_grad=True) * 1.0))


def lib_ones(like, *shape):
    """ones(*shape) from the library `like` comes from."""
    return (torch if isinstance(like, torch.Tensor) else mg).ones(*shape)


# ---- transpose-of-0d-untracked -------------------------------------------------------------------


def test_transpose_of_a_0d_tensor_is_a_view_of_a_leaf_that_refuses_in_place():
    def program(lib):
        x = lib.tensor(1.0, dtype=lib.float64, requires_grad=True)
        return x.transpose(0, 0).add_(1.0)
    agree(program, "a view of a leaf Variable that requires grad")


@pytest.mark.parametrize("values", [2.0, [2.0, 3.0]], ids=["0d", "1d"])
def test_a_transpose_of_fewer_than_2_dims_is_a_view_that_sees_its_base_change(values):
    def program(lib):
        x = lib.tensor(values, dtype=lib.float64)
        y = x.transpose(0, 0) if x.dim() == 0 else x.t()
        x.mul_(5.0)
        return y, y._version, y is x
    agree(program)


# ---- write-into-expanded-view --------------------------------------------------------------------


def _write_expanded(write, differentiate=True):
    """v1 (1, 2) expanded to v2 (3, 2); write(v2); v2, and v0's gradient of v2's sum."""
    def program(lib):
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64, requires_grad=True)
        v2 = (v0 * 1.0).expand(3, 2)
        write(v2)
        return v2, lib.autograd.grad(v2.sum(), [v0])[0] if differentiate else None
    return program


@pytest.mark.parametrize("write", [lambda v: v.fill_(5.0), lambda v: v.zero_(),
                                   lambda v: v.__setitem__([0, 1], 7.0), lambda v: v.copy_(v)],
                         ids=["fill_", "zero_", "setitem-list", "copy_-itself"])
def test_a_recorded_write_through_an_expanded_view_is_made_then_backward_raises(write):
    agree(_write_expanded(write, differentiate=False))
    agree(_write_expanded(write), EXPANDED)


def test_backward_raises_only_where_the_write_went_through_a_stretched_dim():
    for write in (lambda v: v.__setitem__(0, 7.0), lambda v: v.__setitem__((0, 1), 7.0),
                  lambda v: v[0].fill_(7.0)):  # one row: one element per memory location
        agree(_write_expanded(write))
    agree(_write_expanded(lambda v: v[:, 0].fill_(7.0)), EXPANDED)


def test_fill_with_a_tensor_value_refuses_an_expanded_view_at_once():
    def program(lib):
        v = lib.tensor([[1.0, 2.0]], dtype=lib.float64).expand(3, 2)
        return v.fill_(lib.tensor(5.0, dtype=lib.float64))
    agree(program, EXPANDED)


def test_copying_an_expanded_view_onto_itself_is_fine():
    def program(lib):
        v = lib.tensor([[1.0, 2.0]], dtype=lib.float64).expand(3, 2)
        return v.copy_(v)
    agree(program)


# ---- multi-output-view-inplace -------------------------------------------------------------------


def _split_then(change, use):
    """v1 = v0 * 1 split in two; change(v1, pieces); then use(pieces)."""
    def program(lib):
        v0 = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        pieces = v1.split(2)
        change(lib, v1, pieces)
        return use(lib, pieces)
    return program


def _no_grad(lib, write):
    with lib.no_grad():
        write()


CHANGES = {
    "base.mul_": lambda lib, v1, p: v1.mul_(2.0),
    "sibling.mul_-no_grad": lambda lib, v1, p: _no_grad(lib, lambda: p[1].mul_(2.0)),
    "piece.mul_-no_grad": lambda lib, v1, p: _no_grad(lib, lambda: p[0].mul_(2.0)),
    "base[0]=-no_grad": lambda lib, v1, p: _no_grad(lib, lambda: v1.__setitem__(0, 5.0)),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_split_output_whose_memory_changed_in_place_cannot_be_used_under_grad(change):
    agree(_split_then(CHANGES[change], lambda lib, p: p[0] * 1.0), MULTI_OUTPUT_CHANGED)
    agree(_split_then(CHANGES[change], lambda lib, p: p[0].t()), MULTI_OUTPUT_CHANGED)


def test_a_changed_split_output_still_computes_under_no_grad_and_reports_requires_grad():
    def use(lib, pieces):
        with lib.no_grad():
            doubled = pieces[0] * 2.0
        return pieces[0], pieces[0].requires_grad, doubled, pieces[0] * 1.0
    agree(_split_then(CHANGES["base.mul_"], use), MULTI_OUTPUT_CHANGED)


def test_what_was_recorded_from_a_split_output_before_the_change_still_differentiates():
    def program(lib):
        v0 = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        first, _ = v1.split(2)
        used = first * 3.0
        v1.mul_(2.0)
        gradient = lib.autograd.grad(used.sum(), [v0])[0]
        return gradient, first * 1.0
    agree(program, MULTI_OUTPUT_CHANGED)


def test_a_split_piece_whose_base_changed_raises_on_grad_fn_and_prints_invalid():
    """As in torch: reading .grad_fn or .is_leaf raises, repr shows grad_fn=<Invalid>."""
    import torch

    for lib in (torch, mg):
        v0 = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2, _ = v1.split(2)
        v1.mul_(2.0)
        assert v2.requires_grad
        for attr in ("grad_fn", "is_leaf"):
            with pytest.raises(RuntimeError, match="its base or another view of its base"):
                getattr(v2, attr)
        assert "grad_fn=<Invalid>" in repr(v2), lib.__name__


@pytest.mark.parametrize("base_requires_grad", [True, False])
def test_a_view_made_under_no_grad_refuses_a_recorded_in_place_change(base_requires_grad):
    """As in torch: "A view was created in no_grad mode and is being modified inplace with grad
    mode enabled"; under no_grad, or with nothing requiring grad, the change is allowed."""
    for lib in (torch, mg):
        x = lib.tensor([1.0, 2.0], requires_grad=base_requires_grad)
        y = x * 1.0
        with lib.no_grad():
            v = y[:1]
            vv = v[:1]
        w = lib.tensor([3.0], requires_grad=True)
        for view in (v, vv):
            with pytest.raises(RuntimeError, match="created in no_grad mode"):
                view.mul_(w)
        with lib.no_grad():
            v.mul_(w)
        assert y.tolist()[0] == 3.0, lib.__name__
