"""Train a caption evaluator on a captioned image folder.

The network learns, from the folder's training split, which vocabulary concepts each caption
states (multi-label, binary cross-entropy), with noise and blur augmentation so generator
artefacts do not read as missing content. The loop checkpoints and resumes (`fewstep.training`);
the finished evaluator is written atomically with the reference features of the held-out images
(never trained on) and of as many training images, and its own scores on the real held-out
images (the ceiling a generator can reach).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fewstep.families.captioned.evaluation import concept_checks
from fewstep.families.captioned.network import ConceptNet
from fewstep.families.captioned.store import CaptionEvaluator
from fewstep.families.captioned.vocab import build_vocabulary, concepts
from fewstep.families.frechet import frechet_distance
from fewstep.families.sd3 import ImageFolderSource
from fewstep.fsutil import atomic_dir
from fewstep.training import adamw, augment, optimize, to_tensor, train_loop

MIN_HELD_OUT = 20  # fewer real images give no meaningful FID reference


class TooFewHeldOut(ValueError):
    """The folder holds out too few images for an FID reference."""


@dataclass
class EvaluatorConfig:
    steps: int = 1500
    batch: int = 128
    lr: float = 1e-3
    width: int = 32
    features: int = 256
    seed: int = 0
    min_count: int = 5  # a concept needs this many training captions
    max_concepts: int = 1024
    threshold: float = 0.5
    min_auc: float = 0.9  # calibration: concepts the images separate less well are not checked
    checkpoint_every: int = 250
    progress: bool = True


def _targets(captions: list[str], index: dict[str, int]) -> np.ndarray:
    y = np.zeros((len(captions), len(index)), np.float32)
    for i, caption in enumerate(captions):
        for c in concepts(caption):
            if c in index:
                y[i, index[c]] = 1.0
    return y


def train_caption_evaluator(folder: Path, resolution: int, out: Path, cfg: EvaluatorConfig, work: Path) -> Path:
    """Train on `folder`'s training split and write the evaluator to `out` (skipped when present)."""
    if (out / "config.json").exists():
        return out
    train = ImageFolderSource(folder, resolution, split="train")
    held = _held_out(folder, resolution)
    vocabulary = build_vocabulary(train.captions, cfg.min_count, cfg.max_concepts)
    if not vocabulary:
        raise ValueError(
            f"{folder}: no caption concept appears in {cfg.min_count} or more training captions (and in fewer than "
            "nine in ten): the captions say nothing an evaluator could learn to check"
        )
    index = {c: i for i, c in enumerate(vocabulary)}
    targets = torch.from_numpy(_targets(train.captions, index))
    images = to_tensor(train.images)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = ConceptNet(len(vocabulary), cfg.width, cfg.features).train()
    opt = adamw(net.parameters(), cfg.lr, weight_decay=1e-4)

    def step(_: int) -> float:
        idx = torch.from_numpy(rng.integers(0, len(images), cfg.batch))
        logits = net(augment(images[idx], gen))["logits"]
        return optimize(opt, torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[idx]))

    train_loop("caption evaluator", work, cfg.steps, {"net": net}, {"opt": opt}, rng, step, cfg, {"augment": gen})
    net.eval()
    n_ref = min(len(train.captions), len(held.captions))
    pick = np.random.default_rng(cfg.seed + 1).choice(len(train.captions), n_ref, replace=False)
    evaluator = CaptionEvaluator(
        net=net,
        vocabulary=vocabulary,
        resolution=resolution,
        held_out=held.captions,
        training=train.captions,
        reference={},
        threshold=cfg.threshold,
    )
    held_probs, held_feats = evaluator.predict(held.images)
    _, train_feats = evaluator.predict(train.images[pick])
    evaluator.reference = {"held_out": held_feats, "training": train_feats}
    evaluator.info = {
        "data": {
            "folder": str(folder),
            "images": len(train.captions) + len(held.captions),
            "held_out": len(held.captions),
            "resolution": resolution,
        },  # fmt: skip
        "training": asdict(cfg),
        "real": {"fid_real": frechet_distance(train_feats, held_feats)},
    }
    calibrate(evaluator, held, cfg.min_auc, held_probs)
    with atomic_dir(out) as tmp:
        evaluator.save(tmp)
    return out


def calibrate(
    evaluator: CaptionEvaluator, held: ImageFolderSource, min_auc: float = 0.9, probs: np.ndarray | None = None
) -> None:
    """Which concepts the images show, from real held-out images: on the even-numbered half, a
    concept whose probability separates the images whose caption states it from the others with a
    ROC AUC below `min_auc` is not checked (a caption template's filler words, say "picture",
    which no image shows), and each concept's threshold is the one with the best true-minus-false
    positive rate there. Concepts with fewer than 5 positives or negatives keep the default.
    The real-image scores (the ceiling) come from the odd-numbered half, not used to calibrate.
    `probs`: the evaluator's predictions for `held.images` when already made."""
    from scipy.stats import mannwhitneyu

    if probs is None:
        probs, _ = evaluator.predict(held.images)
    cal, rep = np.arange(0, len(probs), 2), np.arange(1, len(probs), 2)
    y = _targets([held.captions[i] for i in cal], {c: i for i, c in enumerate(evaluator.vocabulary)}) > 0
    p_cal = probs[cal]
    unchecked, aucs, thresholds = [], {}, {}
    for j, concept in enumerate(evaluator.vocabulary):
        pos, neg = p_cal[y[:, j], j], p_cal[~y[:, j], j]
        if len(pos) < 5 or len(neg) < 5:
            continue
        aucs[concept] = float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))
        if aucs[concept] < min_auc:
            unchecked.append(concept)
        thresholds[concept] = youden_threshold(pos, neg)
    # A pair with an unseen word says nothing its other word does not ("picture red" is "red").
    unseen = set(unchecked)
    unchecked += [c for c in evaluator.vocabulary if " " in c and c not in unseen and unseen & set(c.split())]
    evaluator.calibrated(unchecked, thresholds)
    evaluator.info["calibration"] = {
        "images": len(cal),
        "min_auc": min_auc,
        "tested": len(aucs),
        "unchecked": {c: round(aucs[c], 3) if c in aucs else "pair with an unseen word" for c in unchecked},
    }
    real = concept_checks(evaluator, probs[rep], [held.captions[i] for i in rep])
    evaluator.info["real"] = {**evaluator.info.get("real", {}), **real, "images": len(rep)}


def youden_threshold(pos: np.ndarray, neg: np.ndarray) -> float:
    """The probability cut that maximises true-positive minus false-positive rate (Youden's J),
    midway between neighbouring scores."""
    scores = np.unique(np.concatenate([pos, neg]))
    cuts = np.concatenate([[scores[0]], (scores[1:] + scores[:-1]) / 2])
    j = [(pos >= c).mean() - (neg >= c).mean() for c in cuts]
    return float(cuts[int(np.argmax(j))])


def recalibrate(path: Path, folder: Path, min_auc: float = 0.9) -> CaptionEvaluator:
    """Calibrate a trained evaluator again (no retraining) and rewrite it atomically."""
    evaluator = CaptionEvaluator.load(path)
    calibrate(evaluator, _held_out(folder, evaluator.resolution), min_auc)
    with atomic_dir(Path(path)) as tmp:
        evaluator.save(tmp)
    return evaluator


def _held_out(folder: Path, resolution: int) -> ImageFolderSource:
    try:
        held = ImageFolderSource(folder, resolution, split="held_out")
        found = len(held.captions)
    except ValueError:
        found = 0
    if found < MIN_HELD_OUT:
        raise TooFewHeldOut(
            f"{folder}: {found} held-out images (one in ten, chosen by file name); a caption evaluator needs at "
            f"least {MIN_HELD_OUT} for its FID reference: add images (about {10 * MIN_HELD_OUT} in all)"
        )
    return held
