"""The seam's proof: a modality defined outside the package (examples/custom_modality.py) trains
through the Python API and the CLI, and its run is evaluated again from its recorded plug-in."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_modality.py"
SRC = ROOT / "src" / "selfsup"
#: the rooms where a modality may be named; everything else reaches modalities through registries
ROOMS = ("modalities", "data", "views", "models")


def test_example_modality_trains_through_the_api_and_the_cli(tmp_path):
    subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path)], check=True, timeout=900)
    for name in ("api", "cli"):
        s = json.loads((tmp_path / name / "summary.json").read_text())
        assert {"knn_top1", "linear_top1"} <= set(s["eval"])
        # a learnable fixture: the pretrained encoder beats the random one and the raw input
        assert s["eval"]["knn_top1"] > s["baselines"]["random_init"]["knn_top1"]
        assert s["eval"]["knn_top1"] > s["baselines"]["raw_input"]["knn_top1"]
    cfg = (tmp_path / "cli" / "config.yaml").read_text()
    assert "custom_modality.py" in cfg  # the plug-in is recorded, so the run can be reopened
    out = subprocess.run(
        [sys.executable, "-m", "selfsup", "eval", str(tmp_path / "cli"), "--protocol", "knn"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    assert "knn_top1" in json.loads(out.stdout)["eval"]


def test_a_missing_plugin_is_one_line(tmp_path, capsys):
    from selfsup.cli import main

    code = main(["train", "--plugin", str(tmp_path / "nope.py"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "does not exist" in err[0]
    assert not (tmp_path / "r").exists()


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_no_module_outside_the_modality_rooms_names_a_modality():
    from selfsup.modalities import REGISTRY

    names = set(REGISTRY)
    found = [
        f"{p.relative_to(SRC)}:{line} '{value}'"
        for p in sorted(SRC.rglob("*.py"))
        if p.relative_to(SRC).parts[0] not in ROOMS
        for line, value in _string_constants(p)
        if value in names
    ]
    assert not found, "modality named outside modalities/, data/, views/, models/: " + ", ".join(
        found
    )


@pytest.mark.parametrize("room", ["methods", "losses"])
def test_methods_and_losses_never_ask_what_their_input_is(room):
    bad = []
    for p in sorted((SRC / room).rglob("*.py")):
        rel = str(p.relative_to(SRC))
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
                attr = node.left.attr
                rhs = node.comparators[0]
                # rank 4 is an image batch: embeddings are (B, D) and checking that is fine
                if attr == "ndim" and isinstance(rhs, ast.Constant) and rhs.value == 4:
                    bad.append(f"{rel}:{node.lineno} .ndim == {rhs.value}")
                if attr == "dtype" and "uint8" in ast.unparse(rhs):
                    bad.append(f"{rel}:{node.lineno} .dtype == uint8")
    assert not bad, "methods and losses must not branch on their input: " + ", ".join(bad)
