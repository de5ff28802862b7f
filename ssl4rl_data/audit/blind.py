"""Blind baselines: can the answer be guessed from what no model should use?

Each row is described by format features of every image it shows (encoded byte length, pixel width,
height and aspect ratio, the JPEG quantisation tables' sum, the header's length up to the image data)
and pixel statistics (grey mean and spread), plus its position in the dataset. A one-feature classifier
(quantile bins, majority answer per bin: any monotone or non-monotone relation) is cross-validated for
every feature, and a logistic regression for the format features together and for all of them, in 5
folds grouped by source picture. Accuracy is compared with chance (the commonest answer's share) by a
one-sided binomial test, Bonferroni-corrected over every test; its 95% Wilson interval is reported.
Tasks whose pieces' statistics describe their content (checks.Checker.content_statistics) get those
features reported but not counted as a shortcut. Answers of more than MAX_CLASSES values (jigsaw
permutations) are tested cell by cell.
"""

import hashlib
import io

import numpy as np
from PIL import Image

from .stats import above_chance_p, wilson

FORMAT_FEATURES = ("bytes", "width", "height", "aspect", "jpeg_tables", "header_bytes")
PIXEL_FEATURES = ("mean", "spread")
CONTENT_PROXIES = ("bytes", "mean", "spread")  # what a picture's content changes (see the module doc)
FOLDS, BINS, MAX_CLASSES = 5, 10, 36
MAX_FIT_ROWS = 3000  # training rows of a logistic regression fold
ALPHA = 0.01  # family-wise, over every test of the dataset
MIN_GAIN = 0.01  # accuracy above chance smaller than this is not called a shortcut however many rows


def image_features(data: bytes, decoded: Image.Image | None = None) -> list[float]:
    """FORMAT_FEATURES then PIXEL_FEATURES of one encoded image (a 1/8-scale decode when `decoded` is None)."""
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    tables = getattr(image, "quantization", None) or {}
    table_sum = float(sum(sum(t) for t in tables.values()))
    marker = data.find(b"\xff\xda") if image.format == "JPEG" else data.find(b"IDAT")
    if decoded is None:
        if image.format == "JPEG":
            image.draft("L", (max(1, width // 8), max(1, height // 8)))
        decoded = image
    pixels = np.asarray(decoded.convert("L"), np.float32)
    return [
        float(len(data)),
        width,
        height,
        width / max(height, 1),
        table_sum,
        float(max(marker, 0)),
        float(pixels.mean()),
        float(pixels.std()),
    ]


def feature_names(slots: int) -> list[str]:
    per_image = FORMAT_FEATURES + PIXEL_FEATURES
    return [f"image{i + 1}.{name}" for i in range(slots) for name in per_image] + ["row_position"]


def feature_matrix(per_row: list[list[list[float]]], positions: list[int]) -> tuple[np.ndarray, list[str]]:
    """Rows of per-image features (padded with zeros to the most images a row shows) plus row position."""
    slots = max((len(images) for images in per_row), default=0)
    width = len(FORMAT_FEATURES) + len(PIXEL_FEATURES)
    x = np.zeros((len(per_row), slots * width + 1))
    for r, images in enumerate(per_row):
        for i, values in enumerate(images):
            x[r, i * width : (i + 1) * width] = values
    x[:, -1] = positions
    return x, feature_names(slots)


def fold_of(groups: list[str]) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") % FOLDS for g in groups]
    )


def binned_predictions(x: np.ndarray, y: np.ndarray, folds: np.ndarray, classes: int) -> np.ndarray:
    predicted = np.zeros(len(y), int)
    for fold in range(FOLDS):
        test = folds == fold
        if not test.any() or test.all():
            continue
        train_x, train_y = x[~test], y[~test]
        edges = np.unique(np.quantile(train_x, np.linspace(0, 1, BINS + 1)[1:-1]))
        train_bins, test_bins = np.searchsorted(edges, train_x), np.searchsorted(edges, x[test])
        counts = np.zeros((len(edges) + 1, classes))
        np.add.at(counts, (train_bins, train_y), 1)
        counts[counts.sum(1) == 0] = np.bincount(train_y, minlength=classes)  # empty bins: the commonest
        predicted[test] = counts.argmax(1)[test_bins]
    return predicted


def logistic_predictions(
    x: np.ndarray, y: np.ndarray, folds: np.ndarray, classes: int, steps: int = 200, l2: float = 1e-3
) -> np.ndarray:
    predicted = np.zeros(len(y), int)
    for fold in range(FOLDS):
        test = folds == fold
        if not test.any() or test.all():
            continue
        chosen = np.flatnonzero(~test)
        if len(chosen) > MAX_FIT_ROWS:  # an evenly spaced subset: the fit costs the same from 3,000 rows up
            chosen = chosen[np.linspace(0, len(chosen) - 1, MAX_FIT_ROWS).astype(int)]
        mean, std = x[chosen].mean(0), x[chosen].std(0) + 1e-9
        train = np.hstack([(x[chosen] - mean) / std, np.ones((len(chosen), 1))]).astype(np.float32)
        target = np.eye(classes, dtype=np.float32)[y[chosen]]
        weights = np.zeros((train.shape[1], classes), np.float32)
        for _ in range(steps):
            logits = train @ weights
            probabilities = np.exp(logits - logits.max(1, keepdims=True))
            probabilities /= probabilities.sum(1, keepdims=True)
            weights -= 1.0 * (train.T @ (probabilities - target) / len(train) + l2 * weights)
        predicted[test] = (np.hstack([(x[test] - mean) / std, np.ones((test.sum(), 1))]) @ weights).argmax(1)
    return predicted


def targets(answers: list[str]) -> list[tuple[str, np.ndarray]]:
    """(name, integer codes) of what is predicted: the answer, or each cell of a long comma-separated one."""
    if len(set(answers)) > MAX_CLASSES and all("," in a for a in answers):
        cells = [a.split(",") for a in answers]
        width = min(len(c) for c in cells)
        return [
            (f"answer cell {k + 1}", np.unique([c[k] for c in cells], return_inverse=True)[1]) for k in range(width)
        ]
    return [("answer", np.unique(answers, return_inverse=True)[1])]


def blind_baselines(
    x: np.ndarray, names: list[str], answers: list[str], groups: list[str], content_statistics: bool
) -> dict:
    folds = fold_of(groups)
    tests = []
    for target_name, y in targets(answers):
        classes = int(y.max()) + 1 if len(y) else 1
        chance = float(np.bincount(y).max() / len(y)) if len(y) else 1.0
        varying = [j for j in range(x.shape[1]) if np.ptp(x[:, j]) > 0]
        models = [(names[j], binned_predictions(x[:, j], y, folds, classes), [names[j]]) for j in varying]
        fmt = [j for j in varying if names[j] == "row_position" or names[j].split(".")[1] in FORMAT_FEATURES]
        for label, columns in (
            ("format features (logistic regression)", fmt),
            ("all features (logistic regression)", varying),
        ):
            if len(columns) > 1:
                predicted = logistic_predictions(x[:, columns], y, folds, classes)
                models.append((label, predicted, [names[j] for j in columns]))
        for label, predicted, used in models:
            correct = int((predicted == y).sum())
            # A model that uses a content proxy cannot tell a format cue from content: reported, not a shortcut.
            informational = content_statistics and any(n.split(".")[-1] in CONTENT_PROXIES for n in used)
            tests.append(
                {
                    "target": target_name,
                    "feature": label,
                    "accuracy": correct / len(y),
                    "ci95": list(wilson(correct, len(y))),
                    "chance": chance,
                    "p": above_chance_p(correct, len(y), chance),
                    "content_proxy": informational,
                }
            )
    threshold = ALPHA / max(1, len(tests))
    for test in tests:
        test["above_chance"] = bool(test["p"] < threshold and test["accuracy"] > test["chance"] + MIN_GAIN)
        test["shortcut"] = test["above_chance"] and not test["content_proxy"]
    ranked = sorted(tests, key=lambda t: (t["p"], -(t["accuracy"] - t["chance"])))
    shortcuts = [t for t in ranked if t["shortcut"]]
    singles = [t for t in shortcuts if "logistic" not in t["feature"]]
    strongest = (singles or shortcuts or [None])[0]
    return {
        "rows": len(answers),
        "tests": len(tests),
        "alpha": ALPHA,
        "threshold_p": threshold,
        "shortcut": bool(shortcuts),
        "strongest": strongest,
        "top": ranked[:8],
        "shortcuts": [t["feature"] + (f" ({t['target']})" if t["target"] != "answer" else "") for t in shortcuts],
    }
