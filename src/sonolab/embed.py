"""``sonolab embed`` (also ``python -m sonolab.embed``): speaker embeddings of audio files with a
trained verification run, written as npz or Kaldi ark / scp."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np

from .cli import key_values
from .inference.base import (
    COMMAND_OPTIONS,
    COMMAND_OPTIONS_HELP,
    command_inputs,
    command_model,
    report_counts,
)
from .inference.speaker import SpeakerVerifier
from .stopping import run_stoppable
from .utils.errors import ConfigValueError, DataFormatError
from .utils.extras import require

log = logging.getLogger(__name__)
FORMATS = ("npz", "ark")


def write_embeddings(out: Path, keys: list[str], embeddings: np.ndarray, fmt: str) -> list[Path]:
    """``embeddings.npz`` or Kaldi ``xvector.ark`` / ``xvector.scp`` under ``out``; returns the
    files written."""
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "npz":
        path = out / "embeddings.npz"
        tmp = out / ".embeddings.tmp.npz"
        np.savez(tmp, keys=np.array(keys), embeddings=embeddings)
        tmp.replace(path)
        return [path]
    kaldiio = require("kaldiio", "kaldi", "Kaldi ark / scp output (format=ark)")
    if any(any(c.isspace() for c in k) for k in keys):
        raise DataFormatError(
            out,
            "keys without spaces for Kaldi's ark / scp (file paths)",
            found=next(k for k in keys if any(c.isspace() for c in k)),
        )
    ark, scp = out / "xvector.ark", out / "xvector.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for key, vector in zip(keys, embeddings):
            writer(key, vector)
    return [ark, scp]


def command(argv: list[str]) -> int:
    """Speaker embeddings of audio files: sonolab embed <folder|list> run_dir=<run>

    The input is a folder (its audio files, searched recursively) or a text file with one path per
    line (relative to the list's folder); wavs=<folder|list> says the same. Keys are the paths
    relative to the folder (or as listed). Options (key=value):
      {common}
      out           where to write (default <run_dir>/embeddings/<checkpoint name>/)
      format        npz (embeddings.npz: keys, embeddings) | ark (Kaldi xvector.ark + .scp)
      max_seconds   embed only each file's first seconds (null: whole files)
      batch_size    files per batch (1: exactly the embeddings evaluation computes; more pads
                    the shorter files of a batch, files grouped by length)
    """
    inputs, args = key_values(
        argv,
        command,
        {
            **COMMAND_OPTIONS,
            "wavs": None,
            "out": None,
            "format": "npz",
            "max_seconds": None,
            "batch_size": "1",
        },
        positional="audio",
    )
    if args["format"] not in FORMATS:
        raise ConfigValueError("format", " or ".join(FORMATS), args["format"])
    verifier = command_model(args, SpeakerVerifier, "embed")
    root, files = command_inputs(inputs, args["wavs"], "embed")
    log.info("embedding %d files under %s on %s", len(files), root, verifier.device)
    kept, embeddings = verifier.embed_with_keys(
        list(files),
        int(args["batch_size"]),
        args["on_error"],
        None if args["max_seconds"] is None else float(args["max_seconds"]),
    )
    out = Path(args["out"] or verifier.run_dir / "embeddings" / verifier.checkpoint.stem)
    for path in write_embeddings(out, [files[k] for k in kept], embeddings, args["format"]):
        print(path)
    report_counts(verifier, len(kept), "embedded", "embed")
    return 0


command.__doc__ = command.__doc__.format(common=COMMAND_OPTIONS_HELP)


def main(argv: list[str] | None = None) -> int:
    """``python -m sonolab.embed``: :func:`command` over the process's arguments."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return command(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    os.environ.setdefault("SONOLAB_ROOT", str(Path.cwd()))
    sys.exit(run_stoppable(main))
