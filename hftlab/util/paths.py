"""Where things are: the repository root (the package lives in an editable
checkout: kernel_src/, baselines/, datasets/ and runs/ sit beside it)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT"]

ROOT = Path(__file__).resolve().parents[2]
