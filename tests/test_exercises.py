"""docs/exercises.md's claims: each break of the engine turns its pytest command red."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGE = (REPO / "docs" / "exercises.md").read_text()
# The break (in tests/exercise_breaks.py) of each exercise, in the page's order.
BREAKS = ["assign", "no-unbroadcast", "stub-backward", "no-version-check"]


def commands() -> list:
    return re.findall(r"```bash\npytest (.+)\n```", PAGE)


def test_the_page_has_one_command_per_break():
    assert len(commands()) == len(BREAKS)


@pytest.mark.parametrize("number", range(len(BREAKS)), ids=BREAKS)
def test_each_break_turns_its_command_red(number):
    arguments = commands()[number].replace('"', "").split()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.exercise_breaks", "-p", "no:cacheprovider",
         "-x", *arguments],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MINIGRAD_BREAK": BREAKS[number]},
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"\b1 failed\b", done.stdout), done.stdout[-2000:]
