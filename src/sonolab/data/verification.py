"""VoxCeleb datamodule: random crops of training speakers; full utterances of trial lists.

Works on the real VoxCeleb trees (VoxCeleb1 dev/test, VoxCeleb2 dev after m4a->wav), on
``speechocean762-vox`` and on the synthetic dataset (which it generates on first use when a
``synth`` block is configured). Only readers, datasets and samplers are wired here.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..utils.errors import ConfigValueError, DataFormatError, check_settings
from ..utils.groups import config_group, moved_keys_error, nest_moved_keys
from ..utils.io import from_cwd, under_root
from .audio import audio_duration, load_audio, load_random_crop, resample_audio
from .augment import WaveformAugment
from .base import SETTING_RULES as COMMON_SETTING_RULES
from .base import AudioDataModule
from .cohort import cohort_cache_file, draw_cohort
from .holdout import hold_out
from .info import DataInfo
from .length_batches import LengthBatches, length_batches
from .readers.voxceleb import (
    Trial,
    Utterance,
    check_trial_audio,
    read_speaker_list,
    read_trial_list,
    scan_speaker_tree,
    trial_line,
)
from .samplers import (
    Draw,
    EpochSeededSampler,
    ShuffleSampler,
    draw_rng,
    start_at_epoch,
)
from .skips import SkipLog
from .verification_settings import (
    MOVED_KEYS,
    AudioReadSettings,
    CohortSettings,
    CropSettings,
    TrialListSettings,
)
from .verify import cache_file, screen_audio

log = logging.getLogger(__name__)

SPEEDS = (1.0, 0.9, 1.1)  # label k * num_speakers + speaker for SPEEDS[k], as in WeSpeaker


@dataclass
class EvalSet:
    """A trial list resolved to unique utterances: each one is embedded once, however many trials
    name it."""

    name: str
    list_path: str
    audio_root: str
    utterances: list[str]
    labels: np.ndarray
    enroll_index: np.ndarray
    test_index: np.ndarray
    speakers: list[str] = field(default_factory=list)

    @staticmethod
    def from_trials(
        name: str, list_path: str | Path, audio_root: str | Path, trials: list[Trial]
    ) -> EvalSet:
        """Index a parsed trial list."""
        utterances = sorted({t.enroll for t in trials} | {t.test for t in trials})
        index = {u: i for i, u in enumerate(utterances)}
        return EvalSet(
            name=name,
            list_path=str(list_path),
            audio_root=str(audio_root),
            utterances=utterances,
            labels=np.array([t.label for t in trials], dtype=np.int8),
            enroll_index=np.array([index[t.enroll] for t in trials], dtype=np.int64),
            test_index=np.array([index[t.test] for t in trials], dtype=np.int64),
            speakers=sorted({u.split("/")[0] for u in utterances}),
        )


@dataclass(frozen=True)
class SpeakerDataInfo(DataInfo):
    """What a speaker-classification task needs: its classes (the training speakers, tripled under
    speed perturbation) and the speaker count (absent from early checkpoints)."""

    num_classes: int
    num_speakers: int | None = None


SETTING_RULES = COMMON_SETTING_RULES  # data.<key> besides the groups, each checked by its dataclass


class TrainCrops(Dataset):
    """Fixed-length random crops with speaker labels, optional speed perturbation and
    augmentation."""

    def __init__(
        self,
        root: Path,
        utterances: list[Utterance],
        speaker_index: dict[str, int],
        crop_samples: int,
        sample_rate: int,
        resample: bool,
        speed_perturb: bool,
        augment: WaveformAugment | None,
        seed: int,
        channel: int | None = None,
    ):
        self.root = root
        self.utterances = utterances
        self.labels = [speaker_index[u.speaker] for u in utterances]
        self.num_speakers = len(speaker_index)
        self.crop_samples = crop_samples
        self.sample_rate = sample_rate
        self.resample = resample
        self.speed_perturb = speed_perturb
        self.augment = augment
        self.seed = seed
        self.channel = channel
        self._generator: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.utterances)

    def _process_rng(self) -> np.random.Generator:
        # For a plain index (no training sampler's Draw): seeded lazily in each process from torch's
        # seed, so crops still differ between DataLoader workers.
        if self._generator is None:
            self._generator = np.random.default_rng([self.seed, torch.initial_seed() % (1 << 63)])
        return self._generator

    def __getitem__(self, key: int | Draw) -> dict:
        index, rng = draw_rng(key, self.seed)
        if rng is None:
            rng = self._process_rng()
        path = self.root / self.utterances[index].path
        speed_id = int(rng.integers(len(SPEEDS))) if self.speed_perturb else 0
        speed = SPEEDS[speed_id]
        wave = load_random_crop(
            path,
            self.sample_rate,
            self.resample,
            self.crop_samples * speed,
            rng,
            margin=1,
            channel=self.channel,
        )
        if (
            speed != 1.0
        ):  # resampling as if recorded at speed * rate changes tempo and pitch, as sox 'speed'
            wave = resample_audio(wave, int(round(self.sample_rate * speed)), self.sample_rate)
        if wave.numel() < self.crop_samples:  # short utterance: repeat it, as WeSpeaker does
            wave = wave.repeat(math.ceil(self.crop_samples / wave.numel()))
        wave = wave[: self.crop_samples]
        if self.augment:
            wave = self.augment(wave, rng)
        return {"wave": wave, "label": self.labels[index] + speed_id * self.num_speakers}


class EvalUtterances(Dataset):
    """Full-length utterances of one evaluation set (or of the normalisation cohort)."""

    def __init__(
        self,
        name: str,
        root: Path,
        paths: list[str],
        sample_rate: int,
        resample: bool,
        max_seconds: float | None = None,
        channel: int | None = None,
    ):
        self.name = name
        self.root = root
        self.paths = paths
        self.sample_rate = sample_rate
        self.resample = resample
        self.max_samples = int(max_seconds * sample_rate) if max_seconds else -1
        self.channel = channel

    def __len__(self) -> int:
        return len(self.paths)

    def durations(self) -> list[float]:
        """Each utterance's seconds as read (up to ``max_seconds``) from its file's header; 0 for
        a file whose header does not read (loading it then names the file and the problem)."""
        limit = self.max_samples / self.sample_rate if self.max_samples > 0 else math.inf
        out = []
        for name in self.paths:
            try:
                seconds = audio_duration(self.root / name)
            except DataFormatError:
                seconds = 0.0
            out.append(min(seconds, limit))
        return out

    def __getitem__(self, index: int) -> dict:
        path = self.root / self.paths[index]
        wave = load_audio(
            path, self.sample_rate, self.resample, num_frames=self.max_samples, channel=self.channel
        )
        # The path travels with the batch so that a failure while embedding can name the file.
        return {"wave": wave, "index": index, "set": self.name, "path": str(path)}


def collate_padded(items: list[dict]) -> dict:
    """Stack waveforms, zero-padding to the longest; keep their lengths and the other fields."""
    lengths = torch.tensor([it["wave"].numel() for it in items])
    waves = torch.zeros(len(items), int(lengths.max()))
    for i, it in enumerate(items):
        waves[i, : lengths[i]] = it["wave"]
    batch = {"wave": waves, "length": lengths}
    for key in items[0]:
        if key != "wave":
            values = [it[key] for it in items]
            batch[key] = torch.tensor(values) if isinstance(values[0], int) else values
    return batch


class SpeakerBalancedSampler(EpochSeededSampler):
    """Draws a speaker uniformly, then one of its utterances; ``len(labels)`` draws per epoch.

    Lightning wraps it for DDP (each rank takes its share of the same draws).
    """

    def __init__(self, labels: list[int], seed: int = 0):
        self.by_speaker: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            self.by_speaker.setdefault(label, []).append(i)
        self.speakers = sorted(self.by_speaker)
        self.num_samples = len(labels)
        super().__init__(seed)

    def __len__(self) -> int:
        return self.num_samples

    def order(self) -> list[int]:
        """A uniformly drawn speaker, then one of its utterances, ``len(labels)`` times."""
        rng = self.rng()
        order = []
        for spk in rng.integers(len(self.speakers), size=self.num_samples):
            utts = self.by_speaker[self.speakers[spk]]
            order.append(utts[int(rng.integers(len(utts)))])
        return order


def trial_lists_argument(trials) -> dict[str, str]:
    """evaluate.py's ``trials=``: ``{name: file}``, one file, or a list of files (named by their
    stem).

    Relative paths are taken from the current folder (the training config's lists, by contrast, are
    relative to its data.root).
    """
    value = trials
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        names = [Path(str(v)).stem for v in value]
        if len(set(names)) != len(names):
            raise ConfigValueError(
                "trials", "files with different names, or a {name: file} dict", value
            )
        value = dict(zip(names, value))
    if (
        not isinstance(value, dict)
        or not value
        or not all(isinstance(v, str) for v in value.values())
    ):
        raise ConfigValueError(
            "trials", "{name: trial list file}, one trial list file, or a list of them", value
        )
    return {str(name): from_cwd(path) for name, path in value.items()}


class VoxCelebDataModule(AudioDataModule):
    """Speaker-verification data in the VoxCeleb layout.

    Args:
        root: dataset folder; relative paths below are resolved against it.
        train_dir: training tree (``<speaker>/<session>/<utt>.<ext>``), e.g. ``wav`` or
            ``vox2_dev/wav``.
        train_speakers: optional file listing training speakers (default: every speaker in the
            tree).
        sample_rate: model rate; files at other rates are resampled if ``audio.resample`` else
            rejected.
        batch_size: training crops per batch (per device).
        crops: :class:`~sonolab.data.verification_settings.CropSettings` (length, speed
            perturbation, speaker-balanced draws).
        lists: :class:`~sonolab.data.verification_settings.TrialListSettings` (validation and test
            trial lists, the held-out validation speakers, evaluation batching).
        cohort: :class:`~sonolab.data.verification_settings.CohortSettings` (the score-normalisation
            cohort).
        audio: :class:`~sonolab.data.verification_settings.AudioReadSettings` (extensions,
            resampling, channel, shortest file).
        verify_audio: check every file's header, rate, channels, length and last sample before use
            (cached per file in ``<root>/.sonolab/``, or the user cache if the data is read-only).
        on_bad_audio: what the check does with a bad file: ``error`` (list them and stop) or
            ``skip`` (leave the file out, and the trials that name it; counted in metrics.json).
        synth: parameters of :class:`~sonolab.data.synth.voxceleb.VoxCelebSynthConfig`; when given,
            the synthetic dataset is generated into ``root`` on first use.

    A key of the former flat layout (``crop_seconds``, ``val_trials``, ...) is refused naming the
    group it moved to (:data:`~sonolab.data.verification_settings.MOVED_KEYS`).
    """

    def __init__(
        self,
        root: str,
        train_dir: str = "wav",
        train_speakers: str | None = None,
        sample_rate: int = 16000,
        batch_size: int = 64,
        num_workers: int = 2,
        crops: CropSettings | dict | None = None,
        lists: TrialListSettings | dict | None = None,
        cohort: CohortSettings | dict | None = None,
        audio: AudioReadSettings | dict | None = None,
        verify_audio: bool = False,
        on_bad_audio: str = "error",
        augment: WaveformAugment | None = None,
        synth: dict | None = None,
        seed: int = 0,
        pin_memory: bool = False,
        **moved,
    ):
        super().__init__()
        moved_keys_error(moved, MOVED_KEYS, "data")
        check_settings(
            "data",
            SETTING_RULES,
            sample_rate=sample_rate,
            batch_size=batch_size,
            num_workers=num_workers,
            on_bad_audio=on_bad_audio,
        )
        self.root = Path(root)
        self.train_dir = train_dir
        self.train_speakers = train_speakers
        self.crops = config_group(CropSettings, crops, "data.crops")
        self.lists = config_group(TrialListSettings, lists, "data.lists")
        self.cohort = config_group(CohortSettings, cohort, "data.cohort")
        self.audio = config_group(AudioReadSettings, audio, "data.audio")
        # The validation list in use: the configured one, or the held-out speakers' list once
        # written (see _hold_out).
        self.val_trials = self.lists.val_trials
        self.val_trial_dir = self.lists.val_trial_dir
        self.sample_rate = sample_rate
        self.crop_samples = self.crops.samples(sample_rate)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.verify_audio = verify_audio
        self.on_bad_audio = on_bad_audio
        self.augment = augment
        self.synth = dict(synth) if synth else None
        self.seed = seed
        self.pin_memory = pin_memory
        self.eval_sets: dict[str, EvalSet] = {}
        self.train_set: TrainCrops | None = None
        self.speakers: list[str] = []
        self._cohort_cache: list[Utterance] | None = None
        self.cached_cohort: torch.Tensor | None = None  # cohort embeddings read from the cache

    def _path(self, rel: str | None) -> Path | None:
        return under_root(self.root, rel)

    @property
    def num_classes(self) -> int:
        """Classifier outputs: speakers, tripled under speed perturbation."""
        if not self.speakers:
            self._setup_train()
        return len(self.speakers) * (len(SPEEDS) if self.crops.speed_perturb else 1)

    takes_augment = True
    synth_generator = (
        "sonolab.data.synth.voxceleb.VoxCelebSynthConfig",
        "sonolab.data.synth.voxceleb.generate_voxceleb",
    )
    evaluate_arguments = {
        "trials": "lists to score instead of the run's data.lists.test_trials: {name: file}, a "
        "file, or [files]",
        "trial_dir": "folder the trial lists' paths are relative to (default: the run's "
        "data.lists.trial_dir)",
        "cohort_utts_per_speaker": "training utterances per speaker for the AS-norm / mean cohort "
        "(the run's data.cohort.utts_per_speaker)",
        "eval_max_seconds": "truncate utterances to this length (null = full length)",
        "eval_batch_size": "utterances per embedding batch, longest first (the run's "
        "data.lists.eval_batch_size; 1 = no padding)",
        "eval_batch_seconds": "padded seconds of audio per embedding batch at most (the run's "
        "data.lists.eval_batch_seconds; null = no limit)",
    }
    # evaluate.py argument -> (group, key) of the data config it sets
    _ARGUMENT_PLACES = {
        "trials": ("lists", "test_trials"),
        "trial_dir": ("lists", "trial_dir"),
        "cohort_utts_per_speaker": ("cohort", "utts_per_speaker"),
        "eval_max_seconds": ("lists", "eval_max_seconds"),
        "eval_batch_size": ("lists", "eval_batch_size"),
        "eval_batch_seconds": ("lists", "eval_batch_seconds"),
    }
    held_out_hint = (
        "validate on held-out training speakers (data.lists.val_holdout={speakers: 100, trials: "
        "20000}, or python -m sonolab.data.holdout and data.lists.val_trials / "
        "data.lists.val_trial_dir)"
    )

    @classmethod
    def evaluation_config(cls, data: dict, args: dict) -> dict:
        """The run's ``data`` config (a run saved before the keys were grouped is read too) with
        evaluate.py's arguments applied: ``trials`` (lists scored instead of the run's test lists),
        ``trial_dir``, ``cohort_utts_per_speaker``, ``eval_max_seconds``, ``eval_batch_size``,
        ``eval_batch_seconds``."""
        data = nest_moved_keys(data, MOVED_KEYS)
        converters = {"trials": trial_lists_argument, "trial_dir": from_cwd}
        for argument, (group, key) in cls._ARGUMENT_PLACES.items():
            if args.get(argument) is not None:
                value = converters.get(argument, lambda v: v)(args[argument])
                data[group] = {**(data.get(group) or {}), key: value}
        return data

    @property
    def info(self) -> SpeakerDataInfo:
        """What a task needs to build its heads, saved in checkpoints."""
        return SpeakerDataInfo(
            sample_rate=self.sample_rate,
            num_classes=self.num_classes,
            num_speakers=len(self.speakers),
        )

    def _absorb(self, skips: SkipLog, context: str) -> None:
        skips.report(log, context)
        self.skipped.update(skips)

    def _bad_audio(self, folder: Path, files: list[str], label: str) -> set[str]:
        """Files of ``folder`` that fail the pre-scan: an error listing them, or (``skip``) their
        set."""
        if not self.verify_audio:
            return set()
        problems = screen_audio(
            [folder / f for f in files],
            folder,
            f"audio the loaders can read ({len(files)} files checked for {label})",
            self.on_bad_audio,
            self.sample_rate,
            self.audio.resample,
            self.audio.channel,
            self.audio.min_audio_seconds,
            cache_root=self.root,
            label=label,
        )
        return {str(Path(p).relative_to(folder.absolute())) for p in problems}

    def _setup_train(self) -> None:
        skips = SkipLog()
        speakers = (
            read_speaker_list(self._path(self.train_speakers)) if self.train_speakers else None
        )
        train_root = self._path(self.train_dir)
        utterances = scan_speaker_tree(train_root, self.audio.extensions, speakers, skips=skips)
        bad = self._bad_audio(train_root, [u.path for u in utterances], "train")
        if bad:
            for utt in utterances:
                if utt.path in bad:
                    skips.add(
                        "unreadable training file left out (data.on_bad_audio=skip)",
                        str(train_root / utt.path),
                    )
            utterances = [u for u in utterances if u.path not in bad]
            if not utterances:
                raise DataFormatError(
                    train_root, "at least one readable training file", found="none passed the check"
                )
        self._absorb(skips, f"training tree {train_root}")
        self.speakers = sorted({u.speaker for u in utterances})
        if speakers is not None and len(self.speakers) < len(speakers):
            lost = sorted(set(speakers) - set(self.speakers))
            raise DataFormatError(
                train_root,
                "readable audio for every listed training speaker",
                found=f"none left for {', '.join(lost[:5])} after data.on_bad_audio=skip",
            )
        if self.lists.val_holdout:
            utterances = self._hold_out(utterances, train_root)
            self.speakers = sorted({u.speaker for u in utterances})
        index = {s: i for i, s in enumerate(self.speakers)}
        if self.augment:  # after prepare_data wrote a synthetic set's corpora; before the workers
            self.augment.scan()
        self.train_set = TrainCrops(
            train_root,
            utterances,
            index,
            self.crop_samples,
            self.sample_rate,
            self.audio.resample,
            self.crops.speed_perturb,
            self.augment,
            self.seed,
            self.audio.channel,
        )

    def validation_is_tested(self) -> bool:
        """Whether the validation list is also a test list (then choosing a checkpoint on it would
        choose on the test): the same file, or no validation list (the first test list is used)."""
        if self.lists.val_holdout:
            return False
        if self.val_trials is None:
            return bool(self.lists.test_trials)
        val = self._path(self.val_trials).resolve()
        return any(self._path(p).resolve() == val for p in self.lists.test_trials.values())

    def _hold_out(self, utterances: list[Utterance], train_root: Path) -> list[Utterance]:
        """Take ``val_holdout`` speakers out of training; their trial list becomes the validation
        list."""
        spec = {key: int(value) for key, value in self.lists.val_holdout.items()}
        held, trials = hold_out(
            utterances, spec["speakers"], spec["trials"], spec["seed"], str(train_root)
        )
        listing = "\n".join(sorted(u.path for u in utterances)).encode("utf-8", "surrogateescape")
        path = cache_file(
            self.root,
            {**spec, "train_dir": self.train_dir, "utterances": hashlib.sha1(listing).hexdigest()},
            kind="holdout_val_trials",
        ).with_suffix(".txt")
        if not path.is_file():  # written whole, then renamed: DDP ranks write the same list
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(
                "".join(trial_line(*trial) for trial in trials),
                encoding="utf-8",
                errors="surrogateescape",
            )
            tmp.replace(path)
        log.info(
            "validation: %d trials over %d held-out training speakers (%s)",
            len(trials),
            len(held),
            path,
        )
        self.val_trials, self.val_trial_dir = str(path), self.train_dir
        held_set = set(held)
        return [u for u in utterances if u.speaker not in held_set]

    def _load_eval_set(self, name: str, list_path: str, trial_dir: str | None = None) -> EvalSet:
        path = self._path(list_path)
        skips = SkipLog()
        trials = read_trial_list(path, duplicates=self.lists.duplicate_trials, skips=skips)
        audio_root = self._path(trial_dir or self.lists.trial_dir)
        check_trial_audio(trials, audio_root, path)
        bad = self._bad_audio(
            audio_root, sorted({t.enroll for t in trials} | {t.test for t in trials}), name
        )
        if bad:
            for t in trials:
                if t.enroll in bad or t.test in bad:
                    skips.add(
                        f"trial naming an unreadable file dropped ({path.name})", f"{path}:{t.line}"
                    )
            trials = [t for t in trials if t.enroll not in bad and t.test not in bad]
            labels = {t.label for t in trials}
            if labels != {0, 1}:
                raise DataFormatError(
                    path,
                    "target and non-target trials after dropping those with unreadable audio",
                    found=f"labels {sorted(labels)} left",
                )
        self._absorb(skips, f"trial list {path}")
        return EvalSet.from_trials(name, path, audio_root, trials)

    def setup(self, stage: str | None = None) -> None:
        """Resolve what ``stage`` uses, so a bad file fails now rather than mid-run.

        fit: training tree, validation list and the test lists (checked before training starts);
        validate: the validation list; test: only the test lists (and the training tree when a
        normalisation cohort is configured). Evaluation never reads a list it does not score.
        """
        if stage in (None, "fit") and self.train_set is None:
            self._setup_train()
        if stage in (None, "fit", "test"):
            if not self.lists.test_trials and self.val_trials is None:
                raise DataFormatError(
                    self.root,
                    "at least one trial list (data.lists.val_trials or data.lists.test_trials)",
                )
            for name, list_path in self.lists.test_trials.items():
                if name not in self.eval_sets:
                    self.eval_sets[name] = self._load_eval_set(name, list_path)
        if stage in (None, "fit", "validate") and "val" not in self.eval_sets:
            if self.val_trials is not None:
                self.eval_sets["val"] = self._load_eval_set(
                    "val", self.val_trials, self.val_trial_dir
                )
            elif self.lists.test_trials:
                first = next(iter(self.lists.test_trials))
                log.warning("no data.lists.val_trials: validating on the test list %r", first)
                self.eval_sets["val"] = self.eval_sets.get(first) or self._load_eval_set(
                    first, self.lists.test_trials[first]
                )
            else:
                raise DataFormatError(
                    self.root, "a validation list (data.lists.val_trials or data.lists.test_trials)"
                )
        if self.train_set is not None:
            self._warn_shared_speakers()

    def _warn_shared_speakers(self) -> None:
        """One warning per trial list whose speakers (a path's first folder) include training
        speakers, with the counts: scores of trained speakers flatter the EER."""
        trained = set(self.speakers)
        for name, ev in self.eval_sets.items():
            shared = trained & set(ev.speakers)
            if shared:
                log.warning(
                    "trial list %s (%s): %d of its %d speakers are also training speakers "
                    "(e.g. %s)",
                    name,
                    ev.list_path,
                    len(shared),
                    len(ev.speakers),
                    ", ".join(sorted(shared)[:3]),
                )

    def _eval_loader(self, name: str, root: str | Path, paths: list[str]) -> DataLoader:
        dataset = EvalUtterances(
            name,
            Path(root),
            paths,
            self.sample_rate,
            self.audio.resample,
            self.lists.eval_max_seconds,
            self.audio.channel,
        )
        source, collate = dataset, collate_padded  # one at a time: no padding, no header reads
        if self.lists.eval_batch_size > 1:
            # longest first, so a batch pads little (the scores depend on the utterance, not on its
            # place in the list)
            order = length_batches(
                dataset.durations(), self.lists.eval_batch_size, self.lists.eval_batch_seconds
            )
            source = LengthBatches(dataset, order, collate_padded)
            collate = source.collate_one
        return DataLoader(
            source,
            batch_size=1,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate,
            pin_memory=self.pin_memory,
            # kept for the next validation (and across a test's lists): starting and joining the
            # workers at every pass cost the default run's fit 1.2-1.4x (two interleaved pairs:
            # 61 / 71 s against 86 / 86 s on the 2-core machine)
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled (or speaker-balanced) crops; the crop randomness changes every epoch."""
        sampler = (
            SpeakerBalancedSampler(self.train_set.labels, self.seed)
            if self.crops.speaker_balanced
            else ShuffleSampler(len(self.train_set), self.seed)
        )
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=start_at_epoch(sampler, self),
            num_workers=self.num_workers,
            collate_fn=collate_padded,
            drop_last=True,
            pin_memory=self.pin_memory,
            # kept across epochs: each crop is drawn from its (seed, epoch, position) key, so no
            # per-epoch state lives in the workers; restarting them every epoch cost the default
            # run's fit 1.08x (89 / 93 s against 100 / 97 s on the 2-core machine)
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        """Utterances of the validation trial list."""
        val = self.eval_sets["val"]
        return self._eval_loader("val", val.audio_root, val.utterances)

    def _cohort(self) -> list[Utterance]:
        """The cohort (in path order): every training utterance with ``cohort_utts_per_speaker=-1``,
        else that many per speaker, drawn at random (seeded) one session after another so they span
        sessions."""
        if self.train_set is None:
            self._setup_train()
        if self.cohort.utts_per_speaker < 0:
            return sorted(self.train_set.utterances, key=lambda u: u.path)
        if self._cohort_cache is None:
            self._cohort_cache = draw_cohort(
                self.train_set.utterances, self.cohort.utts_per_speaker, self.seed
            )
        return self._cohort_cache

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test list, plus the normalisation cohort first when configured."""
        loaders = []
        self.cached_cohort = None
        if self.cohort.utts_per_speaker != 0:
            paths = [u.path for u in self._cohort()]
            cache = self.cohort_cache_file()
            if cache is not None and cache.is_file():
                self.cached_cohort = torch.load(cache, map_location="cpu", weights_only=True)[
                    "embeddings"
                ]
                log.info("cohort embeddings of this checkpoint read from %s", cache)
            else:
                loaders.append(self._eval_loader("cohort", self._path(self.train_dir), paths))
        for name in self.lists.test_trials:
            ev = self.eval_sets[name]
            loaders.append(self._eval_loader(name, ev.audio_root, ev.utterances))
        return loaders

    def cohort_cache_file(self) -> Path | None:
        """Where the cohort embeddings of the checkpoint under test are kept (``<run>/cohort/``);
        None when no checkpoint file is tested (weights in memory)."""
        settings = {
            "eval_max_seconds": self.lists.eval_max_seconds,
            "sample_rate": self.sample_rate,
            "train_dir": str(self._path(self.train_dir).resolve()),
        }
        return cohort_cache_file(self.tested_checkpoint, [u.path for u in self._cohort()], settings)

    def cohort_speakers(self) -> list[str]:
        """Speaker of each cohort utterance (for per-speaker cohort means)."""
        return [u.speaker for u in self._cohort()]
