import json

import selfsup


def test_tiny_run_writes_a_run_directory(tiny_config, tmp_path):
    run = selfsup.train(tiny_config())
    for name in ("config.yaml", "metrics.jsonl", "encoder.safetensors", "summary.json"):
        assert (run.dir / name).is_file(), name
    s = json.loads((run.dir / "summary.json").read_text())
    assert s["method"] == "simclr"
    # three classes told apart by a bright stripe: two epochs must already beat chance (1/3) clearly
    assert s["eval"]["knn_top1"] >= 0.6, s["eval"]
