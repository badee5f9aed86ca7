"""Speaker embeddings of audio files with a trained verification run:

``python -m sonolab.embed run_dir=logs/train/runs/<time> wavs=<folder or list file> [out=DIR]
[format=npz|ark] [ckpt_path=best|last|<file>] [max_seconds=null] [device=auto]``

``wavs`` is a folder (searched recursively for audio files) or a text file with one path per line
(relative paths are under the list's folder). Each file is embedded whole (or its first
``max_seconds``) by the run's front-end and model, as evaluation embeds trial utterances. Keys are
the paths relative to the folder (or as listed). Written to ``out`` (default
``<run_dir>/embeddings/<checkpoint name>/``): ``embeddings.npz`` (``keys``, ``embeddings``) or, with
``format=ark``, Kaldi's ``xvector.ark`` + ``xvector.scp`` (float32 vectors; read with kaldiio or
Kaldi).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from .checkpoints import checkpoint_for_run
from .data.audio import AUDIO_EXTENSIONS
from .data.verification import EvalUtterances, collate_padded
from .inference.embedding import load_verification_task
from .stopping import run_stoppable
from .utils.errors import ConfigValueError, DataFormatError

log = logging.getLogger(__name__)
FORMATS = ("npz", "ark")


def parse_arguments(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments (as train.py / evaluate.py take them) as a dict."""
    args = {}
    for token in argv:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise ConfigValueError("arguments", "key=value pairs (run_dir=..., wavs=...)", token)
        args[key] = value
    return args


def list_audio(wavs: Path) -> tuple[Path, list[str]]:
    """The folder the keys are relative to and the keys: the audio files under a folder, or a list's
    lines."""
    if wavs.is_dir():
        files = sorted(
            p.relative_to(wavs).as_posix()
            for p in wavs.rglob("*")
            if p.is_file()
            and p.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(wavs).parts)
        )
        if not files:
            raise DataFormatError(
                wavs, f"audio files ({', '.join(AUDIO_EXTENSIONS)}) in the folder", found="none"
            )
        return wavs, files
    if not wavs.is_file():
        raise DataFormatError(
            wavs, "a folder of audio files or a list file (wavs=)", found="no such file or folder"
        )
    lines = [
        (n, line.strip()) for n, line in enumerate(wavs.read_text().splitlines(), 1) if line.strip()
    ]
    for n, line in lines:
        if not (wavs.parent / line).is_file():
            raise DataFormatError(
                wavs, f"an existing audio file on every line (line {n})", found=line
            )
    if not lines:
        raise DataFormatError(wavs, "one audio path per line", found="an empty list")
    return wavs.parent, [line for _, line in lines]


def embed_files(
    task,
    root: Path,
    keys: list[str],
    sample_rate: int,
    max_seconds: float | None,
    device: torch.device,
    num_workers: int = 0,
) -> np.ndarray:
    """Embeddings ``(len(keys), dim)`` of the files, one at a time at full length (no padding)."""
    dataset = EvalUtterances("embed", root, keys, sample_rate, True, max_seconds, None)
    loader = DataLoader(
        dataset, batch_size=1, shuffle=False, num_workers=num_workers, collate_fn=collate_padded
    )
    task.to(device).eval()
    out = np.zeros((len(keys), task.model.embedding_dim), dtype=np.float32)
    with torch.inference_mode():
        for batch in loader:
            emb = task.embed(batch["wave"].to(device), batch["length"].to(device))
            out[batch["index"].numpy()] = emb.float().cpu().numpy()
    return out


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
    import kaldiio

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


def main(argv: list[str] | None = None) -> int:
    """Embed the files and write them; prints where."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    for key in ("run_dir", "wavs"):
        if key not in args:
            raise ConfigValueError(
                key, "given (python -m sonolab.embed run_dir=<run> wavs=<folder or list>)", None
            )
    fmt = args.get("format", "npz")
    if fmt not in FORMATS:
        raise ConfigValueError("format", " or ".join(FORMATS), fmt)
    run_dir = Path(args["run_dir"])
    ckpt_path, reason = checkpoint_for_run(run_dir, args.get("ckpt_path"))
    log.info("checkpoint %s (%s)", ckpt_path, reason)
    task = load_verification_task(run_dir, str(ckpt_path))  # resolved once, here
    device = args.get("device", "auto")
    device = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else "cpu"
        if device == "auto"
        else device
    )
    root, keys = list_audio(Path(args["wavs"]))
    max_seconds = (
        None
        if args.get("max_seconds", "null") in ("null", "None", "")
        else float(args["max_seconds"])
    )
    log.info("embedding %d files under %s on %s", len(keys), root, device)
    embeddings = embed_files(
        task,
        root,
        keys,
        int(task.data_info.sample_rate),
        max_seconds,
        device,
        int(args.get("num_workers", 0)),
    )
    out = Path(args.get("out") or run_dir / "embeddings" / ckpt_path.stem)
    for path in write_embeddings(out, keys, embeddings, fmt):
        print(path)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SONOLAB_ROOT", str(Path.cwd()))
    sys.exit(run_stoppable(main))
