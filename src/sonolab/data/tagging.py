"""Audio tagging data: ESC-50 (and its ESC-10 subset) with the official fold protocol.

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

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from ..utils.errors import ConfigValueError, DataFormatError, IncompatibleConfigError, check_settings
from ..utils.io import under_root
from .audio import load_audio
from .readers.esc50 import read_esc50_meta
from .skips import SkipLog
from .verify import bad_audio_error, verify_audio_files

log = logging.getLogger(__name__)

SETTING_RULES = {
    "test_fold": (lambda v: 1 <= v <= 5, "a fold 1..5"),
    "clip_seconds": (lambda v: v > 0, "a positive number of seconds"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "on_bad_audio": (lambda v: v in ("error", "skip"), "error or skip"),
}


@dataclass(frozen=True)
class TaggedClip:
    """One clip: its audio file and its class index (after any re-indexing)."""

    path: Path
    label: int


class ClipDataset(Dataset):
    """Fixed-length clips with their labels; clips are cut at ``clip_seconds`` or zero-padded to it
    (the valid length is kept so the front-end knows where the audio ends)."""

    def __init__(self, clips: list[TaggedClip], sample_rate: int, clip_seconds: float):
        self.clips = clips
        self.sample_rate = sample_rate
        self.samples = int(round(clip_seconds * sample_rate))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        clip = self.clips[index]
        wave = load_audio(clip.path, self.sample_rate)[: self.samples]
        padded = torch.zeros(self.samples)
        padded[: wave.numel()] = wave
        return {"wave": padded, "length": wave.numel(), "label": clip.label, "index": index}


def collate_clips(items: list[dict]) -> dict:
    """Stack equal-length clips, their valid lengths, labels and dataset positions."""
    return {"wave": torch.stack([it["wave"] for it in items]),
            "length": torch.tensor([it["length"] for it in items]),
            "label": torch.tensor([it["label"] for it in items]),
            "index": torch.tensor([it["index"] for it in items])}


class Esc50DataModule(L.LightningDataModule):
    """ESC-50 layout (``meta/esc50.csv`` + ``audio/``), single label per clip.

    Args:
        root: dataset folder. meta / audio_dir: the metadata CSV and the audio folder under it.
        test_fold: the fold tested (1..5); the other four train.
        val_fold: a training fold held out for validation and checkpoint selection (null: none;
            then the last checkpoint is tested after a fixed number of epochs).
        esc10: keep only the ESC-10 rows, re-indexed 0..9 in the order of their ESC-50 targets.
        sample_rate: the front-end's rate (clips at other rates are resampled).
        clip_seconds: clips are cut or zero-padded to this length (ESC-50: 5 s).
        require_all_audio: a row without its audio file is an error (else counted and left out).
        verify_audio / on_bad_audio: pre-scan every clip at start-up (cached); a bad one is an error or skipped.
        synth: parameters of :class:`~sonolab.data.synth.esc50.Esc50SynthConfig`; when given, the
            synthetic dataset is generated into ``root`` first.
    """

    evaluate_arguments = ("test_fold",)

    def __init__(self, root: str, meta: str = "meta/esc50.csv", audio_dir: str = "audio", test_fold: int = 5,
                 val_fold: int | None = None, esc10: bool = False, sample_rate: int = 16000, clip_seconds: float = 5.0,
                 batch_size: int = 16, num_workers: int = 2, require_all_audio: bool = False,
                 verify_audio: bool = True, on_bad_audio: str = "error", synth: dict | None = None,
                 pin_memory: bool = False, augment=None, seed: int = 0):
        super().__init__()
        if augment:
            raise IncompatibleConfigError("data=esc50 takes no waveform augmentation yet: use augment=none "
                                          "(SpecAugment is task.spec_augment)")
        check_settings("data", SETTING_RULES, test_fold=test_fold, clip_seconds=clip_seconds, batch_size=batch_size,
                       on_bad_audio=on_bad_audio)
        if val_fold is not None and (val_fold == test_fold or not 1 <= val_fold <= 5):
            raise ConfigValueError("data.val_fold", f"null or a training fold (1..5 but not the test fold {test_fold})",
                                   val_fold)
        self.root = Path(root)
        self.meta = meta
        self.audio_dir = audio_dir
        self.test_fold = test_fold
        self.val_fold = val_fold
        self.esc10 = esc10
        self.sample_rate = sample_rate
        self.clip_seconds = clip_seconds
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.require_all_audio = require_all_audio
        self.verify_audio = verify_audio
        self.on_bad_audio = on_bad_audio
        self.synth = dict(synth) if synth else None
        self.pin_memory = pin_memory
        self.seed = seed
        self.skipped = SkipLog()
        self.class_names: list[str] = []
        self.folds: dict[str, list[TaggedClip]] | None = None

    @staticmethod
    def evaluation_config(data: dict, args: dict) -> dict:
        """evaluate.py's ``test_fold=``: test another fold with the run's model."""
        return {**data, **({"test_fold": int(args["test_fold"])} if args.get("test_fold") is not None else {})}

    def prepare_data(self) -> None:
        """Generate the synthetic dataset when configured (a no-op once written)."""
        if self.synth is not None:
            from .synth.esc50 import Esc50SynthConfig, generate_esc50

            generate_esc50(self.root, Esc50SynthConfig(**self.synth))

    def _read(self) -> dict[str, list[TaggedClip]]:
        meta = under_root(self.root, self.meta)
        rows = read_esc50_meta(meta)
        if self.esc10:
            rows = [r for r in rows if r.esc10]
            if not rows:
                raise DataFormatError(meta, "rows with esc10=True for data.esc10=true", found="none")
        targets = sorted({r.target for r in rows})
        index = {t: i for i, t in enumerate(targets)}  # ESC-10: 10 classes re-indexed 0..9
        names = {r.target: r.category for r in rows}
        self.class_names = [names[t] for t in targets]
        audio = under_root(self.root, self.audio_dir)
        missing = [r.filename for r in rows if not (audio / r.filename).is_file()]
        if missing and self.require_all_audio:
            raise DataFormatError(audio, f"the audio of every row of {meta}", found=f"{len(missing)} missing",
                                  details=missing[:10] + (["..."] if len(missing) > 10 else []))
        for name in missing:
            self.skipped.add("clip listed in the metadata without its audio file", str(audio / name))
        rows = [r for r in rows if r.filename not in set(missing)]
        if self.verify_audio:
            problems, listing = verify_audio_files([audio / r.filename for r in rows], self.sample_rate, True,
                                                   cache_root=self.root, label="esc50")
            if problems and self.on_bad_audio == "error":
                raise bad_audio_error(audio, f"clips the loader can read ({len(rows)} checked)", problems, listing)
            for path in problems:
                self.skipped.add("unreadable clip left out (data.on_bad_audio=skip)", path)
            rows = [r for r in rows if str((audio / r.filename).absolute()) not in problems]
        self.skipped.report(log, "ESC-50 metadata")
        folds: dict[str, list[TaggedClip]] = {"train": [], "val": [], "test": []}
        for r in rows:
            part = "test" if r.fold == self.test_fold else "val" if r.fold == self.val_fold else "train"
            folds[part].append(TaggedClip(audio / r.filename, index[r.target]))
        for part in ("train", "test"):
            if not folds[part]:
                raise DataFormatError(meta, f"clips in the {part} folds (test fold {self.test_fold})", found="none")
        return folds

    def setup(self, stage: str | None = None) -> None:
        """Read the metadata and split by fold (once)."""
        if self.folds is None:
            self.folds = self._read()

    @property
    def info(self) -> dict:
        """What the task needs: classes, their names, single label, and the sample rate."""
        self.setup()
        return {"num_classes": len(self.class_names), "labels": list(self.class_names), "multi_label": False,
                "sample_rate": self.sample_rate}

    @property
    def test_name(self) -> str:
        """How the test set is named in metrics and reports: ``fold<k>``."""
        return f"fold{self.test_fold}"

    def statistics_clips(self, count: int) -> Dataset:
        """The first ``count`` training clips in metadata order: the same on every process, for the
        front-end's normalisation statistics."""
        self.setup()
        return ClipDataset(self.folds["train"][:count], self.sample_rate, self.clip_seconds)

    def _loader(self, part: str, shuffle: bool) -> DataLoader:
        return DataLoader(ClipDataset(self.folds[part], self.sample_rate, self.clip_seconds), batch_size=self.batch_size,
                          shuffle=shuffle, num_workers=self.num_workers, collate_fn=collate_clips,
                          pin_memory=self.pin_memory, drop_last=False)

    def train_dataloader(self) -> DataLoader:
        """Shuffled clips of the training folds."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        """The validation fold's clips (none without ``val_fold``)."""
        return self._loader("val", shuffle=False) if self.folds["val"] else []

    def test_dataloader(self) -> DataLoader:
        """The test fold's clips."""
        return self._loader("test", shuffle=False)
