"""Differential fuzzing against PyTorch: random programs agree, and each known gap is a test.

tests/differential.py writes random straight-line programs that run unchanged under torch and
minigrad and compares them after every statement, then their first and second derivatives. Here:

    pytest tests/test_differential.py                       # fast profile: 1200 programs per mode
    MINIGRAD_FUZZ_PROGRAMS=25000 pytest tests/test_differential.py -k agree   # long profile
    python -m tests.differential --programs 25000 --mode both   # the same, with a summary
    python -m tests.differential --programs 2000 --per-gap      # how often each gap disagrees

MINIGRAD_FUZZ_SEED changes the programs (the default, 0, is what CI runs).

Each entry of KNOWN_GAPS is a class of disagreement on the current core, which the generator
leaves out. Each has a test below, test_gap_<name>: its smallest program, which must agree with
torch. They are xfail(strict=True): the day the core is fixed, the test passes, pytest reports
the XPASS as a failure, and the fix removes the marker and the KNOWN_GAPS entry (the generator
then writes such programs again).
"""

from __future__ import annotations

import os

import pytest

import minigrad as mg
from tests.differential import (
    KNOWN_GAPS,
    Generator,
    check_source,
    classify,
    fuzz,
    report,
)

PROGRAMS = int(os.environ.get("MINIGRAD_FUZZ_PROGRAMS", "1200"))
SEED = int(os.environ.get("MINIGRAD_FUZZ_SEED", "0"))


def agrees(source: str) -> None:
    """Run a program's source under torch and minigrad: AssertionError where they part."""
    disagreement = check_source(source)
    assert disagreement is None, disagreement.describe()


# ---- the fuzzer ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["pure", "inplace"])
def test_random_programs_agree_with_torch(mode):
    result = fuzz(PROGRAMS, SEED, mode)
    found = [f"-- {name}: {count} of {result.programs} programs\n{report(*result.examples[name])}"
             for name, count in result.classes.most_common()]
    assert not found, "minigrad and torch disagree (a new class: fix it, or add it to " \
                      "KNOWN_GAPS with a test below):\n\n" + "\n\n".join(found)


def test_generation_is_deterministic():
    first = [Generator(3, "inplace").program(i)[0].source() for i in range(5)]
    again = [Generator(3, "inplace").program(i)[0].source() for i in range(5)]
    other = [Generator(4, "inplace").program(i)[0].source() for i in range(5)]
    assert first == again
    assert first != other


def test_programs_are_source_that_runs_under_both_libraries():
    program, disagreement = Generator(0, "inplace").program(1)
    assert disagreement is None
    assert program.grad_statements(), "the program should end with the gradient passes"
    assert check_source(program.source("torch")) is None  # parsed back, run, compared


def test_a_planted_bug_is_found_classified_and_shrunk(monkeypatch):
    """sin() off by one part in 10^7: the fuzzer finds it, calls it new, and shrinks it to the
    statement that calls sin (and the leaf it needs)."""
    sin = mg.Tensor.sin
    monkeypatch.setattr(mg.Tensor, "sin", lambda self: sin(self) * (1 + 1e-7))
    result = fuzz(200, SEED, "pure")
    assert "new:value:unary:sin" in result.classes, result.classes
    program, disagreement = result.examples["new:value:unary:sin"]
    assert classify(program, disagreement) == "new:value:unary:sin"
    assert len(program.statements) <= 2, report(program, disagreement)
    assert ".sin()" in program.statements[-1].text


def test_every_known_gap_has_a_regression_test():
    """test_gap_<name>, and more examples of a gap as test_gap_<name>_<what>."""
    tests = {name for name in globals() if name.startswith("test_gap_")}
    expected = {"test_gap_" + name.replace("-", "_") for name in KNOWN_GAPS}
    no_gap = {t for t in tests if not any(t == e or t.startswith(e + "_") for e in expected)}
    assert expected <= tests and not no_gap, f"no test: {expected - tests}; no gap: {no_gap}"


# ---- issue 26's examples, fixed: they agree, and the generator writes programs like them ---------

FIXED = {
    "index-to-0d-is-a-view": """
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64)
        v1 = v0[1]
        v0.mul_(2.0)
    """,
    "repeat-copies": """
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64)
        v1 = v0.repeat(1, 1)
        v1.mul_(2.0)
    """,
    "view-made-before-inplace-on-base": """
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2 = v1[:1]
        v1.mul_(3.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "pow-number-base-keeps-float64": """
        v0 = lib.tensor([0.5, -1.0], dtype=lib.float64)
        v1 = lib.pow(1.7, v0)
    """,
    "cross-entropy-all-ignored": """
        v0 = lib.tensor([[1.0, 2.0], [0.5, 1.0]], dtype=lib.float64, requires_grad=True)
        v1 = F.cross_entropy(v0, lib.tensor([-100, -100]))
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "cross-entropy-unbatched": """
        v0 = lib.tensor([1.0, 2.0, 0.5], dtype=lib.float64, requires_grad=True)
        v1 = F.cross_entropy(v0, lib.tensor(0))
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "inplace-on-chunk-output-under-grad": """
        v0 = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2, v3 = v1.chunk(2)
        v2.add_(1.0)
    """,
    "view-of-transposed-raises": """
        v0 = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64)
        v1 = v0.t().view(6)
    """,
    "overlapping-copy-raises": """
        v0 = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)
        v0.t().copy_(v0)
    """,
    "softmax-of-0d-checks-dim": """
        v0 = lib.tensor(1.0, dtype=lib.float64)
        v1 = v0.softmax(1)
    """,
    "pow-then-add_-then-backward": """
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 ** 2
        v1.add_(1.0)
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "reciprocal-then-div_-of-input": """
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2 = 1.0 / v1
        v1.div_(2.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "cross-entropy-then-add_-of-logits": """
        v0 = lib.tensor([[1.0, 2.0], [0.5, 1.0]], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2 = F.cross_entropy(v1, lib.tensor([0, 1]))
        v1.add_(1.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "inplace-on-view-of-non-contiguous-base": """
        v0 = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
        v1 = (v0 * 1.0).t()
        v2 = v1[0]
        v2.mul_(2.0)
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "inplace-on-size-1-expand": """
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64)
        v1 = v0.expand(1, 2)
        v1.add_(1.0)
    """,
    "expand-is-a-tracked-view": """
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2 = v1.expand(3, 2)
        v1.mul_(2.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "inplace-on-expand-of-a-leaf-raises": """
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64, requires_grad=True)
        v1 = v0.expand(1, 2)
        v1.add_(1.0)
    """,
    "cross-entropy-all-ignored-with-smoothing": """
        v0 = lib.tensor([[1.0, 2.0], [0.5, 1.0]], dtype=lib.float64, requires_grad=True)
        v1 = F.cross_entropy(v0, lib.tensor([-100, -100]), label_smoothing=0.1)
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "nan-loss-of-all-ignored-targets-then-more-ops": """
        v0 = lib.tensor([[1.0, 2.0], [0.5, 1.0]], dtype=lib.float64, requires_grad=True)
        v1 = F.cross_entropy(v0, lib.tensor([-100, -100]))
        v2 = v1.cos()
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """,
    "list-index-assignment-on-a-view": """
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64)
        v1 = v0[0:2]
        v1[[0]] = 0.5
    """,
}


@pytest.mark.parametrize("name", FIXED)
def test_issue_26_example_agrees(name):
    agrees(FIXED[name])


def test_an_in_place_activation_saves_the_tensor_itself_as_torch():
    agrees("""
        v0 = lib.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=lib.float64, requires_grad=True)
        v1 = lib.maximum(v0, v0)
        v1.tanh_()
        with lib.no_grad(): v1.add_(1.0, alpha=1.0)
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)  # torch: modified by an inplace operation (tanh_ saved v1, its output); seed 81


def test_an_in_place_activation_on_a_view_saves_the_view_as_torch():
    agrees("""
        v0 = lib.tensor([[0.5], [1.5]], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2 = v1.view(-1)
        v2.sigmoid_()
        v3 = lib.tensor([-1.33], dtype=lib.float64, requires_grad=True)
        v2 *= v3
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0, v3], allow_unused=True, create_graph=True)
    """)  # torch: modified by an inplace operation (sigmoid_ saved the view v2); seed 81


def test_conv2d_keeps_its_weight_even_when_only_the_weight_needs_a_gradient():
    agrees("""
        v0 = lib.tensor([[[[1.0, 2.0, 0.5, 1.0], [1.0, 1.0, -1.0, 1.0]]]], dtype=lib.float64)
        v1 = lib.tensor([[[[1.0, 0.5], [-1.0, 1.0]]]], dtype=lib.float64, requires_grad=True)
        v2 = F.conv2d(v0, v1, stride=2, padding=1)
        v3 = v1.detach()
        v3.copy_(v3)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v1], allow_unused=True, create_graph=True)
    """)  # torch: modified by an inplace operation (the weight, saved by the convolution); seed 93


def test_logsumexp_saves_its_result_as_torch():
    agrees("""
        v0 = lib.tensor([[0.5, -1.0], [2.0, 1.5]], dtype=lib.float64, requires_grad=True)
        v1 = v0.logsumexp(1, keepdim=True)
        v1.mul_(2.0)
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)  # torch: modified by an inplace operation (output 0 of Logsumexp); seed 91


# ---- the known gaps: each class's smallest program, as torch runs it -----------------------------


def gap(name: str):
    """The test of a KNOWN_GAPS entry: it fails (the program disagrees) until the core is fixed."""
    return pytest.mark.xfail(strict=True, raises=AssertionError,
                             reason=f"{name}: {KNOWN_GAPS[name].reason}")




def test_tensor_alias_methods_agree():
    agrees("""
        v0 = lib.tensor([[1.0, -2.0], [0.5, 4.0]], dtype=lib.float64, requires_grad=True)
        v1 = v0.absolute()
        v2 = v0.negative()
        v3 = v0.subtract(v1)
        v4 = v0.multiply(v1)
        v5 = v0.divide(v1)
        v6 = v0.true_divide(v1)
        v7 = v0.swapaxes(0, 1)
        v8 = v0.swapdims(0, 1)
    """)


def test_ops_torch_has_no_integer_or_bool_kernel_for_raise_as_in_torch():
    agrees("""
        v0 = lib.tensor([1, 2])
        v1 = v0.softmax(0)
    """)  # torch: NotImplementedError: "softmax_lastdim_kernel_impl" not implemented for 'Long'
    agrees("""
        v0 = lib.tensor([[True, False], [False, True]])
        v1 = v0 @ v0
    """)  # torch: NotImplementedError: "bmm" not implemented for 'Bool'


def test_class_losses_leave_ignored_rows_out():
    agrees("""
        v0 = lib.tensor([[1.0, float("nan")], [0.5, 1.0]], dtype=lib.float64)
        v1 = F.cross_entropy(v0, lib.tensor([-100, 1]), reduction='none')
    """)  # torch [0., 0.474077], minigrad [nan, 0.474077]


def test_a_nan_gradient_through_a_zero_slope_gives_zero():
    agrees("""
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64, requires_grad=True)
        v1, v2 = v0.max(dim=-1, keepdim=True)
        v3 = v1.var(dim=-1)
        loss = v3.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)  # torch [[0., nan]], minigrad [[nan, nan]]


def test_std_of_equal_values_has_a_zero_gradient():
    agrees("""
        v0 = lib.tensor([2.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = v0.std()
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)


@gap("norm-at-zero-second-derivative")
def test_gap_norm_at_zero_second_derivative():
    agrees("""
        v0 = lib.tensor([0.0, 0.0], dtype=lib.float64, requires_grad=True)
        v1 = v0.norm()
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
        loss2 = sum([(g * w).sum() for g, w in zip(grads, [1.0]) if g is not None])
        grads2 = lib.autograd.grad(loss2, [v0], allow_unused=True)
    """)


@gap("bce-double-backward-torch-eps")
def test_gap_bce_double_backward_torch_eps():
    agrees("""
        v0 = lib.tensor([[-2.0, 0.0], [-2.0, -1.0]], dtype=lib.float64, requires_grad=True)
        v1 = (v0 * v0 + 1.0).sigmoid()
        v2 = F.binary_cross_entropy(v1, lib.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=lib.float64))
        grads = lib.autograd.grad(v2, [v0], create_graph=True)
        loss2 = (grads[0] * lib.tensor([[-1.32, 0.65], [-1.86, 1.39]], dtype=lib.float64)).sum()
        grads2 = lib.autograd.grad(loss2, [v0])
    """)  # torch -0.690684... off by 2e-9 from minigrad and from finite differences


def test_bce_with_logits_grad_at_zero_agrees():
    agrees("""
        v0 = lib.tensor([0.0, 1.0], dtype=lib.float64, requires_grad=True)
        v1 = F.binary_cross_entropy_with_logits(v0, lib.tensor([1.0, 1.0], dtype=lib.float64))
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)


def test_flatten_that_merges_nothing_returns_the_input_agrees():
    agrees("""
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = v0.flatten()
        loss = v0.sum()
        grads = lib.autograd.grad(loss, [v0, v1], allow_unused=True, create_graph=True)
    """)


def test_advanced_indexing_results_are_contiguous_as_in_torch():
    agrees("""
        v0 = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64)
        v1 = v0[:, [2, 0]]
        v2 = v1.view(4)
    """)  # NumPy lays x[:, [2, 0]] out indexed dim first: view() refused before
    agrees("""
        v0 = lib.tensor([[[1.0, 2.0], [3.0, 4.0]]], dtype=lib.float64, requires_grad=True)
        v1 = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
        v2 = v0[:, lib.tensor([-2, -2])]
        v3 = v2.matmul(v1)
        v2.mul_(2.0)
        loss = (v3.sum() + v2.sum())
        grads = lib.autograd.grad(loss, [v0, v1], allow_unused=True, create_graph=True)
    """)  # torch: matmul saved v2 folded (a view): modified by an inplace operation (seed 29)


@gap("result-layout-differs")
def test_gap_result_layout_differs():
    agrees("""
        v0 = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64)
        v1 = v0.t().log_softmax(dim=0)
        v2 = v1.view(-1)
    """)
    agrees("""
        v0 = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64)
        v1 = lib.cat([v0.t(), v0.t()], dim=1)
        v2 = v1.view(-1)
    """)
    agrees("""
        v0 = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64)
        v1 = v0.t().clone()
        v2 = v1.view(-1)
    """)  # torch: view size is not compatible (its clone keeps the transposed strides)
    agrees("""
        v0 = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64)
        v1 = v0.t() + v0.t().contiguous()
        v2 = v1.view(-1)
    """)  # torch: view size is not compatible (the sum follows the transposed first operand)
    agrees("""
        v0 = lib.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]], dtype=lib.float64)
        v1 = v0.permute(0, 2, 1).sum(dim=0)
        v2 = v1.view(-1)
    """)  # minigrad: view size is not compatible (its sum keeps the permuted order)


def test_writes_into_expanded_views_agree():
    agrees("""
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2 = v1.expand(3, 2)
        v2.fill_(5.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)  # torch, in backward: unsupported operation: more than one element of the written-to
    # tensor refers to a single memory location
    agrees("""
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64)
        v1 = v0.expand(3, 2)
        v1.fill_(lib.tensor(5.0, dtype=lib.float64))
    """)  # torch raises the same at once
    agrees("""
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64)
        v1 = v0.expand(3, 2)
        v1.copy_(v1)
    """)  # minigrad: copy_: unsupported operation (torch: copying a tensor onto itself is a no-op)


def test_transpose_of_0d_is_a_tracked_view():
    agrees("""
        v0 = lib.tensor(1.0, dtype=lib.float64, requires_grad=True)
        v1 = v0.transpose(0, 0)
        v1.add_(1.0)
    """)  # torch: a view of a leaf Variable that requires grad is being used in an in-place op


def test_in_place_on_split_outputs_or_their_base_agrees():
    agrees("""
        v0 = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2, v3 = v1.split(2)
        v1.mul_(2.0)
        v4 = v2 * 1.0
    """)  # torch: Output 0 of Split is a view and its base ... has been modified inplace


def test_dense_overlapping_operands_raise_as_in_torch():
    agrees("""
        v0 = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)
        v1 = v0[0]
        v0 -= v1
    """)  # torch: unsupported operation: some elements ... refer to a single memory location


def test_matmul_saves_the_folded_3d_operand_as_torch():
    agrees("""
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = lib.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]], dtype=lib.float64)
        v2 = v0 @ v1
        v1.add_(1.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)
    agrees("""
        v0 = lib.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]], dtype=lib.float64)
        v1 = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
        v2 = v0.transpose(2, 1) @ v1
        v0.add_(1.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v1], allow_unused=True, create_graph=True)
    """)


def test_ops_save_what_torch_saves():
    agrees("""
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2 = v1.clamp(0.0, 1.5)
        v1.add_(1.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)  # torch: one of the variables needed for gradient computation has been modified


@gap("overlap-by-size-1-strides")
def test_gap_overlap_by_size_1_strides():
    agrees("""
        v0 = lib.tensor([[1.0], [2.0]], dtype=lib.float64)
        v1 = v0.swapdims(1, 0)
        v2 = v1.reshape(1, 2)
        v2 -= v1
    """)  # torch: unsupported operation: some elements ... refer to a single memory location;
    # minigrad: v2 = [[0, 0]] (found by the fuzzer, seed 41)


@gap("overlap-by-size-1-strides")
def test_gap_overlap_by_size_1_strides_in_setitem():
    agrees("""
        v0 = lib.tensor([1.0, 1.0, 1.0], dtype=lib.float64)
        v1, v2 = v0.chunk(2, dim=0)
        v3 = v2.expand_as(v2)
        v3[::2] = v2
    """)  # torch: v3[::2] has stride 2, v2 stride 1, one element each: a partial overlap, it
    # raises; minigrad: the same element, nothing to do (found by the fuzzer, seed 63)


@gap("inplace-overlapping-operand")
def test_gap_inplace_overlapping_operand():
    agrees("""
        v0 = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)
        v0 *= v0[:, :1]
    """)  # torch: [[1, 2], [9, 36]] (it reads v0[1, 0] after writing it); minigrad: [[1, 2],
    # [9, 12]]
