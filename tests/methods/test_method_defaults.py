"""How a method's tuned defaults meet the data: sized by the data and the run, and a backbone
default only where the modality has that backbone."""

from __future__ import annotations

import pytest

from selfsup import resolve
from selfsup.data import load_source
from selfsup.parts import with_defaults


def _cfg(method, data, **options):
    return with_defaults(
        resolve.resolve_config(method=method, data=data, **options), load_source(data).train
    )


@pytest.mark.parametrize("epochs,warmup", [(None, 20.0), (20, 2.0), (5, 0.0)])
def test_clan_warms_up_for_a_tenth_of_the_run_the_user_asked_for(epochs, warmup):
    c = _cfg("clan", "breast_cancer", **({"epochs": epochs} if epochs else {}))
    assert (c.train.epochs, c.optim.warmup_epochs) == (epochs or 200, warmup)
    assert c.model.backbone == "residual_mlp"


def test_a_backbone_default_of_another_modality_is_not_applied():
    """CLAN's residual MLP is a table backbone: on images the image modality's default stays."""
    assert _cfg("clan", "digits").model.backbone == "auto"
    assert _cfg("clan", "digits", backbone="convnet").model.backbone == "convnet"
