"""Audio tagging data: ESC-50 (and its ESC-10 subset) with the official fold protocol, and AudioSet
(segment CSVs or AST-style JSON datafiles, multi-label, balanced sampling).

Clips are read with the shared loader (any soundfile format, resampled to the front-end's rate,
channels averaged) and cut or zero-padded to ``clip_seconds``. One fold is the test fold; the
validation fold, when given, is carved from the four training folds (never the test fold), so
checkpoint selection never sees test clips. A metadata row whose audio file is missing is counted
and reported (``skipped`` in metrics.json), or with ``require_all_audio`` an error naming the files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..utils.errors import (
    ConfigValueError,
    DataFormatError,
    check_settings,
)
from ..utils.io import content_key, under_root
from .audio import load_audio
from .base import SETTING_RULES as COMMON_SETTING_RULES
from .base import AudioDataModule
from .info import DataInfo
from .pack import PackedClips
from .readers.audioset import read_class_labels, read_json_datafile, read_segments
from .readers.esc50 import read_esc50_meta
from .samplers import Draw, EpochSeededSampler, ShuffleSampler, draw_rng, start_at_epoch
from .skips import SkipLog
from .verify import cache_file, screen_audio

log = logging.getLogger(__name__)

# how a clip shorter than clip_seconds is filled: silence after it, or the clip again (HTS-AT's
# ESC-50 recipe plays each 5 s clip twice to fill its 10 s input)
PAD_MODES = ("zero", "repeat")

SETTING_RULES = {  # data.<key>: what the datamodules accept
    **COMMON_SETTING_RULES,
    "test_fold": (lambda v: 1 <= v <= 5, "a fold 1..5"),
    "clip_seconds": (lambda v: v > 0, "a positive number of seconds"),
    "pad_mode": (lambda v: v in PAD_MODES, " or ".join(PAD_MODES)),
}


@dataclass(frozen=True)
class TaggedClip:
    """One clip: its audio file and its class index (after any re-indexing), or its class indices
    (multi-label)."""

    path: Path
    label: int | tuple[int, ...]


def fill_clip(wave: torch.Tensor, samples: int, pad_mode: str = "zero") -> tuple[torch.Tensor, int]:
    """``wave`` cut or filled to ``samples``: zeros after it (``zero``; the valid length is the
    audio's), or the clip repeated until full (``repeat``; all of it valid). An empty clip is
    zero-filled either way."""
    wave = wave[:samples]
    if pad_mode == "repeat" and 0 < wave.numel() < samples:
        copies = -(-samples // wave.numel())
        return wave.repeat(copies)[:samples], samples
    padded = torch.zeros(samples)
    padded[: wave.numel()] = wave
    return padded, wave.numel()


class ClipDataset(Dataset):
    """Fixed-length clips with their labels; clips are cut at ``clip_seconds`` or filled to it
    (``pad_mode``: zero-padded, the valid length kept so the front-end knows where the audio ends;
    or repeated). With ``num_classes``
    the labels are multi-hot vectors (multi-label data). With ``cache`` each decoded, resampled clip
    is kept in memory after its first read (per loading process). With ``partners`` every item also
    carries a clip drawn at random from the whole set (``partner_wave`` / ``partner_length`` /
    ``partner_label``: mixup partners from the dataset, as AST draws them), drawn from the generator
    of the training sampler's :class:`Draw` (seeded by ``seed``), or the loading process's for a
    plain index. With ``pack`` the clips are read from a clip pack instead of their files."""

    def __init__(
        self,
        clips: list[TaggedClip],
        sample_rate: int,
        clip_seconds: float,
        num_classes: int | None = None,
        cache: bool = False,
        partners: bool = False,
        pack: PackedClips | None = None,
        seed: int = 0,
        pad_mode: str = "zero",
    ):
        self.clips = clips
        self.pad_mode = pad_mode
        self.sample_rate = sample_rate
        self.samples = int(round(clip_seconds * sample_rate))
        self.num_classes = num_classes
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None
        self.partners = partners
        self.pack = pack
        self.seed = seed

    def _wave(self, index: int) -> torch.Tensor:
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        path = self.clips[index].path
        wave = (
            self.pack.wave(path) if self.pack is not None else load_audio(path, self.sample_rate)
        )[: self.samples]
        if self.cache is not None:
            self.cache[index] = wave
        return wave

    def __len__(self) -> int:
        return len(self.clips)

    def _item(self, index: int) -> dict:
        clip = self.clips[index]
        padded, length = fill_clip(self._wave(index), self.samples, self.pad_mode)
        label = clip.label
        if self.num_classes is not None:
            label = torch.zeros(self.num_classes)
            label[list(clip.label)] = 1.0
        return {"wave": padded, "length": length, "label": label, "index": index}

    def __getitem__(self, key: int | Draw) -> dict:
        index, rng = draw_rng(key, self.seed)
        item = self._item(index)
        if self.partners:
            other = (
                int(rng.integers(len(self.clips)))
                if rng is not None
                else int(torch.randint(len(self.clips), ()))
            )
            partner = self._item(other)
            item.update({f"partner_{k}": partner[k] for k in ("wave", "length", "label")})
        return item


def collate_clips(items: list[dict]) -> dict:
    """Stack equal-length clips, their valid lengths, labels and dataset positions (and mixup
    partners)."""

    def stack(key: str) -> torch.Tensor:
        values = [it[key] for it in items]
        return torch.stack(values) if isinstance(values[0], torch.Tensor) else torch.tensor(values)

    return {key: stack(key) for key in items[0]}


def readable_clips(
    clips: list[TaggedClip],
    listing: Path,
    cache_root: Path,
    sample_rate: int,
    require_all: bool,
    verify: bool,
    on_bad_audio: str,
    skips: SkipLog,
    label: str,
    pack: PackedClips | None = None,
) -> list[bool]:
    """Which ``clips`` (listed in ``listing``) can be used: a clip without its audio file (or, with
    ``pack``, not in the pack) is counted in ``skips`` (or, with ``require_all``, an error naming
    them); with ``verify`` the audio files are pre-scanned (cached) and a bad one is an error
    listing all, or (``on_bad_audio=skip``) counted. Packed clips were decoded when the pack was
    written."""
    available = pack.has if pack is not None else (lambda path: path.is_file())
    where = f"the pack {pack.folder}" if pack is not None else "its audio file"
    missing = [c for c in clips if not available(c.path)]
    if missing and require_all:
        holder = (
            f"in the pack {pack.folder}" if pack is not None else f"in {missing[0].path.parent}"
        )
        raise DataFormatError(
            listing,
            f"the audio of every clip it lists {holder}",
            found=f"{len(missing)} missing",
            details=[c.path.name for c in missing[:10]] + (["..."] if len(missing) > 10 else []),
        )
    for clip in missing:
        skips.add(f"clip listed in the metadata without {where}", str(clip.path))
    present = [c for c in clips if available(c.path)]
    problems: dict[str, str] = {}
    if verify and present and pack is None:
        problems = screen_audio(
            [c.path for c in present],
            listing,
            f"clips the loader can read ({len(present)} checked)",
            on_bad_audio,
            sample_rate,
            cache_root=cache_root,
            label=label,
        )
        for path in problems:
            skips.add("unreadable clip left out (data.on_bad_audio=skip)", path)
    return [available(c.path) and str(c.path.absolute()) not in problems for c in clips]


@dataclass(frozen=True)
class ClassesDataInfo(DataInfo):
    """What a clip classifier needs: its classes, their names and whether a clip has several."""

    num_classes: int
    labels: list[str]
    multi_label: bool


class ClipDataModule(AudioDataModule):
    """What the tagging datamodules share: the split into ``self.parts`` (train / val / test clip
    lists, made once by the subclass's ``_read``), ``info``, the loaders and the statistics
    clips, and these settings.

    Args:
        root: dataset folder.
        sample_rate: the front-end's rate (clips at other rates are resampled).
        clip_seconds: clips are cut or filled to this length.
        pad_mode: a shorter clip is followed by silence (``zero``) or repeated (``repeat``).
        batch_size / num_workers / pin_memory: the loaders' (batch per device).
        require_all_audio: a listed clip without its audio file is an error (else counted and left
            out).
        verify_audio / on_bad_audio: pre-scan every clip at start-up (cached); a bad one is an error
            or skipped.
        synth: fields of the subclass's synthetic-set config; when given, the synthetic dataset is
            generated into ``root`` first.
        seed: the training samplers' seed.
        cache_audio: keep decoded, resampled clips in memory across epochs (small sets such as
            ESC-50; each loading process holds its share).
        packed: a clip pack (``python -m sonolab.data.pack``) to read the clips from instead of
            their audio files; the metadata still lists them.
    """

    multi_label = False
    no_augment_reason = (
        "its augmentations are the task's (task.spec_augment, task.mixup, task.shift_gain)"
    )

    def __init__(
        self,
        root: str,
        sample_rate: int = 16000,
        clip_seconds: float = 5.0,
        batch_size: int = 16,
        num_workers: int = 2,
        require_all_audio: bool = False,
        verify_audio: bool = True,
        on_bad_audio: str = "error",
        synth: dict | None = None,
        pin_memory: bool = False,
        seed: int = 0,
        cache_audio: bool = False,
        packed: str | None = None,
        pad_mode: str = "zero",
    ):
        super().__init__()
        check_settings(
            "data",
            SETTING_RULES,
            pad_mode=pad_mode,
            clip_seconds=clip_seconds,
            batch_size=batch_size,
            on_bad_audio=on_bad_audio,
        )
        self.root = Path(root)
        self.packed = packed
        self.pack: PackedClips | None = None
        self.cache_audio = cache_audio
        # set by a task whose mixup draws partners from the whole training set
        self.mixup_partners = False
        self._datasets: dict[str, ClipDataset] = {}
        self.sample_rate = sample_rate
        self.clip_seconds = clip_seconds
        self.pad_mode = pad_mode
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self.require_all_audio = require_all_audio
        self.verify_audio = verify_audio
        self.on_bad_audio = on_bad_audio
        self.synth = dict(synth) if synth else None
        self.class_names: list[str] = []
        self.parts: dict[str, list[TaggedClip]] | None = None

    def _read(self) -> dict[str, list[TaggedClip]]:
        raise NotImplementedError

    def _readable(self, clips: list[TaggedClip], listing: Path, label: str) -> list[bool]:
        """Which of ``clips`` (listed in ``listing``) can be used, by :func:`readable_clips` under
        this datamodule's settings."""
        return readable_clips(
            clips,
            listing,
            self.root,
            self.sample_rate,
            self.require_all_audio,
            self.verify_audio,
            self.on_bad_audio,
            self.skipped,
            label,
            self.pack,
        )

    def _readable_clips(
        self, clips: list[TaggedClip], listing: Path, label: str
    ) -> list[TaggedClip]:
        """The clips of ``clips`` that :meth:`_readable` keeps."""
        return [c for c, keep in zip(clips, self._readable(clips, listing, label)) if keep]

    def setup(self, stage: str | None = None) -> None:
        """Read the metadata and split it (once)."""
        if self.parts is None:
            if self.packed is not None:
                self.pack = PackedClips(self.packed, self.root, self.sample_rate, self.clip_seconds)
            self.parts = self._read()

    @property
    def info(self) -> ClassesDataInfo:
        """What the task needs: classes, their names, single or multi-label, and the sample rate."""
        self.setup()
        return ClassesDataInfo(
            sample_rate=self.sample_rate,
            num_classes=len(self.class_names),
            labels=list(self.class_names),
            multi_label=self.multi_label,
        )

    def _dataset(self, clips: list[TaggedClip], partners: bool = False) -> ClipDataset:
        return ClipDataset(
            clips,
            self.sample_rate,
            self.clip_seconds,
            len(self.class_names) if self.multi_label else None,
            cache=self.cache_audio,
            partners=partners,
            pack=self.pack,
            seed=self.seed,
            pad_mode=self.pad_mode,
        )

    def statistics_clips(self, count: int) -> Dataset:
        """The first ``count`` training clips in listing order: the same on every process, for the
        front-end's normalisation statistics."""
        self.setup()
        return self._dataset(self.parts["train"][:count])

    def statistics_file(self, frontend: dict, count: int) -> Path:
        """Where the front-end statistics (``frontend``: its settings) of the first ``count``
        training clips are kept: beside the data (``<root>/.sonolab/``, or the user cache when it is
        read-only), keyed by the front-end settings and the exact training clips' content (path,
        size and modification time of each: audio replaced in place is measured again)."""
        self.setup()
        clips = [str(c.path) for c in self.parts["train"][:count]]
        key = {"frontend": frontend, "train_clips": content_key(clips), "count": len(clips)}
        if self.pad_mode != "zero":  # repeated clips measure otherwise (zero keeps earlier keys)
            key["pad_mode"] = self.pad_mode
        return cache_file(Path(self.root), key, kind="statistics")

    def _train_sampler(self) -> EpochSeededSampler:
        return ShuffleSampler(len(self.parts["train"]), self.seed)

    def _loader(self, part: str, sampler: EpochSeededSampler | None = None) -> DataLoader:
        if part not in self._datasets or not self.cache_audio:  # a cached set is kept across epochs
            self._datasets[part] = self._dataset(
                self.parts[part], partners=part == "train" and self.mixup_partners
            )
        return DataLoader(
            self._datasets[part],
            batch_size=self.batch_size,
            sampler=None if sampler is None else start_at_epoch(sampler, self),
            num_workers=self.num_workers,
            collate_fn=collate_clips,
            pin_memory=self.pin_memory,
            drop_last=False,
            # workers outlive each pass (starting them cost more than the work on 2 cores); every
            # item is keyed by (index, epoch, position) through the sampler, so nothing per epoch
            # lives in a worker
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Training clips, shuffled (or drawn by the subclass's sampler)."""
        return self._loader("train", sampler=self._train_sampler())

    def has_validation(self) -> bool:
        """Whether there are validation clips (a validation fold or split)."""
        return bool(self.parts["val"])

    def val_dataloader(self) -> DataLoader | list:
        """The validation clips (none when there are none)."""
        return self._loader("val") if self.parts["val"] else []

    def test_dataloader(self) -> DataLoader:
        """The test clips."""
        return self._loader("test")


class Esc50DataModule(ClipDataModule):
    """ESC-50 layout (``meta/esc50.csv`` + ``audio/``), single label per clip.

    Args:
        root: dataset folder. meta / audio_dir: the metadata CSV and the audio folder under it.
        test_fold: the fold tested (1..5); the other four train.
        val_fold: a training fold held out for validation and checkpoint selection (null: none;
            then the last checkpoint is tested after a fixed number of epochs).
        esc10: keep only the ESC-10 rows, re-indexed 0..9 in the order of their ESC-50 targets.
        clip_settings: :class:`ClipDataModule`'s (clips of 5 s by default; ``synth``:
            :class:`~sonolab.data.synth.esc50.Esc50SynthConfig` fields).
    """

    evaluate_arguments = {"test_fold": "test this fold instead of the run's data.test_fold"}
    held_out_hint = "validate on another fold (data.val_fold)"
    synth_generator = (
        "sonolab.data.synth.esc50.Esc50SynthConfig",
        "sonolab.data.synth.esc50.generate_esc50",
    )
    fold_key = "test_fold"

    def __init__(
        self,
        root: str,
        meta: str = "meta/esc50.csv",
        audio_dir: str = "audio",
        test_fold: int = 5,
        val_fold: int | None = None,
        esc10: bool = False,
        **clip_settings,
    ):
        super().__init__(root, **clip_settings)
        check_settings("data", SETTING_RULES, test_fold=test_fold)
        if val_fold is not None and (val_fold == test_fold or not 1 <= val_fold <= 5):
            raise ConfigValueError(
                "data.val_fold",
                f"null or a training fold (1..5 but not the test fold {test_fold})",
                val_fold,
            )
        self.meta = meta
        self.audio_dir = audio_dir
        self.test_fold = test_fold
        self.val_fold = val_fold
        self.esc10 = esc10

    @staticmethod
    def evaluation_config(data: dict, args: dict) -> dict:
        """evaluate.py's ``test_fold=``: test another fold the run did not train on (its test fold
        or its validation fold, the latter with a warning: its checkpoint was chosen there); a
        training fold is refused."""
        if args.get("test_fold") is None:
            return dict(data)
        fold = int(args["test_fold"])
        own_test, val = int(data.get("test_fold", 5)), data.get("val_fold")
        if fold != own_test and fold != val:
            held_out = f"{own_test} (its test fold)" + (
                f" or {val} (its validation fold)" if val is not None else ""
            )
            raise ConfigValueError(
                "test_fold",
                f"a fold this run did not train on: {held_out}; folds "
                f"{', '.join(str(f) for f in range(1, 6) if f not in (own_test, val))} trained it",
                fold,
            )
        if fold == val:
            log.warning(
                "test_fold=%d is the run's validation fold: its checkpoint was chosen on it, so "
                "this is not a held-out test",
                fold,
            )
        # the validation fold is not read by an evaluation: it may now be the tested one
        return {**data, "test_fold": fold, "val_fold": None}

    def _read(self) -> dict[str, list[TaggedClip]]:
        meta = under_root(self.root, self.meta)
        rows = read_esc50_meta(meta)
        if self.esc10:
            rows = [r for r in rows if r.esc10]
            if not rows:
                raise DataFormatError(
                    meta, "rows with esc10=True for data.esc10=true", found="none"
                )
        targets = sorted({r.target for r in rows})
        index = {t: i for i, t in enumerate(targets)}  # ESC-10: 10 classes re-indexed 0..9
        names = {r.target: r.category for r in rows}
        self.class_names = [names[t] for t in targets]
        audio = under_root(self.root, self.audio_dir)
        readable = self._readable(
            [TaggedClip(audio / r.filename, index[r.target]) for r in rows], meta, "esc50"
        )
        rows = [r for r, keep in zip(rows, readable) if keep]
        self.skipped.report(log, "ESC-50 metadata")
        folds: dict[str, list[TaggedClip]] = {"train": [], "val": [], "test": []}
        for r in rows:
            part = (
                "test"
                if r.fold == self.test_fold
                else "val"
                if r.fold == self.val_fold
                else "train"
            )
            folds[part].append(TaggedClip(audio / r.filename, index[r.target]))
        for part in ("train", "test"):
            if not folds[part]:
                raise DataFormatError(
                    meta, f"clips in the {part} folds (test fold {self.test_fold})", found="none"
                )
        return folds

    @property
    def test_name(self) -> str:
        """How the test set is named in metrics and reports: ``fold<k>``."""
        return f"fold{self.test_fold}"


def balanced_weights(label_sets: list[tuple[int, ...]], num_classes: int) -> np.ndarray:
    """AST's balanced-sampling weight of each clip: the sum over its labels of 1 / (clips with that
    label)."""
    counts = np.zeros(num_classes)
    for labels in label_sets:
        counts[list(labels)] += 1
    inverse = 1.0 / np.maximum(counts, 1)
    return np.array([inverse[list(labels)].sum() for labels in label_sets])


class BalancedSampler(EpochSeededSampler):
    """Draws ``len(weights)`` clips per epoch with replacement, in proportion to ``weights``, seeded
    by (seed, epoch): a rare class's clips come up as often as a common one's."""

    def __init__(self, weights: np.ndarray, seed: int = 0):
        super().__init__(seed)
        self.probabilities = np.asarray(weights, dtype=np.float64) / np.sum(weights)

    def __len__(self) -> int:
        return len(self.probabilities)

    def order(self) -> list[int]:
        """``len(weights)`` clips drawn with replacement in proportion to their weights."""
        return (
            self.rng()
            .choice(len(self.probabilities), len(self.probabilities), p=self.probabilities)
            .tolist()
        )


def listings_overlap(root: str | Path, first, second) -> bool:
    """Whether two listing settings (a path, a list of them, or None; relative ones under
    ``root``) name a file in common."""

    def resolved(names) -> set[Path]:
        names = [] if names is None else [names] if isinstance(names, str) else names
        return {under_root(root, n).resolve() for n in names}

    return bool(resolved(first) & resolved(second))


def _check_disjoint(listed: dict[str, tuple[Path, set[Path]]]) -> None:
    """No clip of the training listing in an evaluation listing (a leak scores trained clips as
    tested): DataFormatError naming both listings, the count and a few clips."""
    if "train" not in listed:
        return
    train_listing, train = listed["train"]
    for part, (listing, paths) in listed.items():
        shared = sorted(train & paths) if part != "train" else []
        if shared:
            raise DataFormatError(
                listing,
                f"{part} clips that are not in the training listing {train_listing}",
                found=f"{len(shared)} shared clips",
                details=[str(p) for p in shared[:5]],
            )


class AudioSetDataModule(ClipDataModule):
    """AudioSet layout, several labels per clip: ``class_labels_indices.csv`` plus segment CSVs
    (Google's files, ``#`` header or not) with audio at ``audio_dir/audio_pattern``, or AST-style
    JSON datafiles whose ``wav`` paths are used as they are (relative ones under ``root``).

    Args:
        root: dataset folder. class_labels: the class index CSV.
        train / val / test: a segment CSV (``.csv``) or JSON datafile (``.json``), or a list of
            them read as one (full AudioSet: the balanced and unbalanced training CSVs); ``val``
            may be null.
        audio_dir / audio_pattern: where a segment's audio is: ``{ytid}``, ``{start}`` / ``{end}``
            (seconds, 3 decimals) are filled in, e.g. ``{ytid}.wav`` or ``Y{ytid}.wav`` (PANNs).
        balanced: draw training clips by AST's balanced weights (sum of 1 / label count).
        clip_settings: :class:`ClipDataModule`'s (clips of 10 s and batches of 12 by default;
            ``synth``: :class:`~sonolab.data.synth.audioset.AudioSetSynthConfig` fields).
    """

    multi_label = True
    synth_generator = (
        "sonolab.data.synth.audioset.AudioSetSynthConfig",
        "sonolab.data.synth.audioset.generate_audioset",
    )

    def __init__(
        self,
        root: str,
        class_labels: str = "class_labels_indices.csv",
        train: str | list[str] = "balanced_train_segments.csv",
        val: str | list[str] | None = None,
        test: str | list[str] = "eval_segments.csv",
        audio_dir: str = "audio",
        audio_pattern: str = "{ytid}.wav",
        balanced: bool = True,
        **clip_settings,
    ):
        super().__init__(root, **{"clip_seconds": 10.0, "batch_size": 12, **clip_settings})
        self.class_labels = class_labels
        self.listings = {"train": train, "val": val, "test": test}
        self.audio_dir = audio_dir
        self.audio_pattern = audio_pattern
        self.balanced = balanced

    test_name = "eval"

    def validation_is_tested(self) -> bool:
        """Whether a validation listing is also a test listing."""
        return listings_overlap(self.root, self.listings["val"], self.listings["test"])

    def _clips(self, listing: Path, labels) -> list[TaggedClip]:
        if listing.suffix.lower() == ".json":
            return [
                TaggedClip(under_root(self.root, c.source), c.labels)
                for c in read_json_datafile(listing, labels)
            ]
        audio = under_root(self.root, self.audio_dir)
        try:
            return [
                TaggedClip(
                    audio
                    / self.audio_pattern.format(
                        ytid=c.source, start=f"{c.start:.3f}", end=f"{c.end:.3f}"
                    ),
                    c.labels,
                )
                for c in read_segments(listing, labels)
            ]
        except (KeyError, IndexError) as err:
            raise ConfigValueError(
                "data.audio_pattern",
                "a pattern using {ytid}, {start} and {end} only",
                self.audio_pattern,
            ) from err

    def _read(self) -> dict[str, list[TaggedClip]]:
        labels = read_class_labels(under_root(self.root, self.class_labels))
        self.class_names = [label.name for label in labels]
        parts: dict[str, list[TaggedClip]] = {"val": []}
        listed: dict[str, tuple[Path, set[Path]]] = {}
        for part, names in self.listings.items():
            if names is None:
                continue
            if isinstance(names, str):
                names = [names]
            parts[part] = []
            for name in names:  # several listings: one part (AST's full set: balanced + unbalanced)
                listing = under_root(self.root, name)
                clips = self._clips(listing, labels)
                before = listed.get(part, (listing, set()))[1]
                listed[part] = (listing, before | {c.path for c in clips})
                _check_disjoint(listed)
                parts[part] += self._readable_clips(clips, listing, f"audioset_{part}")
            if part != "val" and not parts[part]:
                raise DataFormatError(listing, f"{part} clips with audio", found="none")
        self.skipped.report(log, "AudioSet listings")
        return parts

    def _train_sampler(self) -> EpochSeededSampler:
        if not self.balanced:
            return super()._train_sampler()
        return BalancedSampler(
            balanced_weights([c.label for c in self.parts["train"]], len(self.class_names)),
            self.seed,
        )
