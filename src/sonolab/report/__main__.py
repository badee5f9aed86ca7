"""``python -m sonolab.report <sweep or run folders, or globs>``: the ablation table (see
ablation.py)."""

import sys

from .ablation import main

if __name__ == "__main__":
    sys.exit(main())
