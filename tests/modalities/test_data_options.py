"""Source options that modalities register (``data.register_option``): config, CLI flag, checks."""

from __future__ import annotations

import numpy as np
import pytest

from selfsup import data as sources
from selfsup import resolve
from selfsup.errors import DataError


@pytest.fixture
def column_source():
    """A source of ``.cols`` files whose option ``pick_column`` chooses the feature column."""
    seen: dict = {}

    def load(spec, **kw):
        seen.update(kw["options"])
        col = int(kw["options"].get("pick_column", 0))
        x = np.arange(40, dtype=np.float32).reshape(20, 2)[:, col : col + 1]
        return sources.Splits(train=sources.TableData(x=x, y=np.arange(20) % 2, name=spec))

    opt = sources.register_option(
        sources.DataOption("pick_column", "the column to read", metavar="N")
    )
    src = sources.register_source(
        sources.Source("cols", lambda spec, path: spec.endswith(".cols"), load)
    )
    yield seen
    sources.SOURCES.remove(src)
    del sources.DATA_OPTIONS[opt.key]


def test_options_reach_the_source_that_claims_it(column_source):
    s = sources.load_source("a.cols", options={"pick_column": 1})
    assert column_source == {"pick_column": 1}
    assert float(s.train.x[0, 0]) == 1.0


def test_unknown_option_is_one_line(column_source):
    with pytest.raises(DataError, match="unknown data option 'text_colum'.*pick_column"):
        sources.load_source("a.cols", options={"text_colum": "x"})


def test_option_for_a_builtin_kind_is_refused(column_source):
    with pytest.raises(DataError, match="'pick_column' applies to a source a modality added"):
        sources.load_source("digits", options={"pick_column": 1})


def test_option_lands_in_the_config_and_the_cli(column_source):
    cfg = resolve.resolve_config(data="a.cols", data_options={"pick_column": 1})
    assert cfg.data.options == {"pick_column": 1}
    cfg = resolve.resolve_config(overrides=["data.options.pick_column=0"])
    assert cfg.data.options == {"pick_column": 0}
    from selfsup.cli import _data_options, build_parser

    args = build_parser().parse_args(["train", "--pick-column", "1"])
    assert _data_options(args) == {"pick_column": "1"}
