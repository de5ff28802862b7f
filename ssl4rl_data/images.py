"""Decode -> upright RGB -> bounded size, and encode: the only pixel I/O the builders do.

Labels are computed on the pixels this module returns, and the outputs are re-encoded without EXIF,
so what a model sees is exactly what was labelled.
"""

import functools
import hashlib
import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from .errors import SkipImage

JPEG_QUALITY = 95
PNG_COMPRESS_LEVEL = 1
IMAGE_FORMATS = ("jpeg", "png")
BACKGROUND = (255, 255, 255)  # transparent pixels are composited onto white


def sample_rng(seed: int, task: str, source_id: str) -> np.random.Generator:
    """Randomness for one sample, from its stable key alone (never from worker or batch order).

    >>> int(sample_rng(0, "rotation", "a").integers(1000)) == int(sample_rng(0, "rotation", "a").integers(1000))
    True
    """
    digest = hashlib.blake2b(f"{seed}\0{task}\0{source_id}".encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def content_digest(data: bytes) -> str:
    """A short hash of the encoded bytes, used to deduplicate images and fingerprint sources (SHA-256,
    cut to 128 bits: it runs at twice the speed of BLAKE2 where the CPU has SHA instructions)."""
    return hashlib.sha256(data).hexdigest()[:32]


def decode(data: bytes, max_side: int = 0) -> Image.Image:
    """Decode `data` into an upright RGB image whose longer side is at most `max_side` (0: no limit).

    Raises SkipImage with a reason for anything that is not a usable image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if max_side and image.format == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers the target size.
                image.draft(None, _fit(image.size, max_side))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise SkipImage("too-large") from None
    except Image.UnidentifiedImageError:
        raise SkipImage("not-an-image") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise SkipImage("unreadable") from None
    try:
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of the (usual) upright image
    except Exception:  # a broken EXIF block: keep the stored orientation; labels follow these pixels
        pass
    image = to_rgb(image)
    if min(image.size) < 1:
        raise SkipImage("unreadable")
    if max_side and max(image.size) > max_side:
        image = downscale(image, _fit(image.size, max_side))
    return image


FAST_MAX_FACTOR = 2.0  # JPEG draft decoding leaves at most this much for the resize to do
FAST_MIN_SIDE = 16
LOWPASS_TAPS = 7
CUTOFF = 0.47  # the prefilter's cut-off, as a share of the output's sampling rate (0.5: its Nyquist)


def downscale(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` (RGB) shrunk to `size`, anti-aliased: the build's only resize.

    Up to 2x smaller (every JPEG, after `draft`, and the default 640x480 -> 448x336): a short windowed-sinc
    low-pass at the output's Nyquist, then bicubic sampling, in OpenCV on a zero-copy view of Pillow's
    pixels: 0.8 CPU ms for 640x480 -> 448x336, where Pillow's Lanczos takes 3.3 ms. Against that Lanczos
    it gives 52.5 dB PSNR on average and 48 dB at the worst of 200 benchmark photos at the default (41 dB
    or more on the sharper sample photos at every factor up to 2x), and it lets less of a zone plate's
    unrepresentable rings alias back than Lanczos does (0.10 of their RMS against 0.15 at 448)
    (tests/test_performance_bounds.py holds both bounds). Larger factors and tiny pictures go to Lanczos.
    """
    ratio = max(image.width / size[0], image.height / size[1])
    if ratio > FAST_MAX_FACTOR or min(*image.size, *size) < FAST_MIN_SIDE or image.mode != "RGB":
        return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    from .augment import rgbx_pixels

    cv2 = _opencv()
    pixels = rgbx_pixels(image)  # R, G, B, pad: four channels filter as fast as three, and need no copy
    smooth = cv2.sepFilter2D(
        pixels, -1, _lowpass(image.width, size[0]), _lowpass(image.height, size[1]), borderType=cv2.BORDER_REFLECT
    )
    sampled = cv2.resize(smooth, size, interpolation=cv2.INTER_CUBIC)
    return Image.frombytes("RGB", size, sampled, "raw", "RGBX")


@functools.lru_cache(maxsize=256)
def _lowpass(source: int, target: int) -> np.ndarray:
    """A 7-tap Lanczos-windowed sinc with its cut-off at CUTOFF of the output's sampling rate, summing to
    1 (5 taps: 1-2 dB less against Lanczos and more aliasing below 0.65x; 9: no better)."""
    cutoff = CUTOFF * target / source  # cycles per source pixel
    taps = LOWPASS_TAPS
    offsets = np.arange(taps) - (taps - 1) / 2
    kernel = 2 * cutoff * np.sinc(2 * cutoff * offsets) * np.sinc(offsets / ((taps + 1) / 2))
    return (kernel / kernel.sum()).astype(np.float32)


@functools.cache
def _opencv():
    """OpenCV, held to one thread (builds run a process per core), imported on the first resize only."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB: 16-bit and float scaled, alpha composited onto white, CMYK converted.

    >>> to_rgb(Image.new("I;16", (2, 2), 65535)).getpixel((0, 0))
    (255, 255, 255)
    >>> to_rgb(Image.new("LA", (2, 2), (0, 0))).getpixel((0, 0))
    (255, 255, 255)
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image).astype(np.int64)
        if values.max(initial=0) > 255:
            values = values >> 8  # 16-bit samples
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if values.max(initial=0.0) <= 1.0:
            values = values * 255.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        canvas = Image.new("RGB", image.size, BACKGROUND)
        canvas.paste(image, mask=image.getchannel("A"))
        return canvas
    return image.convert("RGB")


def encode(image: Image.Image, image_format: str) -> bytes:
    """Encode once, ourselves: JPEG q95 (about 60x faster than the `datasets` PNG default) or fast PNG.

    JPEG uses q95's tables made symmetric (see `symmetric_jpeg_tables`), so a picture and its
    quarter-turn encode to the same size."""
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.save(buffer, format="JPEG", qtables=symmetric_jpeg_tables())
    elif image_format == "png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        raise ValueError(f"unknown image format {image_format!r}")
    return buffer.getvalue()


@functools.cache
def symmetric_jpeg_tables() -> list[list[int]]:
    """libjpeg's quality-95 quantisation tables, each made symmetric under transposition (the finer of
    the two steps at (u, v) and (v, u)).

    The standard luminance table quantises horizontal and vertical frequencies differently, so a picture
    turned a quarter encodes smaller than the same picture upright (by 1.9% on 480 photo crops): the byte
    length of a rotation row's second view told 90/270 from 0/180 (AUC 0.98 from the size ratio of the two
    views). Symmetric tables quantise a picture and its transpose alike.

    >>> tables = symmetric_jpeg_tables()
    >>> [len(t) for t in tables], all(t[8 * u + v] == t[8 * v + u] for t in tables for u in range(8) for v in range(8))
    ([64, 64], True)
    """
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    tables = Image.open(buffer).quantization
    return [
        np.minimum(*(lambda t: (t, t.T))(np.array(tables[k]).reshape(8, 8))).flatten().tolist() for k in sorted(tables)
    ]


def crop(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """`image.crop(box)`, without Pillow's full copy when the box is the whole image."""
    return image if box == (0, 0, *image.size) else image.crop(box)


def aligned_crop_box(size: tuple[int, int], width: int, height: int, align: int = 16) -> tuple[int, int, int, int]:
    """A centred `width` x `height` box whose corner sits on the `align` grid.

    JPEG codes 8x8 (16x16 with chroma subsampling) blocks; cutting on that grid keeps block seams in
    the same phase in every piece, so they cannot reveal where a piece came from.

    >>> aligned_crop_box((100, 60), 64, 48)
    (16, 0, 80, 48)
    """
    left = (size[0] - width) // 2 // align * align
    top = (size[1] - height) // 2 // align * align
    return left, top, left + width, top + height
