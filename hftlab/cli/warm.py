"""`python -m hftlab.cli.warm`: compile hftlab's numba kernels ahead (make setup
runs it), so the first run on a machine does not wait for numba; prints one line."""
from __future__ import annotations

import sys


def main() -> int:
    from hftlab.experiment.warm import compile_all

    summary = compile_all()
    print(summary.line())
    if summary.untouched and not summary.loaded:
        print("warm: kernels no warm-up input reaches: " + ", ".join(summary.untouched), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
