"""Golden IR tests: each tests/compiler/golden/*.ir file holds an input graph and, after a
``# ----- expected`` line, the output of one pass. ``KILN_UPDATE_GOLDEN=1`` rewrites the
expected part (then read the diff)."""

from __future__ import annotations

import os
import pathlib

import pytest

from compiler.parser import parse
from compiler.passes.pipeline import PIPELINE
from compiler.printer import print_graph
from compiler.verify import verify

GOLDEN = pathlib.Path(__file__).parent / "golden"
SEPARATOR = "# ----- expected\n"
PASSES = dict(PIPELINE)


def cases():
    return sorted(GOLDEN.glob("*.ir"))


@pytest.mark.parametrize("path", cases(), ids=lambda p: p.stem)
def test_golden(path):
    text = path.read_text()
    source, _, expected = text.partition(SEPARATOR)
    pass_name = source.splitlines()[0].removeprefix("# pass:").strip()
    got = print_graph(verify(PASSES[pass_name](verify(parse(source)))))
    if os.environ.get("KILN_UPDATE_GOLDEN"):
        path.write_text(source.rstrip("\n") + "\n" + SEPARATOR + got)
        expected = got
    assert got == expected, f"{path.name}: output differs (KILN_UPDATE_GOLDEN=1 rewrites it)"


def test_every_pass_has_a_golden_file():
    covered = {p.read_text().splitlines()[0].removeprefix("# pass:").strip() for p in cases()}
    assert covered == set(PASSES)
