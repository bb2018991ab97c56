"""The docs agree with the code: links resolve, python blocks run and print what the page shows.

Conventions (see docs/README.md): a ```python block runs, in order, in one namespace per page; a
```text block right after it (only blank lines between) is its exact output; other fences are
not run; a block whose first line is `# requires: cuda` is skipped without a GPU. Numbers in the
output are compared with a tolerance (float32's last digits depend on the CPU's BLAS kernels:
AVX2 or AVX-512, and OPENBLAS_CORETYPE), everything else exactly. A link whose
text is a code span naming a function or class, like [`tape`](../minigrad/engine/backward.py),
must point to a file that defines it.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import minigrad as mg

REPO = Path(__file__).resolve().parent.parent
DOCS = sorted((REPO / "docs").glob("*.md"))
LINKED_PAGES = DOCS + [p for p in [REPO / "README.md"] if p.exists()]

FENCE = re.compile(r"^(`{3,}|~{3,})\s*([^`\s]*)")
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IDENTIFIER = re.compile(r"^`([A-Za-z_][\w.]*)(?:\(\))?`$")


def parse(text: str):
    """Split a Markdown page into prose lines (code blocks blanked) and fenced blocks.

    Blocks are dicts: info (the fence's language), code, start and end (0-based line numbers of
    the opening and closing fences).
    """
    lines = text.split("\n")
    prose, blocks, open_block = [], [], None
    for number, line in enumerate(lines):
        match = FENCE.match(line.strip()) if len(line) - len(line.lstrip()) < 4 else None
        if open_block is None and match:
            fence, info = match.group(1), match.group(2)
            open_block = {"fence": fence, "info": info, "start": number, "code": []}
            prose.append("")
        elif open_block is not None:
            stripped = line.strip()
            fence = open_block["fence"]
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                open_block["end"] = number
                open_block["code"] = "\n".join(open_block["code"]) + "\n"
                blocks.append(open_block)
                open_block = None
            else:
                open_block["code"].append(line)
            prose.append("")
        else:
            prose.append(line)
    assert open_block is None, f"a code block opened on line {open_block['start'] + 1} never closes"
    return prose, blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps only its text
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set:
    prose, _ = parse(page.read_text())
    seen: dict = {}
    result = set()
    for line in prose:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(page: Path):
    """(line number, link text, target) for every link outside code blocks."""
    prose, _ = parse(page.read_text())
    for number, line in enumerate(prose, start=1):
        for match in LINK.finditer(line):
            yield number, match.group(1), match.group(2)


def defines(path: Path, name: str) -> bool:
    """True when a Python file defines `name` (def, class or a top-level assignment)."""
    if name == path.stem:  # a link to a module by its own name, e.g. `mg.viz` -> viz.py
        return True
    pattern = rf"^\s*(?:def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*[:=]"
    return re.search(pattern, path.read_text(), re.MULTILINE) is not None


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page):
    problems = []
    for number, text, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        path_part, _, fragment = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(REPO)}:{number}: [{text}]({target})"
        if not path.exists():
            problems.append(f"{where}: {path_part} does not exist")
            continue
        if fragment and path.suffix == ".md" and fragment not in anchors(path):
            problems.append(f"{where}: no heading with anchor #{fragment} in {path.name}")
        named = IDENTIFIER.match(text.strip())
        if named and path.suffix == ".py":
            name = named.group(1).split(".")[-1]
            if not defines(path, name):
                problems.append(f"{where}: {path.name} defines no {name!r}")
    assert not problems, "broken links:\n" + "\n".join(problems)


def runnable_pages():
    return [p for p in DOCS if any(b["info"] == "python" for b in parse(p.read_text())[1])]


@pytest.mark.parametrize("page", runnable_pages(), ids=lambda p: p.name)
def test_python_blocks_run_and_print_what_the_page_shows(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a block that writes a file writes it here
    prose, blocks = parse(page.read_text())
    namespace = {"__name__": "__docs__"}
    ran = 0
    for index, block in enumerate(blocks):
        if block["info"] != "python":
            continue
        if block["code"].startswith("# requires: cuda") and not mg.cuda.is_available():
            continue
        where = f"{page.name}, block at line {block['start'] + 1}"
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            try:
                exec(compile(block["code"], where, "exec"), namespace)
            except Exception as error:
                pytest.fail(f"{where} raised {type(error).__name__}: {error}")
        ran += 1
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        between = prose[block["end"] + 1 : following["start"]] if following else []
        if following and following["info"] == "text" and not any(line.strip() for line in between):
            difference = output_difference(output.getvalue(), following["code"])
            assert difference is None, (
                f"{where}: the output differs from the text block below it: {difference}\n"
                f"--- printed:\n{output.getvalue()}--- the page shows:\n{following['code']}"
            )
    assert ran, f"{page.name}: no python block ran"


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
# float32 keeps about 7 digits, and its last ones depend on the BLAS kernel: 0.09414399 on one CPU
# is 0.09414405 on another, and a residual printed as 6.0e-08 may be 1.2e-07.
RELATIVE, ABSOLUTE = 1e-5, 1e-6


def numbers_match(printed: str, shown: str) -> bool:
    """Integers (counts, shapes, epochs) exactly; decimals within float32 rounding, or within one
    unit of their last printed digit (a value on a rounding boundary prints either way)."""
    if not re.search(r"[.eE]", shown + printed):
        return printed.lstrip("+") == shown.lstrip("+")
    mantissa, _, exponent = shown.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    last_digit = 10.0 ** (int(exponent or 0) - decimals)
    tolerance = max(ABSOLUTE, RELATIVE * abs(float(shown)), last_digit)
    return abs(float(printed) - float(shown)) <= tolerance


def output_difference(printed: str, shown: str):
    """None when the printed output matches what the page shows; else a description of where not.

    Lines are compared with runs of spaces counted as one (a tensor pads its columns to the widest
    number), words and punctuation exactly, and numbers with numbers_match.
    """
    printed_lines = printed.strip("\n").split("\n")
    shown_lines = shown.strip("\n").split("\n")
    if len(printed_lines) != len(shown_lines):
        return f"{len(printed_lines)} lines printed, {len(shown_lines)} shown"
    for number, (got, want) in enumerate(zip(printed_lines, shown_lines, strict=True), start=1):
        got, want = (" ".join(line.split()) for line in (got, want))
        got_numbers, want_numbers = NUMBER.findall(got), NUMBER.findall(want)
        same_words = NUMBER.split(got) == NUMBER.split(want)
        if not same_words or not all(map(numbers_match, got_numbers, want_numbers)):
            return f"line {number}: {got!r} against {want!r}"
    return None


def test_output_comparison_tolerates_rounding_only():
    """The comparison is loose only where BLAS rounding moves: digits, not words or layout."""
    shown = "tensor([[7.052021 , 0.09414405]])"
    assert output_difference("tensor([[7.052021  , 0.09414399]])", shown) is None
    assert output_difference("diff 6.0e-08\n", "diff 1.2e-07") is None
    assert output_difference("loss 1.4334", "loss 1.4333") is None  # one unit of the last digit
    assert output_difference("loss 1.4336", "loss 1.4333") is not None  # a real change shows
    assert output_difference("tensor([7.0521])", "tensor([7.0530])") is not None
    assert output_difference("(8, 4)", "(8, 5)") is not None
    assert output_difference("epoch 9", "epoch 10") is not None
    assert output_difference("grad_fn=<MulBackward>", "grad_fn=<AddBackward>") is not None
    assert output_difference("a\nb", "a") is not None


def test_link_checker_catches_a_broken_link(tmp_path):
    """The checks above are not vacuous: a missing file, anchor or function is reported."""
    (tmp_path / "code.py").write_text("def present():\n    pass\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](code.py) [ok](#title) [`present`](code.py)\n"
        "[gone](missing.md) [bad anchor](#nothing) [`absent()`](code.py)\n"
        "```text\n[inside a block](not-checked.md)\n```\n"
    )
    found = [target for _, _, target in links(page)]
    assert found == ["code.py", "#title", "code.py", "missing.md", "#nothing", "code.py"]
    assert anchors(page) == {"title"}
    assert defines(tmp_path / "code.py", "present") and not defines(tmp_path / "code.py", "absent")


def test_slug_matches_github_anchors():
    assert slug("3. backward() orders the tape") == "3-backward-orders-the-tape"
    assert slug("7. The same network with mg.nn") == "7-the-same-network-with-mgnn"
    assert slug("1. Tensor and `grad_fn`") == "1-tensor-and-grad_fn"
