"""The documentation covers what the code registers: a page for every method and protocol, a CLI
reference with every option, a configuration reference with every field, executed tutorials.

The site itself is built (strict, tutorials executed) by `.ci/run`; these tests need no MkDocs.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _hook():
    spec = importlib.util.spec_from_file_location(
        "selfsup_docs", DOCS / "_hooks" / "selfsup_docs.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


H = _hook()


def _nav() -> list:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:", lambda loader, suffix, node: None)  # !!python/name etc.
    cfg = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)
    return H.on_config({"nav": cfg["nav"]})["nav"]


def _pages(nav) -> list[str]:
    out = []
    for item in nav:
        v = next(iter(item.values())) if isinstance(item, dict) else item
        out += _pages(v) if isinstance(v, list) else [v]
    return out


def test_every_registered_method_has_a_page_in_the_nav():
    from selfsup.methods import REGISTRY

    generated = H.generated_pages()
    pages = _pages(_nav())
    for name, cls in REGISTRY.items():
        path = f"methods/{name}.md"
        assert path in pages, name
        text = generated.get(path) or (DOCS / path).read_text()
        if path not in generated:  # hand-written: the generated part goes where the marker is
            assert f"<!-- selfsup:reference {name} -->" in text, (
                f"{path} lacks its reference marker"
            )
            text = H.MARKER.sub(lambda m: H.method_reference(m.group(1)), text)
        else:
            assert cls.paper in text
        for field in cls.Params.model_fields:
            assert f"`params.{field}`" in text, (name, field)
        assert "### Figures measured" in text and "### Recipes" in text


def test_hand_written_method_pages_name_registered_methods():
    from selfsup.methods import REGISTRY

    for p in (DOCS / "methods").glob("*.md"):
        assert p.stem in REGISTRY, f"{p} documents no registered method"
        m = H.MARKER.search(p.read_text())
        assert m and m.group(1) == p.stem, p


def test_method_reference_lists_defaults_recipes_and_figures():
    text = H.method_reference("simclr")
    assert "| `params.temperature` | `float` | `0.5` | > 0 |" in text
    assert "configs/simclr-digits.yaml" in text
    bench = (
        """## A table\n\n    python bench.py --x\n\n| method | kNN |\n|---|---:|\n"""
        """| simclr | 46.05 |\n| simclrx | 1 |\n| dcl | 46.16 |\n\n"""
        """| rank | method | knn |\n|---|---|---|\n| 1 | simclr | 0.9 |\n"""
    )
    figs = H.benchmark_figures("simclr", bench)
    assert (
        "python bench.py --x" in figs
        and "| simclr | 46.05 |" in figs
        and "| 1 | simclr | 0.9 |" in figs
    )
    assert "dcl" not in figs and "simclrx" not in figs


def test_every_protocol_has_a_page():
    from selfsup.eval.protocols import PROTOCOLS

    pages = _pages(_nav())
    for name in PROTOCOLS:
        assert f"evaluation/{name}.md" in pages
    assert (
        "evaluation/diagnostics.md" in pages and (DOCS / "evaluation" / "diagnostics.md").is_file()
    )


def test_cli_reference_is_the_parser_help():
    from selfsup.cli import build_parser

    text = H.cli_reference()
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                assert f"## selfsup {name}" in text
                for a in sub._actions:
                    for opt in a.option_strings:
                        assert opt in text, (name, opt)
    assert "--version" in text


def test_config_reference_lists_every_field():
    from selfsup.config import Config

    text = H.config_reference()
    for section, f in Config.model_fields.items():
        ann = f.annotation
        if hasattr(ann, "model_fields"):
            for field in ann.model_fields:
                assert f"`{section}.{field}`" in text


def test_every_nav_page_exists_or_is_generated():
    generated = set(H.generated_pages())
    for page in _pages(_nav()):
        assert page in generated or (DOCS / page).is_file(), page


def test_tutorials_execute_code_at_build_time():
    tutorials = sorted((DOCS / "tutorials").glob("*.md"))
    assert tutorials, "at least the images tutorial"
    for t in tutorials:
        assert re.search(r'^```python .*exec="on"', t.read_text(), re.M), f"{t} runs no code"


def test_math_becomes_mathml_outside_code():
    pytest.importorskip("latex2mathml")
    md = "a \\(x^2\\) b\n\n$$\n\\frac{1}{2}\n$$\n\n```\n$$ not math $$\n```\n"
    out = H.math_to_mathml(md)
    assert out.count("<math") == 2 and "<mfrac>" in out and "$$ not math $$" in out


def test_dcl_screenshot_is_in_docs():
    png = DOCS / "screenshots" / "dcl.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generated_page_renders_its_reference_once():
    from selfsup.methods import REGISTRY

    pytest.importorskip("latex2mathml")  # a docs extra
    name = sorted(REGISTRY)[0]
    page = H.generated_method_page(name)
    out = H.on_page_markdown(page, page=None, config=None, files=None)
    assert out.count("### Parameters") == 1 and f"<!-- selfsup:reference {name} -->" in out
    written = H.on_page_markdown(
        (DOCS / "methods" / "dcl.md").read_text(), page=None, config=None, files=None
    )
    assert written.count("### Parameters") == 1 and "<!-- selfsup:reference" not in written
