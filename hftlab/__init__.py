"""hftlab: build, run and measure HFT-OS, a bare-metal x86_64 trading OS.

Import the modules you need (``hftlab.synth``, ``hftlab.core`` ...); this
package imports none of them itself, so ``import hftlab`` stays cheap.
"""

from hftlab.errors import (
    BuildError,
    ConfigError,
    DataError,
    HftlabError,
    RunError,
    ToolMissingError,
)

__version__ = "0.1.0"

__all__ = [
    "BuildError",
    "ConfigError",
    "DataError",
    "HftlabError",
    "RunError",
    "ToolMissingError",
    "__version__",
]
