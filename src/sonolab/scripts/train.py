"""`sonolab train` as a script (absolute imports only: Lightning runs this file by its path)."""

import sys

from sonolab.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
