"""Shared fixtures: offline settings, images whose content makes every label decidable, CLI runner."""

import io
import os
import tempfile
from pathlib import Path

from ssl4rl_data.hub_server import HubServer

# The Hub is a local test server, started before huggingface_hub / datasets read HF_ENDPOINT at import:
# nothing can reach the real Hub, and pushes and loads by repo id run end to end.
HUB = HubServer().start()
os.environ.update(
    {
        "HF_ENDPOINT": HUB.url,
        "HF_TOKEN": "test-token",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": tempfile.mkdtemp(prefix="ssl4rl-hf-"),
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "NO_ALBUMENTATIONS_UPDATE": "1",
        # One torch thread per process (read when torch is imported, here and in every command a test starts): the
        # models are tiny, and on 2 shared cores a second thread spins against the other worker (measured: a 6-step
        # training test 8 CPU s with one thread, 17 with two).
        "OMP_NUM_THREADS": "1",
    }
)

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ssl4rl_data.cli import main
from ssl4rl_data.sources.sample import PHOTOS, photo_dir


def gradient(width: int, height: int) -> Image.Image:
    """Red grows left to right, green top to bottom, blue varies with both: every pixel's place is readable."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    blue = (np.sin(x / 9.0) * np.cos(y / 13.0) + 1) * 127.5
    return Image.fromarray(np.stack([x, y, blue], axis=2).round().astype(np.uint8))


def stripes(size: int, vertical: bool, period: int = 16) -> Image.Image:
    """Black/white stripes; their orientation survives crops, flips, colour jitter and blur."""
    line = ((np.arange(size) // (period // 2)) % 2 * 255).astype(np.uint8)
    plane = np.tile(line[None, :], (size, 1)) if vertical else np.tile(line[:, None], (1, size))
    return Image.fromarray(plane).convert("RGB")


def jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **kwargs)
    return buffer.getvalue()


def read_rows(folder: Path) -> list[dict]:
    rows = []
    for file in sorted(Path(folder).glob("data/*.parquet")):
        rows += pq.read_table(file).to_pylist()
    return rows


def decode_images(row: dict) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(io.BytesIO(image["bytes"])).convert("RGB"), dtype=np.float32) for image in row["images"]
    ]


@pytest.fixture
def run_cli(capsys):
    """Run `ssl4rl-data ARGS...` in-process; returns (exit code, stderr)."""

    def run(*args):
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err

    return run


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """72 photo crops as JPEG files (more than two shards' worth), made from the bundled sample photos."""
    folder = tmp_path_factory.mktemp("photos")
    index = 0
    for name in PHOTOS:
        photo = Image.open(photo_dir() / name).convert("RGB")
        for k in range(6):
            left = (k * 37) % max(1, photo.width - 200)
            top = (k * 53) % max(1, photo.height - 160)
            crop = photo.crop((left, top, left + 200 + 8 * k, top + 160 + 4 * k))
            (folder / f"img{index:03d}.jpg").write_bytes(jpeg_bytes(crop))
            index += 1
    return folder


@pytest.fixture
def hub():
    """The local Hub, emptied for each test; `hub.stop()` makes it unreachable (it restarts after the test)."""
    HUB.state.repos.clear()
    HUB.state.lfs.clear()
    HUB.state.refuse_writes = False
    yield HUB
    if HUB._server is None:
        HUB.start()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random-weight tiny Qwen2.5-VL, built offline (train/synthetic_qwen.py)."""
    from ssl4rl_train.synthetic_qwen import build_synthetic_qwen

    return build_synthetic_qwen(tmp_path_factory.mktemp("tiny-qwen"), "tiny")[0]


@pytest.fixture(scope="session")
def datasets_two_tasks(tmp_path_factory) -> tuple[Path, Path]:
    """Rotation and jigsaw datasets of 6 rows each, built from the sample photos."""
    root = tmp_path_factory.mktemp("data")
    for task in ("rotation", "jigsaw"):
        assert main(["build", task, "--limit", "6", "--out", str(root / task), "-q"]) == 0
    return root / "rotation", root / "jigsaw"
