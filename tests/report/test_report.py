"""The report of a tiny digits run: every section present, images embedded, and it opens in headless
Chromium without console errors. Also `selfsup report` with several runs and `selfsup compare`."""

import base64
import json
import shutil
import subprocess

import pytest

SECTIONS = ("results", "curves", "embedding", "similarity", "spectrum", "diagnostics")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def _digits_config(out, method="simclr"):
    return {
        "method": method,
        "data": {"source": "digits", "limit": 128},
        "model": {"backbone": "convnet_small", "proj_hidden": 32, "proj_dim": 16},
        "train": {"epochs": 2, "batch_size": 32, "progress": "none"},
        "eval": {
            "baselines": False,
            "knn_k": 20,
            "knn_every": 1,
            "linear_max_iter": 20,
            "diagnostics_batch": 64,
        },
        "out": str(out),
    }


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    import selfsup

    return selfsup.train(_digits_config(tmp_path_factory.mktemp("rep") / "run"))


def test_train_writes_report_with_every_section(digits_run):
    d = digits_run.dir
    page = (d / "report.html").read_text()
    for sid in SECTIONS:
        assert f'id="{sid}"' in page, sid
    assert 'id="comparison"' not in page  # one run: no comparison
    imgs = page.split('src="data:image/png;base64,')[1:]
    assert len(imgs) == 5  # curves, embedding map, similarities, spectrum, diagnostics
    for chunk in imgs:
        assert base64.b64decode(chunk.split('"', 1)[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in page and "https://" not in page  # self-contained
    summary = json.loads((d / "summary.json").read_text())
    diag = summary["diagnostics"]
    assert {"alignment", "uniformity", "rankme", "pos_hist", "neg_hist", "spectrum"} <= set(diag)
    epochs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in epochs if "epoch_loss" in r]
    assert len(epochs) == 2 and all("diag_rankme" in r and "knn_top1" in r for r in epochs)


def test_report_several_runs(digits_run, tmp_path):
    from selfsup.cli import main
    from selfsup.report import write_report

    other = tmp_path / "copy" / digits_run.dir.name
    shutil.copytree(digits_run.dir, other, ignore=shutil.ignore_patterns(".lock", "checkpoints"))
    out = write_report([digits_run.dir, other], tmp_path / "both.html")
    page = out.read_text()
    assert 'id="comparison"' in page and "Ranked by <code>knn_top1</code>" in page
    assert main(["report", str(tmp_path / "missing")]) == 2


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _open(chromium, page, tmp_path):
    cmd = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_opens_in_headless_chromium(digits_run, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    # the check itself: a page that logs a console error is caught
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom")</script></body></html>')
    res = _open(chromium, bad, tmp_path)
    assert "CONSOLE" in res.stderr and "boom" in res.stderr
    res = _open(chromium, digits_run.dir / "report.html", tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    dom = res.stdout
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom
    assert dom.count("<img") == 5


def test_compare_ranks_methods(tmp_path, tiny_npz, capsys):
    from selfsup.cli import main
    from selfsup.methods import REGISTRY

    assert main(["compare", "--methods", "simclr,nonexistent", "--out", str(tmp_path / "x")]) == 2
    assert "unknown method(s) nonexistent" in capsys.readouterr().err
    others = sorted(m for m in REGISTRY if m != "simclr" and not REGISTRY[m].needs.labels)
    if not others:
        pytest.skip("only simclr is registered; compare needs two methods")
    out = tmp_path / "cmp"
    sets = [
        "--data",
        str(tiny_npz),
        "--set",
        "model.backbone=convnet_small",
        "--set",
        "model.proj_hidden=32",
        "--set",
        "model.proj_dim=16",
        "--set",
        "eval.baselines=false",
        "--set",
        "eval.knn_k=10",
        "--set",
        "eval.linear_max_iter=10",
        "--set",
        "train.progress=none",
    ]
    rc = main(
        [
            "compare",
            "--methods",
            f"simclr,{others[0]}",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--out",
            str(out),
            *sets,
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ranked by knn_top1" in printed
    page = (out / "report.html").read_text()
    assert 'id="comparison"' in page and (out / "simclr" / "summary.json").is_file()
