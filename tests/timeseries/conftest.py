import numpy as np
import pytest


def write_ts(path, cases, labels=None, classes=None, header_extra=""):
    """A .ts file: ``cases`` a list of cases, each a list of dimensions (lists of numbers or
    '?')."""
    lines = [
        "# a test file",
        "@problemName Test",
        "@timeStamps false",
        f"@univariate {str(len(cases[0]) == 1).lower()}",
    ]
    if labels is not None:
        lines.append("@classLabel true " + " ".join(classes or sorted(set(labels))))
    lines += [header_extra, "@data"] if header_extra else ["@data"]
    for i, c in enumerate(cases):
        dims = ":".join(",".join(str(v) for v in d) for d in c)
        lines.append(dims + (f":{labels[i]}" if labels is not None else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ts_folder(tmp_path):
    """A folder with Toy_TRAIN.ts / Toy_TEST.ts: 2 dimensions, unequal lengths, a missing value,
    classes 'up' and 'down' (24 training cases, 12 test cases)."""
    rng = np.random.default_rng(0)

    def cases(n):
        out, labels = [], []
        for i in range(n):
            t = 16 + (i % 3) * 4
            up = i % 2 == 0
            base = np.linspace(0, 1, t) * (1 if up else -1)
            d1 = list(np.round(base + 0.05 * rng.standard_normal(t), 4))
            d2 = list(np.round(np.sin(np.arange(t) * (0.5 if up else 1.2)), 4))
            if i == 3:
                d1[5] = "?"
            out.append([d1, d2])
            labels.append("up" if up else "down")
        return out, labels

    root = tmp_path / "Toy"
    root.mkdir()
    c, y = cases(24)
    write_ts(root / "Toy_TRAIN.ts", c, y, ["up", "down"])
    c, y = cases(12)
    write_ts(root / "Toy_TEST.ts", c, y, ["up", "down"])
    return root
