import json

from selfsup.cli import main


def test_train_then_eval_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--epochs",
            "1",
            "--batch-size",
            "128",
            "--out",
            str(out),
            "--set",
            "train.progress=none",
            "--set",
            "eval.report=false",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "pretrained (simclr)" in printed and "random init" in printed and "raw input" in printed
    s = json.loads((out / "summary.json").read_text())
    assert set(s["eval"]) >= {"knn_top1", "linear_top1"}
    assert set(s["baselines"]) == {"random_init", "raw_input"}
    assert s["epochs"] == 1 and s["method"] == "simclr" and s["data"] == "digits"
    assert (out / "encoder.safetensors").is_file() and (out / "config.yaml").is_file()
    assert list((out / "checkpoints").glob("step-*.safetensors"))

    assert main(["eval", str(out), "--protocol", "knn"]) == 0
    e = json.loads((out / "eval.json").read_text())
    assert e["eval"]["knn_top1"] == s["eval"]["knn_top1"]


def test_methods_lists_papers(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "simclr" in out and "Chen et al. 2020" in out


def test_help_mentions_every_documented_option(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for opt in (
        "--method",
        "--data",
        "--eval-data",
        "--backbone",
        "--epochs",
        "--batch-size",
        "--lr",
        "--seed",
        "--device",
        "--out",
        "--resume",
        "--overwrite",
        "--config",
        "--set",
    ):
        assert opt in out
