"""MkDocs hook: the parts of the site that are generated from the code, so they never go stale.

- ``reference/cli.md``: the help of every command, from :func:`selfsup.cli.build_parser`.
- ``reference/config.md``: every config field with its type, default and description, from
  :class:`selfsup.config.Config`.
- ``methods/<name>.md`` for every registered method: a hand-written page when
  ``docs/methods/<name>.md`` exists (its ``<!-- selfsup:reference NAME -->`` marker is replaced by
  the generated part), else a generated page with a "to fill" section. The generated part: how to
  run it, the parameters (from the method's ``Params`` model), the recipe files in ``configs/`` and
  the figures measured for it in ``BENCHMARKS.md``.
- ``methods/index.md``, ``evaluation/index.md``: tables of what is registered.
- ``evaluation/<protocol>.md`` for a protocol without a hand-written page.
- ``benchmarks.md``, ``reliability.md``, ``changelog.md``: the repository's files, as they are.
- The nav sections ``Tutorials``, ``Methods`` and ``Evaluation`` list their folders.
- ``$$ ... $$`` blocks and ``\\( ... \\)`` become MathML (rendered by the browser, no script).

A new method needs nothing here: it gets its page from its registration. A new modality's
tutorial is one more ``docs/tutorials/<modality>.md`` whose ``exec="on"`` code blocks run at build
time (markdown-exec), so a tutorial that no longer works fails the build.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import os
import re
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARKER = re.compile(r"^<!--\s*selfsup:reference\s+([\w-]+)\s*-->\s*$", re.M)  # a line of its own
SECTIONS = {"Tutorials": "tutorials", "Methods": "methods", "Evaluation": "evaluation"}


# -- methods ---------------------------------------------------------------------------------------
def registry() -> dict[str, Any]:
    from selfsup.methods import REGISTRY

    return dict(sorted(REGISTRY.items()))


#: what common parameter names mean, where a model's field has no docstring of its own
GLOSSARY = {
    "temperature": "Softmax temperature of the similarity logits (smaller: "
    "sharper, harder negatives).",
    "tiled": "Exact tiled loss (True), dense (False), or chosen by batch size (None).",
    "momentum": "EMA momentum of the target (key) network.",
    "queue_size": "Number of negatives kept in the queue.",
}


def attribute_docs(model: type) -> dict[str, str]:
    """``field: type = default`` followed by a string literal: that string, for every class in the
    MRO."""
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for a, b in zip(body, body[1:]):
            if (
                isinstance(a, ast.AnnAssign)
                and isinstance(a.target, ast.Name)
                and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant)
                and isinstance(b.value.value, str)
            ):
                docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def _constraint(field: Any) -> str:
    ops = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    out = []
    for m in field.metadata:
        for attr, op in ops.items():
            v = getattr(m, attr, None)
            if v is not None:
                out.append(f"{op} {v}")
    return ", ".join(out)


def _type_name(annotation: Any) -> str:
    s = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    s = s or str(annotation).replace("typing.", "")
    return s.replace("NoneType", "None")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"
    return f"`{field.default!r}`"


def fields_table(model: type, prefix: str = "") -> str:
    """A Markdown table of a pydantic model's fields: name, type, default, allowed values,
    description."""
    fields = model.model_fields  # type: ignore[attr-defined]
    if not fields:
        return "No parameters.\n"
    docs = {**GLOSSARY, **attribute_docs(model)}
    rows = ["| field | type | default | allowed | what it does |", "|---|---|---|---|---|"]
    for name, f in fields.items():
        desc = (f.description or docs.get(name, "")).replace("|", "\\|")
        rows.append(
            f"| `{prefix}{name}` | `{_type_name(f.annotation)}` | {_default(f)} | "
            f"{_constraint(f)} | {desc} |"
        )
    return "\n".join(rows) + "\n"


def recipes(name: str) -> list[Path]:
    return sorted((ROOT / "configs").glob(f"{name}-*.yaml"))


def benchmark_figures(name: str, text: str | None = None) -> str:
    """The rows of BENCHMARKS.md tables whose first cell is ``name`` (or starts with it), with the
    heading, the command and the header of their section."""
    if text is None:
        p = ROOT / "BENCHMARKS.md"
        text = p.read_text(encoding="utf-8") if p.is_file() else ""
    out: list[str] = []
    heading, command, header = "", "", ""
    lines = text.splitlines()
    pending: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("#"):
            heading, command, header = line.lstrip("#").strip(), "", ""
            continue
        if line.startswith("    ") and line.strip() and not line.lstrip().startswith("|"):
            prev_line = lines[i - 1] if i else ""
            command = (
                (command + "\n" + line.strip())
                if prev_line.startswith("    ") and prev_line.strip()
                else line.strip()
            )  # the latest indented block before a table is its command
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            prev = lines[i - 1] if i else ""
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if not prev.startswith("|") and re.match(r"^\|[\s:|-]+\|$", nxt.strip()):
                header = line
                continue
            if re.match(r"^\|[\s:|-]+\|$", line.strip()):
                continue
            hcells = [c.strip().lower() for c in header.strip().strip("|").split("|")]
            col = hcells.index("method") if "method" in hcells else 0
            first = cells[col].strip("`* ") if col < len(cells) else ""
            if header and (first == name or re.match(rf"^{re.escape(name)}[\s(]", first)):
                pending.append(line)
        elif pending:
            out.append(_figure_block(heading, command, header, pending))
            pending = []
    if pending:
        out.append(_figure_block(heading, command, header, pending))
    return "\n".join(out)


def _figure_block(heading: str, command: str, header: str, rows: list[str]) -> str:
    ncol = header.strip().strip("|").count("|") + 1
    cmd = f"\n```\n{command}\n```\n" if command else "\n"
    return (
        f"**{heading}** ([BENCHMARKS](../benchmarks.md)){cmd}\n{header}\n"
        f"|{'---|' * ncol}\n" + "\n".join(rows) + "\n"
    )


def method_reference(name: str) -> str:
    """The generated part of a method's page."""
    cls = registry()[name]
    mod = cls.__module__
    src = mod.replace(".", "/") + ".py"
    rec = recipes(name)
    if rec:
        first = rec[0].relative_to(ROOT)
        run_it = (
            f"```bash\nselfsup train --config {first}\n"
            f"selfsup train --config {first} --set params.FIELD=VALUE"
            "   # change a parameter\n```\n\n"
            f'```python\nrun = selfsup.train("{first}")\n```\n'
        )
    else:
        run_it = (
            f"```bash\nselfsup train --method {name}\n```\n\n"
            f'```python\nrun = selfsup.train(method="{name}", data="digits")\n```\n'
        )
    parts = [
        f"### Run it\n\n{run_it}",
        f"Implementation: `{cls.__name__}` in `src/{src}` (the building blocks are in the "
        "[methods API](../reference/methods.md))."
        + (" **Uses the labels** (supervised or semi-supervised)." if cls.needs.labels else "")
        + "\n",
    ]
    params = cls.Params
    example = ""
    fields = params.model_fields
    pick = (
        "temperature"
        if "temperature" in fields
        else next(
            (
                k
                for k, f in fields.items()
                if isinstance(f.default, int | float) and not isinstance(f.default, bool)
            ),
            None,
        )
    )
    if pick is not None:
        example = (
            f" (for example `selfsup train --method {name} --set params.{pick}="
            f"{fields[pick].default}`)"
        )
    parts.append(
        "### Parameters\n\nThe `params` section of the config (formerly `loss`, still accepted); "
        f"set any of them with `--set params.FIELD=VALUE`{example}.\n\n"
        + fields_table(params, "params.")
    )
    if cls.optim_defaults:
        items = ", ".join(f"`optim.{k}={v}`" for k, v in cls.optim_defaults.items())
        parts.append(
            f"Optimiser defaults this method was tuned with (your settings win): {items}.\n"
        )
    if rec:
        blocks = []
        for r in rec:
            blocks.append(
                f"`{r.relative_to(ROOT)}` (`selfsup train --config {r.relative_to(ROOT)}`):\n\n"
                f"```yaml\n{r.read_text(encoding='utf-8').rstrip()}\n```\n"
            )
        parts.append("### Recipes\n\n" + "\n".join(blocks))
    else:
        parts.append(
            "### Recipes\n\nNo recipe in `configs/` yet: `--method "
            + name
            + "` uses the defaults above.\n"
        )
    figs = benchmark_figures(name)
    parts.append(
        "### Figures measured\n\n" + (figs or "Not measured yet (nothing in BENCHMARKS.md).\n")
    )
    return "\n".join(parts)


def source_notes(cls: type) -> str:
    """The method's module docstring (and class docstring), as its author wrote them, in
    Markdown."""
    import sys

    parts = [inspect.getdoc(sys.modules[cls.__module__]) or "", inspect.getdoc(cls) or ""]
    if parts[1] == inspect.getdoc(cls.__mro__[1]):
        parts[1] = ""  # inherited, not this method's own
    text = "\n\n".join(p for p in parts if p)
    text = re.sub(r":(?:func|class|mod|meth|attr):`~?([^`]+)`", r"`\1`", text)  # Sphinx roles
    text = re.sub(r"(?m)^(.*\S)::$", r"\1:", text)  # RST literal-block markers
    return text


def generated_method_page(name: str) -> str:
    cls = registry()[name]
    notes = source_notes(cls)
    notes = (
        "## From the source\n\nThe method's docstring, as written in "
        f"`{cls.__module__}`:\n\n{notes}\n\n"
        if notes
        else ""
    )
    return (
        f"# {name}\n\n**Paper:** {cls.paper}\n\n"
        f'!!! note "To fill: formula and notes"\n'
        "    This page is generated from the method's registration. Write "
        f"`docs/methods/{name}.md` with the paper's link, the objective as a formula and the "
        f"known deviations from the paper, and keep the line `<!-- selfsup:reference {name} -->` "
        "where the generated part goes (see `docs/methods/dcl.md`).\n\n"
        f"{notes}## In selfsup\n\n{method_reference(name)}"
    )


def methods_index() -> str:
    rows = ["| method | paper | labels | page |", "|---|---|---|---|"]
    for name, cls in registry().items():
        written = (DOCS / "methods" / f"{name}.md").is_file()
        rows.append(
            f"| [`{name}`]({name}.md) | {cls.paper} | {'yes' if cls.needs.labels else ''} | "
            f"{'written' if written else 'generated (to fill)'} |"
        )
    return (
        "# Methods\n\nEvery registered method (`selfsup methods` lists them too, with a link to "
        "each page). A page gives the paper, the objective, the parameters and their defaults, the "
        "recipe and the figures this project measured.\n\n" + "\n".join(rows) + "\n"
    )


# -- evaluation ------------------------------------------------------------------------------------
def protocols() -> dict[str, Any]:
    from selfsup.eval.protocols import PROTOCOLS

    return dict(PROTOCOLS)


def evaluation_index() -> str:
    rows = ["| protocol | what it reports | fine-tunes the encoder |", "|---|---|---|"]
    for name, p in protocols().items():
        rows.append(f"| [`{name}`]({name}.md) | {p.help} | {'yes' if p.needs_encoder else ''} |")
    rows += ["| [diagnostics](diagnostics.md) | alignment, uniformity, RankMe, ... every epoch | |"]
    return (
        "# Evaluation\n\nEvery run evaluates its encoder with `eval.protocols` (default `knn`, "
        "`linear`) beside two baselines (the same encoder at random initialisation and the raw "
        "input); `selfsup eval RUN_DIR --protocol a,b` runs any of them later and writes "
        "`RUN_DIR/eval.json`. Each protocol works on any encoder.\n\n" + "\n".join(rows) + "\n"
    )


def generated_protocol_page(name: str) -> str:
    p = protocols()[name]
    return (
        f'# `{name}`\n\n{p.help}\n\n!!! note "To fill"\n    Generated from the protocol\'s '
        f"registration; write `docs/evaluation/{name}.md` to describe it.\n\n"
        f"```bash\nselfsup eval RUN_DIR --protocol {name}\n```\n"
    )


# -- command line and configuration ----------------------------------------------------------------
def cli_reference() -> str:
    """The help of ``selfsup`` and of every subcommand, exactly as ``--help`` prints it."""
    from selfsup.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parser = build_parser()
        out = [
            "# Command line\n\nGenerated from the argument parser at build time: this is what "
            "`selfsup --help` and `selfsup COMMAND --help` print. Errors are one line, "
            "`error: ...`, with exit status 2; `--debug` shows the traceback.\n",
            f"## selfsup\n\n```text\n{parser.format_help().rstrip()}\n```\n",
        ]
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            for name, sub in action.choices.items():
                out.append(f"## selfsup {name}\n\n```text\n{sub.format_help().rstrip()}\n```\n")
        return "\n".join(out)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def config_reference() -> str:
    from selfsup import config as conf

    out = [
        "# Configuration\n\nGenerated from `selfsup.config.Config`. A run is built from these "
        "defaults, then a YAML recipe (`--config`), then the command-line options, then "
        "`--set section.field=value`. The `params` section (formerly `loss`, still accepted) "
        "belongs to the method: its fields are on "
        "each [method's page](../methods/index.md).\n"
    ]
    for name, f in conf.Config.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            out.append(f"## `{name}`\n\n" + fields_table(ann, f"{name}."))
            if name == "views":  # each modality's own section (config.register_views)
                for section, model in conf.VIEWS_SECTIONS.items():
                    former = [k for k, v in conf.FORMER_VIEWS_FIELDS.items() if section in v]
                    note = (
                        f" Formerly given directly under `views` (still read): "
                        f"{', '.join(f'`views.{k}`' for k in former)}."
                        if former
                        else ""
                    )
                    about = inspect.cleandoc(model.__doc__ or "")
                    out.append(
                        f"### `views.{section}`\n\n{about}{note}\n\n"
                        + fields_table(model, f"views.{section}.")
                    )
        elif name == "params":
            continue
        else:
            out.append(f"## `{name}`\n\n" + f"Type `{_type_name(ann)}`, default {_default(f)}.\n")
    return "\n".join(out)


def repo_file(name: str, title: str | None = None) -> str:
    text = (ROOT / name).read_text(encoding="utf-8")
    text = text.replace("](docs/", "](")  # links into docs/ from the repository root
    return text if title is None else f"# {title}\n\n{text}"


# -- math ------------------------------------------------------------------------------------------
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"\\\((.+?)\\\)")


def math_to_mathml(markdown: str) -> str:
    """``$$ ... $$`` (display) and ``\\( ... \\)`` (inline) LaTeX to MathML, outside code blocks."""
    from latex2mathml.converter import convert

    def display(m: re.Match[str]) -> str:
        return f'\n<div class="math">{convert(m.group(1).strip(), display="block")}</div>\n'

    def inline(m: re.Match[str]) -> str:
        return convert(m.group(1).strip())

    pieces, last = [], 0
    for m in _FENCE.finditer(markdown):
        pieces.append(_INLINE.sub(inline, _DISPLAY.sub(display, markdown[last : m.start()])))
        pieces.append(m.group(0))
        last = m.end()
    pieces.append(_INLINE.sub(inline, _DISPLAY.sub(display, markdown[last:])))
    return "".join(pieces)


# -- nav -------------------------------------------------------------------------------------------
def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip().strip("`")
    return path.stem


def section_nav(section: str) -> list[Any]:
    folder = SECTIONS[section]
    if folder == "methods":
        return [{"Overview": "methods/index.md"}] + [{n: f"methods/{n}.md"} for n in registry()]
    if folder == "evaluation":
        return (
            [{"Overview": "evaluation/index.md"}]
            + [{n: f"evaluation/{n}.md"} for n in protocols()]
            + [{"diagnostics": "evaluation/diagnostics.md"}]
        )
    pages = sorted((DOCS / folder).glob("*.md"))
    return [{_title(p): f"{folder}/{p.name}"} for p in pages]


def generated_pages() -> dict[str, str]:
    """Path (relative to docs/) -> content of every generated page."""
    pages = {
        "reference/cli.md": cli_reference(),
        "reference/config.md": config_reference(),
        "methods/index.md": methods_index(),
        "evaluation/index.md": evaluation_index(),
        "benchmarks.md": repo_file("BENCHMARKS.md"),
        "reliability.md": repo_file("RELIABILITY.md"),
        "changelog.md": repo_file("CHANGELOG.md"),
    }
    for name in registry():
        if not (DOCS / "methods" / f"{name}.md").is_file():
            pages[f"methods/{name}.md"] = generated_method_page(name)
    for name in protocols():
        if not (DOCS / "evaluation" / f"{name}.md").is_file():
            pages[f"evaluation/{name}.md"] = generated_protocol_page(name)
    return pages


# -- mkdocs events ---------------------------------------------------------------------------------
def on_config(config: Any, **kwargs: Any) -> Any:
    def walk(items: list[Any]) -> list[Any]:
        out = []
        for item in items:
            if isinstance(item, dict):
                ((k, v),) = item.items()
                if k in SECTIONS and isinstance(v, str) and v.rstrip("/") == SECTIONS[k]:
                    item = {k: section_nav(k)}
                elif isinstance(v, list):
                    item = {k: walk(v)}
            out.append(item)
        return out

    config["nav"] = walk(config["nav"] or [])
    return config


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    from mkdocs.structure.files import File

    for path, content in generated_pages().items():
        old = files.get_file_from_path(path)
        if old is not None:
            files.remove(old)
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    markdown = MARKER.sub(lambda m: method_reference(m.group(1)), markdown)
    return math_to_mathml(markdown)
