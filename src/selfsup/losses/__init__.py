"""Objectives as pure functions of embeddings; stateful ones wrap their state in small modules."""

from .barlow import barlow_twins
from .bow import bow_loss, bow_targets, word_distances
from .byol import byol_loss, negative_cosine
from .clan import clan_loss
from .clip import ClipLoss, clip_loss
from .dcl import dcl, dclw
from .dino import Centre, dino_loss, teacher_temperature
from .distributed import gather
from .grace import grace_loss
from .graphmae import sce_loss
from .groco import groco, relaxed_sort
from .hcl import debiased, hcl
from .ibot import ibot_patch_loss
from .infonce import info_nce, mochi_negatives
from .isogclr import ISogCLR, ISogCLRBimodal
from .koleo import koleo
from .listwise import (
    frechet_distance,
    listwise_wasserstein,
    listwise_wasserstein_1d,
    wasserstein_1d,
)
from .nt_xent import nt_xent
from .queue import FeatureQueue, nearest_neighbour
from .scarf import scarf_loss
from .scgc import iac_loss, influence_targets
from .sinkhorn import sinkhorn
from .supcon import supcon, supcon_mix
from .swav import swav_loss
from .ts2vec import hierarchical_contrastive_loss
from .vicreg import vicreg
from .vime import vime_loss

__all__ = [
    "clan_loss",
    "scarf_loss",
    "vime_loss",
    "nt_xent",
    "barlow_twins",
    "vicreg",
    "byol_loss",
    "negative_cosine",
    "info_nce",
    "mochi_negatives",
    "FeatureQueue",
    "nearest_neighbour",
    "dcl",
    "dclw",
    "hcl",
    "debiased",
    "supcon",
    "supcon_mix",
    "clip_loss",
    "ClipLoss",
    "ISogCLR",
    "ISogCLRBimodal",
    "groco",
    "relaxed_sort",
    "listwise_wasserstein",
    "listwise_wasserstein_1d",
    "frechet_distance",
    "wasserstein_1d",
    "gather",
    "hierarchical_contrastive_loss",
    "sce_loss",
    "grace_loss",
    "iac_loss",
    "influence_targets",
    "sinkhorn",
    "swav_loss",
    "dino_loss",
    "Centre",
    "teacher_temperature",
    "ibot_patch_loss",
    "koleo",
    "bow_targets",
    "bow_loss",
    "word_distances",
]
