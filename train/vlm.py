"""Load Qwen2.5-VL / Qwen2-VL checkpoints and their processors, with or without torchvision.

The stock processors also build a video processor, which needs torchvision; without it they fail
to load. The fallback here builds the same processor without the video part (images only) and keeps
the standard class name, so a saved checkpoint still loads with stock transformers anywhere.
"""

import json
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoProcessor,
    AutoTokenizer,
    ProcessorMixin,
    Qwen2_5_VLProcessor,
    Qwen2VLProcessor,
)

PROCESSORS = {"qwen2_5_vl": Qwen2_5_VLProcessor, "qwen2_vl": Qwen2VLProcessor}


def image_only(processor_cls: type) -> type:
    """A subclass of `processor_cls` whose parts are the image processor and the tokenizer only."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", "<|image_pad|>")
        self.video_token = getattr(tokenizer, "video_token", "<|video_pad|>")
        self.image_token_id = getattr(tokenizer, "image_token_id", None) or tokenizer.convert_tokens_to_ids(
            self.image_token
        )
        self.video_token_id = getattr(tokenizer, "video_token_id", None) or tokenizer.convert_tokens_to_ids(
            self.video_token
        )
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    def to_dict(self):
        # Stock loaders (with torchvision) also expect a video processor: describe it by the image settings.
        output = processor_cls.to_dict(self)
        if "image_processor" in output and "video_processor" not in output:
            video = {k: v for k, v in output["image_processor"].items() if k != "image_processor_type"}
            output["video_processor"] = {**video, "video_processor_type": "Qwen2VLVideoProcessor"}
        return output

    # Same class name as the stock one: what it saves is an ordinary checkpoint.
    return type(
        processor_cls.__name__, (processor_cls,), {"__init__": __init__, "to_dict": to_dict, "__module__": __name__}
    )


def load_processor(path: str, revision: str | None = None, **image_kwargs):
    """The model's processor, padding on the left; image-only when the stock one cannot load (no torchvision).

    Left padding: batched generation needs it, and TRL's GRPO takes `mm_token_type_ids` from a
    processor call with the processor's padding while its prompt ids are left-padded. With right
    padding the image-token mask of every shorter prompt in a batch is shifted, so Qwen's 3-D
    positions are wrong, or, for prompts with different numbers of images, the step fails.
    `image_kwargs` (e.g. max_pixels) override the image processor's settings.
    """
    processor = _load(path, revision, **image_kwargs)
    processor.tokenizer.padding_side = "left"
    return processor


def _load(path: str, revision: str | None, **image_kwargs):
    try:
        processor = AutoProcessor.from_pretrained(path, revision=revision, **image_kwargs)
        if isinstance(processor, ProcessorMixin):
            return processor
    except (ImportError, OSError):  # the video processor needs torchvision (or a config it can read)
        pass
    model_type = AutoConfig.from_pretrained(path, revision=revision).model_type
    if model_type not in PROCESSORS:
        raise ValueError(
            f"{path}: no image-only fallback for model type {model_type!r} (supported: {', '.join(PROCESSORS)})"
        )
    tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
    try:
        image_processor = AutoImageProcessor.from_pretrained(path, revision=revision, backend="pil", **image_kwargs)
    except ImportError:  # transformers before 5.23 (5.17 on the GPU machine): the Auto class itself needs torchvision
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        image_processor = Qwen2VLImageProcessorPil.from_pretrained(path, revision=revision, **image_kwargs)
    return image_only(PROCESSORS[model_type])(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=_chat_template(path, tokenizer)
    )


def _chat_template(path: str, tokenizer) -> str | None:
    local = Path(path) / "chat_template.json"
    if local.is_file():
        return json.loads(local.read_text())["chat_template"]
    return tokenizer.chat_template
