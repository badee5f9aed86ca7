"""``python -m sonolab <command> ...``: the ``sonolab`` command where its script is not on PATH."""

import sys

from sonolab.cli import main

sys.exit(main())
