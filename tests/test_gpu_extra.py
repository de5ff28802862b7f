"""The `gpu` extra (vllm, deepspeed) stays installable together with constraints.txt and the `train` extra.

No network: the pins are checked against the combination pip's resolver proved and against the requirements
the GPU packages declare, recorded from the resolver's report. Proved on 2026-11-30 (pip 26.3, Python 3.11) with

    pip install --dry-run --ignore-installed --report report.json -c constraints.txt \
        "torch==2.13.0" -e ".[train,dev,gpu]"

which resolved vllm 0.30.0, deepspeed 0.19.8, numpy 2.3.5, torch 2.13.0, transformers 5.23.0, trl 1.16.0
(214 packages; with numpy 2.4.6 it fails: mistral-common needs numpy<2.4 on Python <= 3.12). vllm 0.31.0 needs
transformers<5.18, 0.32.0 <5.20 and 0.33.0 torch 2.14.0, so 0.30.0 is the only release for this stack.
Moving any pin below means running that command again and updating PROVEN / DECLARED.
"""

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]

PROVEN = {
    "vllm": "0.30.0",
    "deepspeed": "0.19.8",
    "numpy": "2.3.5",
    "torch": "2.13.0",
    "transformers": "5.23.0",
    "trl": "1.16.0",
    "accelerate": "1.15.0",
    "peft": "0.21.2",
}

# Requirements on packages that constraints.txt pins, as vllm 0.30.0, deepspeed 0.19.8 and their dependencies
# declare them (metadata in the resolver's report; markers evaluated for Linux, Python 3.11).
DECLARED = [
    "torch==2.13.0",  # vllm (exact), torchvision 0.28.0
    "transformers>=5.10.4",
    "huggingface-hub>=1.31.0",
    "tokenizers>=0.21.1",
    "opencv-python-headless>=4.13.0",
    "pydantic>=2.12.0",
    "safetensors>=0.6.2",
    "filelock>=3.16.1",
    "typing-extensions>=4.14,<5",  # vllm, openai
    "numpy>=1.25,<2.4",  # mistral-common on Python <= 3.12; numba: <2.5
    "pillow>=10.3.0",
    "pydantic<3.0",  # mistral-common
    "packaging>=24.2",  # flashinfer-python
    "anyio>=4.10.0,<5",
    "httpx2>=2.12.0,<3",
    "click>=8.1.7",
    "rich>=13.7.1",
    "typer>=0.26.1",
    "h11>=0.16",
    "typing-inspection>=0.4.2",
    "annotated-doc>=0.0.2",
    "idna>=2.5,<4",
    "tqdm>=4.62.3",
]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
            assert match, f"constraints.txt: not an exact pin: {line!r}"
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def exact_pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for text in requirements:
        requirement = Requirement(text)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not an exact pin: {text}"
        pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


def test_gpu_extra_pins_exactly_the_proven_vllm_and_deepspeed():
    gpu = exact_pins(pyproject()["project"]["optional-dependencies"]["gpu"])
    assert gpu == {"vllm": PROVEN["vllm"], "deepspeed": PROVEN["deepspeed"]}


def test_constraints_and_train_extra_are_the_proven_combination():
    pins, train = constraints(), exact_pins(pyproject()["project"]["optional-dependencies"]["train"])
    for name, version in train.items():
        assert pins.get(name) == version, f"train extra pins {name}=={version}, constraints.txt {pins.get(name)}"
    for name in ("numpy", "torch", "transformers", "trl", "accelerate", "peft"):
        assert pins[name] == PROVEN[name], f"{name}: constraints.txt {pins[name]}, proven with {PROVEN[name]}"
    assert Version(pins["numpy"]) < Version("2.4")  # mistral-common (vllm) on Python <= 3.12


def test_constraints_satisfy_what_the_gpu_packages_declare():
    pins = constraints()
    for text in DECLARED:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is no longer pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}; the gpu extra needs {requirement.specifier}"
        )
