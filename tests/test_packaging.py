"""Packaging promises: one version everywhere, the report in every install, extras named by use."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

import selfsup
from selfsup.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"selfsup {selfsup.__version__}"


def test_version_has_one_source():
    p = _pyproject()["project"]
    assert "version" in p["dynamic"] and "version" not in p
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "selfsup.__version__"


def test_report_dependency_is_core_and_extras_are_named_by_use():
    p = _pyproject()["project"]
    assert any(d.startswith("matplotlib") for d in p["dependencies"])
    extras = p["optional-dependencies"]
    assert {"timeseries", "graph", "tabular", "tracking", "docs", "dev"} <= set(extras)
    assert set(extras["tracking"]) >= {e for e in extras["tensorboard"] + extras["mlflow"]}


def test_methods_link_their_pages(capsys, monkeypatch):
    monkeypatch.delenv("SELFSUP_DOCS_URL", raising=False)
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "https://selfsup.readthedocs.io/en/latest/methods/dcl/" in out
    monkeypatch.setenv("SELFSUP_DOCS_URL", "file:///tmp/site")
    main(["methods"])
    assert "file:///tmp/site/methods/simclr/" in capsys.readouterr().out


def test_report_without_matplotlib_is_one_line(tmp_path, capsys, monkeypatch):
    from selfsup.report import ReportError, require_plotting

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ReportError):
        require_plotting()
    (tmp_path / "run").mkdir()
    assert main(["report", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the report needs matplotlib") and "\n" not in err
