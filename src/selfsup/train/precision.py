"""Numeric precision of the training step: ``train.precision`` resolved for this machine.

bfloat16 autocast only pays where the hardware computes in bf16 natively: measured on a 2-core Xeon
without AVX512-BF16 it made a ConvNet step about 1.5x slower than fp32 (the bf16 work is emulated),
and about 2x faster on one with it. ``auto`` therefore picks bf16 only on a CPU that reports
AVX512-BF16 or AMX (``/proc/cpuinfo`` flags, or torch's own CPU capability), or on a GPU of compute
capability 8.0 or more (Ampere and later), and fp32 otherwise. ``fp16`` uses float16 autocast with a
gradient scaler and is CUDA-only.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError

_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    if any(f in flags for f in _BF16_FLAGS):
        return True
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        cap = ""
    return "AMX" in cap.upper() or "BF16" in cap.upper()


def resolve(precision: str, device: torch.device) -> tuple[str, str]:
    """``(precision, why)`` with ``auto`` replaced by fp32 or bf16 for ``device``."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            "train.precision=fp16 needs a CUDA device (float16 with a gradient scaler); "
            "on CPU use bf16, fp32 or auto"
        )
    if precision != "auto":
        return precision, "set in the config"
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major >= 8:
            return "bf16", f"GPU compute capability {major}.{minor} runs bf16 natively"
        return "fp32", f"GPU compute capability {major}.{minor} < 8.0 has no native bf16"
    if device.type == "cpu":
        if cpu_has_native_bf16():
            return "bf16", "the CPU has AVX512-BF16/AMX"
        return "fp32", "the CPU has no AVX512-BF16/AMX (bf16 would be emulated, slower)"
    return "fp32", f"no native bf16 known for device type '{device.type}'"


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
