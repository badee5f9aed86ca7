#!/usr/bin/env python
"""Evaluate a trained run: `python evaluate.py run_dir=logs/train/runs/<run id> [arg=value ...]`,
the checkout's alias of `sonolab eval` (see `sonolab eval --help`)."""

import sys

from sonolab.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
