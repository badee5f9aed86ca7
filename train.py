#!/usr/bin/env python
"""Train a model: `python train.py [experiment=NAME] [group=option ...] [key=value ...]`, the
checkout's alias of `sonolab train` (see `sonolab train --help`)."""

import sys

from sonolab.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
