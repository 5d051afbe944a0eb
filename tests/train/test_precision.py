"""train.precision=auto picks bf16 only where the hardware runs it natively; fp16 is CUDA-only."""

from __future__ import annotations

import pytest
import torch

from selfsup.errors import ConfigError
from selfsup.train import precision as prec_rules

WITH = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n"
WITHOUT = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"


def test_cpu_flags(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert prec_rules.cpu_has_native_bf16(WITH)
    assert not prec_rules.cpu_has_native_bf16(WITHOUT)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    assert prec_rules.cpu_has_native_bf16(WITHOUT)  # torch's own capability is trusted too


def test_auto_on_cpu(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(prec_rules, "cpu_has_native_bf16", lambda: True)
    assert prec_rules.resolve("auto", cpu)[0] == "bf16"
    monkeypatch.setattr(prec_rules, "cpu_has_native_bf16", lambda: False)
    prec, why = prec_rules.resolve("auto", cpu)
    assert prec == "fp32" and "AVX512-BF16" in why
    assert prec_rules.resolve("bf16", cpu)[0] == "bf16"  # an explicit choice is kept


def test_auto_on_cuda_by_compute_capability(monkeypatch):
    dev = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (7, 5))
    assert prec_rules.resolve("auto", dev)[0] == "fp32"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (8, 0))
    assert prec_rules.resolve("auto", dev)[0] == "bf16"


def test_fp16_needs_cuda():
    with pytest.raises(ConfigError, match="CUDA"):
        prec_rules.resolve("fp16", torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize(
    "precision,extra", [("auto", []), ("fp16", []), ("bf16", []), ("fp16", ["train.chunk_size=4"])]
)
def test_cuda_steps(tmp_path, precision, extra):
    """A few SimCLR steps on the GPU under each precision (fp16 with its gradient scaler, also with
    gradient caching)."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from _ddp_worker import train_weights

    w = train_weights(
        "simclr",
        tmp_path,
        overrides=[
            f"train.precision={precision}",
            "train.device=cuda",
            "train.channels_last=true",
            *extra,
        ],
        device="cuda",
    )
    assert all(bool(torch.isfinite(v.float()).all()) for v in w.values())
