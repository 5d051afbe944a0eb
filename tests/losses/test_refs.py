"""Agreement with the reference implementations that install from the package registry (the
``refs`` extra: lightly, libauc, pytorch-metric-learning, installed with ``pip install --no-deps``).
Values and gradients in float64 on several shapes; each test is skipped when its package is absent.

lightly imports torchvision at package level, in places its losses never use; torchvision pulls a
multi-GB CUDA torch, so it is never installed: an empty stand-in module answers those imports while
lightly is imported, and is removed again afterwards.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from selfsup.losses import (
    ISogCLR,
    ISogCLRBimodal,
    barlow_twins,
    byol_loss,
    dcl,
    dclw,
    info_nce,
    nearest_neighbour,
    negative_cosine,
    nt_xent,
    supcon,
    vicreg,
)

D = torch.float64
SHAPES = [(4, 3), (9, 8), (16, 5)]


class _Stub(types.ModuleType):
    """Any attribute is another stub; usable as a base class or a callable."""

    __path__: list = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        mod = _Stub(f"{self.__name__}.{name}")
        sys.modules[mod.__name__] = mod
        return mod

    def __call__(self, *args, **kwargs):
        return self

    def __mro_entries__(self, bases):
        return (object,)


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _Stub(spec.name)

    def exec_module(self, module):
        module.__version__ = "0.0.0"


@pytest.fixture(scope="module")
def lightly_loss():
    pytest.importorskip(
        "lightly", reason="reference package lightly not installed (the refs extra)"
    )
    finder = None
    try:
        importlib.import_module("torchvision")
    except ImportError:
        finder = _StubFinder()
        sys.meta_path.insert(0, finder)
    try:
        loss = importlib.import_module("lightly.loss")
        nn_bank = importlib.import_module("lightly.models.modules.nn_memory_bank")
    except Exception as err:  # an import this stub cannot satisfy
        pytest.skip(f"lightly could not be imported without torchvision: {err}")
    finally:
        if finder is not None:
            sys.meta_path.remove(finder)
            for name in [
                n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")
            ]:
                del sys.modules[name]
    return types.SimpleNamespace(loss=loss, nn_bank=nn_bank)


def _pair(b, d, seed):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(b, d, generator=g, dtype=D)
    return z1, z1 + 0.7 * torch.randn(b, d, generator=g, dtype=D)


def _agree(ours, ref, inputs, atol=1e-9):
    """``ours(*xs)`` and ``ref(*xs)`` equal in value and in gradient w.r.t. every input."""
    a = [x.clone().requires_grad_(True) for x in inputs]
    b = [x.clone().requires_grad_(True) for x in inputs]
    la, lb = ours(*a), ref(*b)
    assert float(la.detach()) == pytest.approx(float(lb.detach()), abs=atol, rel=1e-9)
    ga = torch.autograd.grad(la, a, allow_unused=True)
    gb = torch.autograd.grad(lb, b, allow_unused=True)
    for x, y in zip(ga, gb, strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            torch.testing.assert_close(x, y, atol=atol, rtol=1e-7)


# -- lightly ---------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:To copy construct from a tensor")
@pytest.mark.parametrize("b,d", SHAPES)
@pytest.mark.parametrize("t", [0.1, 0.5])
def test_nt_xent_dcl_dclw_match_lightly(lightly_loss, b, d, t):
    L = lightly_loss.loss
    z = _pair(b, d, b * d)
    _agree(lambda x, y: nt_xent(x, y, t), L.NTXentLoss(temperature=t), z)
    _agree(lambda x, y: dcl(x, y, t), L.DCLLoss(temperature=t), z)
    _agree(lambda x, y: dclw(x, y, t, 0.5), L.DCLWLoss(temperature=t, sigma=0.5), z)


@pytest.mark.parametrize("b,d", SHAPES)
def test_barlow_twins_and_vicreg_match_lightly(lightly_loss, b, d):
    L = lightly_loss.loss
    z = _pair(b, d, b + d)
    _agree(
        lambda x, y: barlow_twins(x, y, 5e-3), L.BarlowTwinsLoss(lambda_param=5e-3), z, atol=1e-7
    )
    _agree(lambda x, y: vicreg(x, y), L.VICRegLoss(), z, atol=1e-7)


@pytest.mark.parametrize("b,d", SHAPES)
def test_byol_and_simsiam_cosine_match_lightly(lightly_loss, b, d):
    neg = lightly_loss.loss.NegativeCosineSimilarity()
    z = _pair(b, d, 3)
    _agree(negative_cosine, neg, z)
    _agree(byol_loss, lambda p, t: 2 + 2 * neg(p, t), z)  # 2 - 2 cos


@pytest.mark.parametrize("b,d,k", [(4, 3, 7), (9, 8, 32), (16, 5, 16)])
def test_nnclr_neighbour_and_moco_infonce_match_lightly(lightly_loss, b, d, k):
    g = torch.Generator().manual_seed(k)
    z = torch.randn(b, d, generator=g, dtype=D)
    bank = F.normalize(torch.randn(k, d, generator=g, dtype=D), dim=1)
    nn_mod = lightly_loss.nn_bank.NNMemoryBankModule(size=(k, d))
    nn_mod.bank = bank.clone()
    torch.testing.assert_close(
        nearest_neighbour(z, bank), F.normalize(nn_mod(z, update=False), dim=1)
    )
    # MoCo: lightly's NTXentLoss with a memory bank is InfoNCE against the bank (out0 queries)
    for t in (0.07, 0.2):
        ref = lightly_loss.loss.NTXentLoss(temperature=t, memory_bank_size=(k, d))
        ref.memory_bank.bank = bank.clone()
        q, key = _pair(b, d, k + 1)
        # keys carry no gradient in MoCo (momentum encoder)
        _agree(
            lambda x, y, t=t: info_nce(x, y.detach(), bank, t),
            lambda x, y, ref=ref: ref(x, y.detach()),
            (q, key),
        )


# -- LibAUC ----------------------------------------------------------------------------------------
@pytest.fixture
def libauc_losses():
    return pytest.importorskip(
        "libauc.losses", reason="reference package libauc not installed (the refs extra)"
    )


BATCHES = [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
    [2, 5, 0, 7],
    [1, 3, 6, 4],
    [7, 6, 5, 4],
]  # all new, then all seen


def test_isogclr_unimodal_matches_libauc_gcloss_v1_over_steps(libauc_losses):
    old = torch.get_default_dtype()
    torch.set_default_dtype(D)  # LibAUC's state tensors take the default dtype
    try:
        ref = libauc_losses.GCLoss_v1(
            N=8,
            tau=0.1,
            gamma=0.9,
            device=torch.device("cpu"),
            enable_isogclr=True,
            tau_min=0.05,
            tau_max=0.7,
            rho=0.3,
            eta=0.01,
            beta=0.9,
        )
    finally:
        torch.set_default_dtype(old)
    ours = ISogCLR(
        8, tau_init=0.1, gamma=0.9, rho=0.3, eta=0.01, beta=0.9, tau_min=0.05, tau_max=0.7
    ).double()
    g = torch.Generator().manual_seed(0)
    for index in BATCHES:
        z = _pair(4, 6, int(torch.randint(0, 1000, (1,), generator=g)))
        idx = torch.tensor(index)
        _agree(lambda x, y, i=idx: ours(x, y, i), lambda x, y, i=idx: ref(x, y, i), z, atol=1e-8)
        # _agree ran each once: the states moved by one identical step
        torch.testing.assert_close(
            ours.state.tau, ref.learnable_tau.reshape(-1), atol=1e-10, rtol=1e-9
        )
        torch.testing.assert_close(ours.state.u, ref.u.reshape(-1), atol=1e-10, rtol=1e-9)


def test_isogclr_bimodal_matches_libauc_gcloss_v2_over_steps(libauc_losses):
    old = torch.get_default_dtype()
    torch.set_default_dtype(D)
    try:
        ref = libauc_losses.GCLoss_v2(
            N=8,
            tau=0.01,
            gamma=0.9,
            temperature_scheme="individual_learnable",
            tau_min=0.005,
            tau_max=0.05,
            rho=6.0,
            eta=0.01,
            beta=0.9,
        )
    finally:
        torch.set_default_dtype(old)
    ours = ISogCLRBimodal(8).double()
    g = torch.Generator().manual_seed(1)
    for index in BATCHES:
        z = _pair(4, 6, int(torch.randint(0, 1000, (1,), generator=g)))
        idx = torch.tensor(index)
        # GCLoss_v2 expects normalised features (CLIP models normalise before the loss)
        _agree(
            lambda a, b, i=idx: ours(a, b, i),
            lambda a, b, i=idx: ref(F.normalize(a, dim=1), F.normalize(b, dim=1), i)[0],
            z,
            atol=1e-8,
        )
        for st, tau, u, bb in (
            (ours.state_a, ref.learnable_tau_img, ref.u1, ref.b1),
            (ours.state_b, ref.learnable_tau_txt, ref.u2, ref.b2),
        ):
            torch.testing.assert_close(st.tau, tau.reshape(-1), atol=1e-10, rtol=1e-9)
            torch.testing.assert_close(st.u, u.reshape(-1), atol=1e-10, rtol=1e-9)
            torch.testing.assert_close(st.b, bb.reshape(-1), atol=1e-10, rtol=1e-9)


# -- pytorch-metric-learning -----------------------------------------------------------------------
@pytest.mark.parametrize("b,v,d", [(6, 2, 4), (8, 3, 5), (12, 2, 8)])
@pytest.mark.parametrize("t", [0.1, 0.5])
def test_supcon_matches_pytorch_metric_learning(b, v, d, t):
    """PML's SupConLoss (adapted from HobbitLong/SupContrast) without the t / base factor and with
    its mean over anchors that have a positive: equal to ours with base_temperature = t whenever
    every anchor has a positive (V >= 2)."""
    losses = pytest.importorskip(
        "pytorch_metric_learning.losses",
        reason="reference package pytorch-metric-learning not installed (the refs extra)",
    )
    g = torch.Generator().manual_seed(b * v)
    z = torch.randn(b, v, d, generator=g, dtype=D)
    y = torch.randint(0, 3, (b,), generator=g)
    ref = losses.SupConLoss(temperature=t)

    def pml(z):
        emb = z.transpose(0, 1).reshape(v * b, d)  # view-major, as SupContrast's torch.cat(unbind)
        return ref(emb, y.repeat(v))

    _agree(lambda z: supcon(z, y, t, base_temperature=t), pml, (z,), atol=1e-7)
