"""Clip packs: a tagging dataset's clips decoded once, resampled, cut / padded to the clip length
and written into a few large shards, for training where opening and decoding many small files is the
bottleneck (AudioSet's two million clips on a network file system).

``python -m sonolab.data.pack <train.py overrides> --out DIR [--format tar|hdf5] [--shard-clips N]``
packs every clip that the configured tagging datamodule lists (train, val and test), and
``data.packed=DIR`` makes that datamodule read its clips from the pack instead of the audio files:
the listings, labels, splits and samplers stay those of the metadata, so balanced sampling and DDP
sharding are unchanged. Clips are keyed by their path relative to the data root, so a pack made on
one machine serves a copy of the metadata on another.

Two shard formats; ``benchmarks/pack_loader.py`` compares them on the tagging loader (README,
Benchmarks) and ``tar`` is the default: 20-60 % more clips per second than HDF5 under balanced
(random) sampling, the same size, and streamable by WebDataset pipelines as it is.

- ``tar``: ``shard-NNNNN.tar`` in WebDataset's layout (``<id>.npy`` int16 samples of the valid
  length and ``<id>.json`` with its key, length and rate); here a clip is one read at the byte
  offset the manifest records. The shards are written with the standard library's ``tarfile``:
  the ``webdataset`` package streams shards in order and has no reader by offset, which the
  map-style loaders (balanced sampler, DDP sampler) need.
- ``hdf5``: ``shard-NNNNN.h5`` with ``audio`` (int16, clips x samples, one chunk per clip),
  ``length`` (valid samples) and ``key``; a clip is one chunk read through h5py.

``pack.json`` (written last: a folder without it is not a pack) holds the parameters and, for
each key, its shard and position. Samples are stored as 16-bit PCM, clipped to [-1, 1): lossless
for 16-bit sources, quantised for float ones.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..cli import as_flags
from ..paths import config_dir
from ..stopping import run_stoppable
from ..utils.errors import ConfigValueError, DataFormatError, IncompatibleConfigError
from ..utils.extras import require
from ..utils.progress import progress
from .synth.staging import write_once

MANIFEST = "pack.json"
FORMATS = ("tar", "hdf5")
SCALE = 32768.0


def clip_key(path: Path, root: Path) -> str:
    """How a clip is named in a pack: its path relative to the data root (POSIX), else absolute."""
    path, root = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def to_pcm16(wave: torch.Tensor) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit PCM (out-of-range samples clipped)."""
    return np.clip(np.round(wave.numpy() * SCALE), -SCALE, SCALE - 1).astype(np.int16)


class _Hdf5Shard:
    """Writes one HDF5 shard: fixed-length rows, one chunk per clip."""

    suffix = ".h5"

    def __init__(self, path: Path, clips: int, samples: int, sample_rate: int):
        h5py = require("h5py", "hdf5", "HDF5 packs (format=hdf5)")
        self.file = h5py.File(path, "w")
        self.audio = self.file.create_dataset(
            "audio", (clips, samples), dtype="int16", chunks=(1, samples)
        )
        self.length = self.file.create_dataset("length", (clips,), dtype="int32")
        self.keys = self.file.create_dataset("key", (clips,), dtype=h5py.string_dtype())
        self.file.attrs["sample_rate"] = sample_rate
        self.row = 0

    def add(self, key: str, pcm: np.ndarray, length: int) -> list[int]:
        self.audio[self.row] = pcm
        self.length[self.row] = length
        self.keys[self.row] = key
        self.row += 1
        return [self.row - 1]

    def close(self) -> None:
        self.file.close()


class _TarShard:
    """Writes one tar shard in WebDataset's layout (``<id>.npy`` + ``<id>.json`` per clip)."""

    suffix = ".tar"

    def __init__(self, path: Path, clips: int, samples: int, sample_rate: int):
        self.tar = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)
        self.sample_rate = sample_rate
        self.count = 0

    def _member(self, name: str, payload: bytes) -> int:
        """Adds a member; returns the byte offset of its data (its header's end)."""
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        start = self.tar.offset
        self.tar.addfile(info, io.BytesIO(payload))
        return start + len(info.tobuf(tarfile.USTAR_FORMAT, self.tar.encoding, self.tar.errors))

    def add(self, key: str, pcm: np.ndarray, length: int) -> list[int]:
        name = f"{self.count:08d}"  # WebDataset groups members by the name before the first dot
        self.count += 1
        buffer = io.BytesIO()
        np.save(buffer, pcm[:length], allow_pickle=False)
        payload = buffer.getvalue()
        offset = self._member(f"{name}.npy", payload)
        self._member(
            f"{name}.json",
            json.dumps({"key": key, "length": length, "sample_rate": self.sample_rate}).encode(),
        )
        return [offset, len(payload)]

    def close(self) -> None:
        self.tar.close()


def _decoded(dataset, num_workers: int) -> Iterator[tuple[int, dict]]:
    """The dataset's items in order, decoded by ``num_workers`` loader processes."""
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers)
    yield from enumerate(loader)


def pack_clips(
    datamodule, out: str | Path, fmt: str = "tar", shard_clips: int = 1000, num_workers: int = 0
) -> dict:
    """Write every clip ``datamodule`` lists into shards under ``out`` (once: the same pack is
    reused, another refused); returns the manifest."""
    if fmt not in FORMATS:
        raise ConfigValueError("--format", " or ".join(FORMATS), fmt)
    if shard_clips < 1:
        raise ConfigValueError("--shard-clips", "at least 1", shard_clips)
    datamodule.setup()
    root = Path(datamodule.root)
    clips = {}
    for part in ("train", "val", "test"):
        for clip in datamodule.parts[part]:
            clips.setdefault(clip_key(clip.path, root), clip)
    keys = sorted(clips)
    parameters = {
        "format": fmt,
        "sample_rate": datamodule.sample_rate,
        "clip_seconds": datamodule.clip_seconds,
        "shard_clips": shard_clips,
        "dtype": "int16",
        "clips": len(keys),
        "keys_sha1": hashlib.sha1("\n".join(keys).encode("utf-8", "surrogateescape")).hexdigest(),
    }
    dataset = datamodule._dataset([clips[k] for k in keys])

    def write(folder: Path) -> dict:
        writer_class = _Hdf5Shard if fmt == "hdf5" else _TarShard
        shards: list[str] = []
        index: dict[str, list] = {}
        writer = None
        started = time.perf_counter()
        for position, item in progress(
            _decoded(dataset, num_workers), "packing", len(keys), "clip"
        ):
            if position % shard_clips == 0:
                if writer is not None:
                    writer.close()
                shards.append(f"shard-{len(shards):05d}{writer_class.suffix}")
                count = min(shard_clips, len(keys) - position)
                writer = writer_class(
                    folder / shards[-1], count, dataset.samples, datamodule.sample_rate
                )
            index[keys[position]] = [
                len(shards) - 1,
                *writer.add(keys[position], to_pcm16(item["wave"]), int(item["length"])),
            ]
        if writer is not None:
            writer.close()
        return {
            "source_root": str(root.absolute()),
            "samples": dataset.samples,
            "shards": shards,
            "parts": {part: len(datamodule.parts[part]) for part in ("train", "val", "test")},
            "seconds_to_write": round(time.perf_counter() - started, 1),
            "index": index,
        }

    return write_once(out, MANIFEST, parameters, "a clip pack", write)


class PackedClips:
    """Reads clips from a pack (``data.packed``): ``has(path)`` and ``wave(path)`` for a clip listed
    under ``root``; checks at opening that the pack was made at the datamodule's rate and clip
    length. Shard files are opened lazily in each process (loader workers included)."""

    def __init__(self, folder: str | Path, root: str | Path, sample_rate: int, clip_seconds: float):
        self.folder = Path(folder)
        self.root = Path(root)
        manifest = self.folder / MANIFEST
        if not manifest.is_file():
            raise DataFormatError(
                manifest,
                "a clip pack written by python -m sonolab.data.pack (data.packed)",
                found="no such file",
            )
        content = json.loads(manifest.read_text())
        params = content["parameters"]
        for name, want in (("sample_rate", sample_rate), ("clip_seconds", clip_seconds)):
            if float(params[name]) != float(want):
                raise DataFormatError(
                    manifest, f"clips packed with data.{name}={want}", found=params[name]
                )
        self.format = params["format"]
        self.shards = content["shards"]
        self.index = content["index"]
        self.samples = int(content["samples"])
        self._handles: dict[int, object] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {
            **self.__dict__,
            "_handles": {},
        }  # open files stay with the process that opened them

    def has(self, path: Path) -> bool:
        """Whether the clip at ``path`` is in the pack."""
        return clip_key(path, self.root) in self.index

    def _handle(self, shard: int):
        if os.getpid() != self._pid:  # a forked loader worker: its own handles
            self._handles, self._pid = {}, os.getpid()
        if shard not in self._handles:
            path = self.folder / self.shards[shard]
            if self.format == "hdf5":
                h5py = require("h5py", "hdf5", "reading an HDF5 pack")
                self._handles[shard] = h5py.File(path, "r")
            else:
                self._handles[shard] = os.open(path, os.O_RDONLY)
        return self._handles[shard]

    def wave(self, path: Path) -> torch.Tensor:
        """The clip's valid samples (float32 in [-1, 1))."""
        shard, *where = self.index[clip_key(path, self.root)]
        handle = self._handle(shard)
        try:
            if self.format == "hdf5":
                row = where[0]
                pcm = handle["audio"][row, : int(handle["length"][row])]
            else:
                offset, size = where
                payload = os.pread(handle, size, offset)
                if len(payload) != size:
                    raise EOFError(
                        f"{len(payload)} of its {size} bytes at offset {offset} (a truncated shard)"
                    )
                pcm = np.load(io.BytesIO(payload), allow_pickle=False)
        except (OSError, ValueError, KeyError, EOFError) as err:
            raise DataFormatError(
                self.folder / self.shards[shard],
                f"the packed clip {clip_key(path, self.root)}",
                found=f"{type(err).__name__}: {err}",
            ) from err
        return torch.from_numpy(pcm.astype(np.float32) / SCALE)


def main(argv: list[str] | None = None) -> int:
    """Pack a dataset's clips into shards: sonolab pack <overrides> --out DIR [--format ...]

    (also ``python -m sonolab.data.pack``; [--shard-clips] [--workers])."""
    from hydra import compose, initialize_config_dir

    from ..run import build_datamodule

    parser = argparse.ArgumentParser(
        prog="python -m sonolab.data.pack", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--out", required=True, help="the pack folder to write (refused if it holds something else)"
    )
    parser.add_argument(
        "--format", default="tar", choices=FORMATS, help="shard format (tar: WebDataset layout)"
    )
    parser.add_argument("--shard-clips", type=int, default=1000, help="clips per shard")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes")
    args, overrides = parser.parse_known_args(
        as_flags(parser, sys.argv[1:] if argv is None else argv)
    )
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    datamodule = build_datamodule(cfg)
    from .tagging import ClipDataModule  # the tagging datamodules read packs: import late

    if not isinstance(datamodule, ClipDataModule):
        raise IncompatibleConfigError(
            f"data={type(datamodule).__name__} is not a tagging datamodule: only "
            "tagging clips are packed"
        )
    datamodule.prepare_data()
    manifest = pack_clips(datamodule, args.out, args.format, args.shard_clips, args.workers)
    print(json.dumps({k: v for k, v in manifest.items() if k != "index"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_stoppable(main))
