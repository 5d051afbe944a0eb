"""iSogCLR: the state update against a hand computation of the rule; state through checkpoints."""

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.errors import ConfigError
from selfsup.losses import ISogCLR, ISogCLRBimodal

HP = dict(gamma=0.9, rho=0.3, eta=0.05, beta=0.9, tau_min=0.05, tau_max=0.7)


def hand_step(st, z1, z2, index, gamma, rho, eta, beta, tau_min, tau_max):
    """The rule of methods.md, one anchor at a time, in Python floats."""
    z1, z2 = F.normalize(z1, dim=1).tolist(), F.normalize(z2, dim=1).tolist()
    b = len(z1)
    dot = lambda x, y: sum(p * q for p, q in zip(x, y))  # noqa: E731
    loss = 0.0
    new = {}
    for i in range(b):
        n = index[i]
        tau, u_old, m_old = st["tau"][n], st["u"][n], st["m"][n]
        us, ds = [], []
        for anchor, other in ((z1, z2), (z2, z1)):
            negs = [dot(anchor[i], w[j]) for w in (z1, z2) for j in range(b) if j != i]
            g = sum(math.exp(s / tau) for s in negs) / len(negs)
            u = g if u_old == 0 else (1 - gamma) * u_old + gamma * g
            p = [math.exp(s / tau) / u for s in negs]
            loss += -dot(anchor[i], other[i]) + sum(pj * s for pj, s in zip(p, negs)) / len(negs)
            us.append(u)
            ds.append(math.log(u) + rho - sum(pj * s for pj, s in zip(p, negs)) / len(negs) / tau)
        d = sum(ds) / 2
        m = (1 - beta) * m_old + beta * d
        new[n] = (min(max(tau - eta * m, tau_min), tau_max), sum(us) / 2, m)
    for n, (tau, u, m) in new.items():
        st["tau"][n], st["u"][n], st["m"][n] = tau, u, m
    return loss / b


def test_state_update_matches_hand_computation():
    n_data = 10
    mod = ISogCLR(n_data, tau_init=0.1, **HP).double()
    st = {"tau": [0.1] * n_data, "u": [0.0] * n_data, "m": [0.0] * n_data}
    g = torch.Generator().manual_seed(0)
    for step, index in enumerate([[3, 7, 1, 0], [7, 2, 3, 9], [1, 7, 3, 5]]):
        z1 = torch.randn(4, 5, generator=g, dtype=torch.float64)
        z2 = z1 + 0.5 * torch.randn(4, 5, generator=g, dtype=torch.float64)
        loss = mod(z1, z2, torch.tensor(index))
        want = hand_step(st, z1, z2, index, **HP)
        assert float(loss) == pytest.approx(want, abs=1e-9), step
        for key, buf in (("tau", mod.state.tau), ("u", mod.state.u), ("m", mod.state.m)):
            assert buf.tolist() == pytest.approx(st[key], rel=1e-9, abs=1e-9), (step, key)
    assert set(mod.state_dict()) == {"state.tau", "state.u", "state.m"}
    assert mod.state.tau[4] == 0.1 and mod.state.u[4] == 0  # never visited: untouched


def test_eval_mode_and_sogclr_keep_state():
    z1, z2 = torch.randn(4, 3), torch.randn(4, 3)
    mod = ISogCLR(6).eval()
    mod(z1, z2, torch.arange(4))
    assert float(mod.state.u.abs().sum()) == 0
    sog = ISogCLR(6, learn_tau=False)
    sog(z1, z2, torch.arange(4))
    assert torch.all(sog.state.tau == 0.1) and float(sog.state.u[:4].min()) > 0


def test_bimodal_separate_state_and_gradient():
    mod = ISogCLRBimodal(8)
    a = torch.randn(5, 4, requires_grad=True)
    b = torch.randn(5, 4, requires_grad=True)
    loss = mod(a, b, torch.tensor([0, 2, 4, 6, 7]))
    loss.backward()
    assert torch.isfinite(loss) and a.grad is not None and torch.isfinite(a.grad).all()
    assert float(mod.state_a.u[0]) > 0 and float(mod.state_b.u[0]) > 0
    assert not torch.equal(mod.state_a.u, mod.state_b.u)
    assert {"state_a.tau", "state_b.tau"} <= set(mod.state_dict())


def test_bad_index_raises():
    mod = ISogCLR(4)
    with pytest.raises(ConfigError, match="out of range"):
        mod(torch.randn(3, 2), torch.randn(3, 2), torch.tensor([0, 1, 4]))
    with pytest.raises(ConfigError, match="dataset size"):
        ISogCLR(0)


class _Kill(Exception):
    pass


def _kill_at_2(epoch, method):
    if epoch == 2:  # before epoch 2's checkpoint: the last one written is epoch 1's
        raise _Kill


def test_state_survives_checkpoint_and_resume(tiny_config, tmp_path):
    import selfsup
    from selfsup.train import checkpoint as ckpt

    def cfg(out):
        return tiny_config(
            method="isogclr",
            out=str(out),
            eval={"protocols": ["knn"], "diagnostics": False, "report": False},
        )

    straight = selfsup.train(cfg(tmp_path / "a"))
    with pytest.raises(_Kill):
        selfsup.train(cfg(tmp_path / "b"), on_epoch_end=_kill_at_2)
    s1 = ckpt.load(ckpt.latest(tmp_path / "b"))["model"]
    assert float(s1["isog.state.u"].abs().sum()) > 0  # the state is in the checkpoint
    assert not torch.all(s1["isog.state.tau"] == 0.1)
    resumed = selfsup.train(resume=tmp_path / "b")
    sa = ckpt.load(ckpt.latest(straight.dir))["model"]
    sb = ckpt.load(ckpt.latest(resumed.dir))["model"]
    assert {"isog.state.tau", "isog.state.u", "isog.state.m"} <= set(sa)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
