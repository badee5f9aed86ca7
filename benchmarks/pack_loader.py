"""The tagging loader reading clip files versus clip packs (HDF5 and WebDataset tar shards).

A synthetic AudioSet-layout set (10 s clips at 44.1 kHz, as WAV and as FLAC) is read through
``AudioSetDataModule``'s training loader (balanced sampling: random access, batch 12, resampled to
32 kHz for HTS-AT) for one epoch, from the files and from packs of the same clips. "cold" evicts the
files from the page cache before the epoch (``posix_fadvise(DONTNEED)``), so the storage is read
again; "warm" reads them a second time from memory.

Run: python3 -m uv run --frozen python benchmarks/pack_loader.py [--clips 200 --workers 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import soundfile as sf

from sonolab.data.pack import pack_clips
from sonolab.data.synth.audioset import AudioSetSynthConfig, generate_audioset
from sonolab.data.tagging import AudioSetDataModule


def evict(folder: Path) -> None:
    """Drop ``folder``'s files from the page cache (clean pages only: no privileges needed)."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def size_mb(folder: Path, pattern: str = "*") -> float:
    """Megabytes of the files under ``folder`` matching ``pattern``."""
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file()) / 1e6


def epoch_rate(datamodule: AudioSetDataModule, evict_first: list[Path]) -> float:
    """Clips per second over one training epoch of the loader."""
    for folder in evict_first:
        evict(folder)
    loader = datamodule.train_dataloader()
    start = time.perf_counter()
    clips = sum(len(batch["wave"]) for batch in loader)
    return clips / (time.perf_counter() - start)


def main() -> None:
    """Build the set, its FLAC copy and the two packs; print one table row per source."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=200, help="training clips (10 s each)")
    parser.add_argument("--workers", type=int, default=0, help="loader processes")
    parser.add_argument(
        "--dir", default=None, help="working folder (default: a temporary one, removed after)"
    )
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="sonolab-pack-bench-"))
    root = work / "audioset"
    generate_audioset(
        root, AudioSetSynthConfig(train_clips=args.clips, eval_clips=10, sample_rate=44100)
    )
    flac = work / "audioset_flac"
    if not flac.exists():
        shutil.copytree(root, flac, ignore=shutil.ignore_patterns("*.wav"))
        for wav in (root / "audio").glob("*.wav"):
            data, rate = sf.read(wav, dtype="int16")
            sf.write(flac / "audio" / (wav.stem + ".flac"), data, rate, subtype="PCM_16")
    common = dict(
        sample_rate=32000,
        clip_seconds=10.0,
        batch_size=12,
        num_workers=args.workers,
        verify_audio=False,
    )
    sources = {
        "WAV files": (AudioSetDataModule(root=str(root), **common), [root / "audio"]),
        "FLAC files": (
            AudioSetDataModule(root=str(flac), audio_pattern="{ytid}.flac", **common),
            [flac / "audio"],
        ),
    }
    print(
        f"| source | size on disk | pack written in | clips/s cold | clips/s warm |  ({args.clips} "
        "clips, "
        f"{args.workers} workers)"
    )
    print("|---|---|---|---|---|")
    for fmt in ("hdf5", "tar"):
        out = work / f"pack_{fmt}"
        existed = out.exists()
        start = time.perf_counter()
        pack_clips(
            AudioSetDataModule(root=str(root), **common),
            out,
            fmt,
            shard_clips=100,
            num_workers=args.workers,
        )
        written = "reused" if existed else f"{time.perf_counter() - start:.1f} s"
        sources[f"pack, {fmt}"] = (
            AudioSetDataModule(root=str(root), packed=str(out), **common),
            [out],
            written,
        )
    for name, (datamodule, folders, *written) in sources.items():
        datamodule.setup()
        cold = epoch_rate(datamodule, folders)
        warm = epoch_rate(datamodule, [])
        pattern = "*.flac" if "FLAC" in name else "*.wav" if "WAV" in name else "shard-*"
        took = written[0] if written else "-"
        print(
            f"| {name} | {size_mb(folders[0], pattern):.0f} MB | {took} | {cold:.1f} | {warm:.1f} |"
        )
    if args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
