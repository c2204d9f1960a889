"""The README's example prints exactly what the README says it prints."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _block(text, marker):
    m = re.search(rf"<!-- {marker} -->\n(?:.*\n)*?```\w*\n(.*?)```", text, re.S)
    assert m, f"README has no {marker} block"
    return m.group(1)


LINES = {"readme-save": 25}  # the saving example shows three ways; the others are short


@pytest.mark.parametrize("name", ["readme", "readme-grad", "readme-keras", "readme-cf",
                                  "readme-save"])
def test_readme_example_output_is_real(tmp_path, name):
    readme = (ROOT / "README.md").read_text()
    code, expected = _block(readme, f"{name}-example"), _block(readme, f"{name}-output")
    (tmp_path / "example.py").write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("KILN_DUMP_IR", None)
    out = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
    assert len(code.strip().splitlines()) <= LINES.get(name, 16)


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_the_keras_catalogue_is_the_codes():
    import framework as tf
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- catalogue -->\n(.*?)<!-- /catalogue -->", readme, re.S)
    assert block and block.group(1) == tf.keras.utils.catalogue_markdown()
