"""ftprep: validate, shard and upload fine-tuning datasets through Mistral's Files API.

>>> import ftprep
>>> report = ftprep.validate(["train.jsonl"])          # doctest: +SKIP
>>> report.ok                                           # doctest: +SKIP
True

The public names are loaded on first use, so ``import ftprep`` stays cheap for the
pre-commit hook and for workers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .errors import FtprepError
from .problems import FileReport, Problem, Report

# name -> module that defines it; each module is imported on first access.
_LAZY = {
    "validate": "ftprep.validator",
    "split": "ftprep.splitter",
    "SplitResult": "ftprep.splitter",
    "Shard": "ftprep.splitter",
    "FilesClient": "ftprep.client",
    "FileObject": "ftprep.client",
    "RetryPolicy": "ftprep.client",
    "Ledger": "ftprep.ledger",
    "push": "ftprep.pusher",
    "upload": "ftprep.pusher",
    "PushResult": "ftprep.pusher",
}

__all__ = [
    "FileObject",
    "FileReport",
    "FilesClient",
    "FtprepError",
    "Ledger",
    "Problem",
    "PushResult",
    "Report",
    "RetryPolicy",
    "Shard",
    "SplitResult",
    "__version__",
    "push",
    "split",
    "upload",
    "validate",
]

if TYPE_CHECKING:  # pragma: no cover
    from .client import FileObject, FilesClient, RetryPolicy
    from .ledger import Ledger
    from .pusher import PushResult, push, upload
    from .splitter import Shard, SplitResult, split
    from .validator import validate


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ftprep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
