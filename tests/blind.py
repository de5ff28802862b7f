"""Blind tests' tools: real photo crops, and statistics that say whether a cue tells answers apart.

A cue is shown gone when a statistic's AUC, or a simple classifier's accuracy cross-validated by
source picture (leave one picture out), sits at chance with its confidence interval around it. The
intervals come from a bootstrap over pictures, since rows of one picture are not independent.
numpy only: sklearn is not a dependency.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ssl4rl_data.images import decode
from ssl4rl_data.sources.sample import PHOTOS, photo_dir

# Real textures and scenes bundled with scikit-image besides the sample source's photos.
EXTRA = ("brick.png", "grass.png", "gravel.png", "cell.png", "page.png", "text.png", "horse.png")


def photos() -> list[tuple[str, Image.Image]]:
    """Every bundled real picture as RGB, with its name (the cross-validation group)."""
    names = [name for name in PHOTOS + EXTRA if (photo_dir() / name).exists()]
    return [(Path(name).stem, Image.open(photo_dir() / name).convert("RGB")) for name in names]


def photo_crops(per_photo: int, seed: int = 0, min_side: int = 160) -> list[tuple[str, Image.Image]]:
    """`per_photo` random crops of each picture (random size, aspect and place), stored as JPEG and
    decoded as the builder decodes (448 px at most), as (picture name, image)."""
    rng = np.random.default_rng(seed)
    out = []
    for name, photo in photos():
        for _ in range(per_photo):
            width = int(rng.integers(min(min_side, photo.width), photo.width + 1))
            height = int(np.clip(width * rng.uniform(0.6, 1.6), min(min_side, photo.height), photo.height))
            left = int(rng.integers(photo.width - width + 1))
            top = int(rng.integers(photo.height - height + 1))
            buffer = io.BytesIO()
            photo.crop((left, top, left + width, top + height)).save(buffer, format="JPEG", quality=95)
            out.append((name, decode(buffer.getvalue(), 448)))
    return out


def auc(scores, labels) -> float:
    """Probability that a positive outscores a negative (ties count half): the Mann-Whitney AUC.

    >>> auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2 + 1
    ranks[order] = np.repeat(average, counts)
    positives, negatives = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def bootstrap_ci(statistic, groups, *arrays, rounds: int = 400, seed: int = 0) -> tuple[float, float]:
    """95% interval of `statistic(*arrays)` under resampling whole groups (pictures) with replacement."""
    groups = np.asarray(groups)
    names = np.unique(groups)
    members = [np.flatnonzero(groups == name) for name in names]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        picked = np.concatenate([members[i] for i in rng.integers(len(names), size=len(names))])
        try:
            values.append(statistic(*(np.asarray(a)[picked] for a in arrays)))
        except (ZeroDivisionError, FloatingPointError, ValueError):
            continue
    values = np.asarray([v for v in values if np.isfinite(v)])
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


def auc_with_ci(scores, labels, groups) -> tuple[float, float, float]:
    """AUC of `scores` for `labels`, folded to >= 0.5 (a cue in either direction counts), with its
    picture-bootstrap interval (of the unfolded AUC, folded the same way)."""
    value = auc(scores, labels)
    low, high = bootstrap_ci(auc, groups, scores, labels)
    if value < 0.5:
        return 1 - value, 1 - high, 1 - low
    return value, low, high


def _standardise(train: np.ndarray, test: np.ndarray):
    mean, std = train.mean(0), train.std(0) + 1e-9
    return (train - mean) / std, (test - mean) / std


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 25) -> np.ndarray:
    """Multinomial logistic regression by Newton-like full-batch gradient steps; returns the weights."""
    classes = int(y.max()) + 1
    x = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros((x.shape[1], classes))
    target = np.eye(classes)[y]
    rate = 1.0
    for _ in range(steps * 8):
        logits = x @ weights
        logits -= logits.max(1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(1, keepdims=True)
        gradient = x.T @ (probabilities - target) / len(x) + l2 * weights
        weights -= rate * gradient
    return weights


def predict_logistic(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (np.hstack([x, np.ones((len(x), 1))]) @ weights).argmax(1)


def grouped_cv_accuracy(features, labels, groups) -> tuple[float, float, float, float]:
    """Leave-one-picture-out accuracy of a logistic regression on `features`, its picture-bootstrap
    95% interval, and chance (the largest class's share)."""
    x, y, groups = np.asarray(features, float), np.asarray(labels), np.asarray(groups)
    if x.ndim == 1:
        x = x[:, None]
    correct = np.zeros(len(y), bool)
    for name in np.unique(groups):
        test = groups == name
        train_x, test_x = _standardise(x[~test], x[test])
        correct[test] = predict_logistic(fit_logistic(train_x, y[~test]), test_x) == y[test]
    chance = np.bincount(y).max() / len(y)
    low, high = bootstrap_ci(np.mean, groups, correct)
    return float(correct.mean()), low, high, float(chance)


def resized_photos(per_photo: int, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """Whole pictures resized to a random long side of 300-1,400 px (as sources often are), stored as
    JPEG and decoded as the builder decodes (448 px at most): their borders are resizing borders."""
    rng = np.random.default_rng(seed)
    out = []
    for name, photo in photos():
        for _ in range(per_photo):
            scale = rng.uniform(300, 1400) / max(photo.size)
            size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
            buffer = io.BytesIO()
            filters = (Image.Resampling.LANCZOS, Image.Resampling.BICUBIC, Image.Resampling.BILINEAR)
            photo.resize(size, filters[int(rng.integers(3))]).save(buffer, format="JPEG", quality=95)
            out.append((name, decode(buffer.getvalue(), 448)))
    return out
