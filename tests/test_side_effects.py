"""The process-wide tricks builds rely on: confined to the processes that build, and still working.

The library-facing tests run in a fresh interpreter, so they see what a library upgrade would change.
"""

import subprocess
import sys
import textwrap


def python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_only_the_cli_and_workers_change_the_allocator_and_glibc_takes_the_settings(tmp_path, monkeypatch, run_cli):
    from ssl4rl_data import build as build_module
    from ssl4rl_data import cli, workers
    from ssl4rl_data.registry import get_task
    from ssl4rl_data.source import parse_source

    assert workers.keep_freed_memory()  # glibc accepted both settings
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("cli"))
    task = get_task("rotation")(get_task("rotation").Config())
    build_module.build(
        task,
        [parse_source("sample")],
        build_module.BuildOptions(limit=2),
        tmp_path / "a",
        num_proc=1,
        overwrite=False,
        progress=False,
        write_card=lambda folder, result: None,
    )
    assert calls == []  # a library caller's process is left as it was
    assert run_cli("build", "rotation", "--limit", "2", "--out", tmp_path / "b", "-q")[0] == 0
    assert calls == ["cli"]


def test_albumentations_imports_without_torch_and_opencv_keeps_one_thread():
    out = python("""
        import sys
        from ssl4rl_data.augment import albumentations
        A = albumentations()
        import cv2
        A.Compose([A.HorizontalFlip(p=1.0)])
        print("torch" in sys.modules, cv2.getNumThreads(), A.__version__)
    """)
    torch_imported, threads, _ = out.split()
    assert torch_imported == "False" and threads == "1"


def test_rgbx_pixels_is_a_view_of_pillows_memory_through_pyarrow():
    out = python("""
        import numpy as np
        from PIL import Image
        from ssl4rl_data.augment import rgbx_pixels
        view = rgbx_pixels(Image.new("RGB", (64, 48), (1, 2, 3)))
        base = view
        while isinstance(base, np.ndarray):
            base = base.base
        print(type(base).__module__, view.flags.writeable, view[47, 63, :3].tolist())
    """)
    module, writeable, pixel = out.split(" ", 2)
    assert module.startswith("pyarrow") and writeable == "False"  # the zero-copy path, not the fallback copy
    assert pixel == "[1, 2, 3]"
