"""Two processes on one run directory: the second is refused with RunDirError, the first is
unharmed.

The reference run (conftest.py) is held inside its second checkpoint save while this process tries
to start a new run there, to --overwrite it, and to --resume it.
"""

from __future__ import annotations

import faultkit as fk


def test_second_process_is_refused_and_first_is_unharmed(reference):
    attempts = reference["attempts"]
    assert attempts["new"][0] == 2 and "already exists" in attempts["new"][1]
    for how in ("overwrite", "resume"):
        rc, err = attempts[how]
        assert rc == 2, (how, err)
        assert "in use by another selfsup process" in err, (how, err)
    for how, (_, err) in attempts.items():
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (how, err)
    # nothing the first run had written was touched while the others tried
    assert reference["during"] == reference["before"] and reference["before"]
    # and the first run finished with loadable checkpoints (its encoder is the one every
    # interrupted-and-resumed run in tests/faults must reproduce bit for bit)
    assert fk.assert_resumable(reference["run"]) == fk.STEPS
    assert (reference["run"] / "encoder.safetensors").is_file()
