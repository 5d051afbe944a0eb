import json

import selfsup


def test_tiny_run_writes_a_run_directory(tiny_config, tmp_path):
    run = selfsup.train(tiny_config())
    for name in ("config.yaml", "metrics.jsonl", "encoder.safetensors", "summary.json"):
        assert (run.dir / name).is_file(), name
    s = json.loads((run.dir / "summary.json").read_text())
    assert s["method"] == "simclr" and 0 <= s["eval"]["knn_top1"] <= 1
