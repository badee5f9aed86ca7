"""Diarization datamodule: simulated conversations (on the fly) or recordings in the AMI layouts.

A *recording set* is a URI list, references (RTTM), scored regions (UEM) and audio, each given as
one file or as a ``{uri}`` template: the AMI diarization setup keeps one RTTM / UEM per meeting
(``only_words/rttms/dev/{uri}.rttm``), the shared AMI excerpts and the project's simulated sets one
file per subset. URIs missing from any of list / audio / RTTM / UEM are an error naming them, or
(``on_missing: skip``) left out and counted.

Training examples are chunks with frame activity targets at 100 frames/s, speakers ordered by
first activity; the task subsamples them to its model's frame rate. A chunk with more speakers
than ``max_speakers`` keeps the most active ones; the dropped speakers are counted, never an
IndexError.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from pyannote.core import Annotation, Segment, Timeline
from torch.utils.data import DataLoader, Dataset

from ..utils.errors import ConfigValueError, DataFormatError, check_settings
from ..utils.io import from_cwd, under_root
from .audio import AUDIO_EXTENSIONS, audio_duration, load_segment
from .base import SETTING_RULES as COMMON_SETTING_RULES
from .base import AudioDataModule
from .info import DataInfo
from .mixtures import LABEL_RATE, MixtureConfig, simulator_from_tree, turns_to_activity
from .readers.rttm import find_recordings, match_uris, read_rttm, read_uem, read_uri_list
from .samplers import Draw, EpochSeededSampler, ShuffleSampler, draw_index, start_at_epoch
from .skips import SkipLog
from .synth.mixtures import write_mixture_set
from .turn_statistics import describe, mixture_statistics, reference_activities
from .verify import screen_audio, verify_audio_files

log = logging.getLogger(__name__)

SETTING_RULES = {  # data.<key>: what the datamodule accepts
    **COMMON_SETTING_RULES,
    "chunk_seconds": (lambda v: v > 0, "a positive number of seconds"),
    "max_speakers": (lambda v: v >= 1, "at least 1"),
    "on_missing": (lambda v: v in ("error", "skip"), "error or skip"),
}
# Keys of data.simulation / data.simulated_sets.<name> besides the MixtureConfig fields.
SIMULATOR_KEYS = {
    "tree",
    "speakers_file",
    "exclude_file",
    "noise_dir",
    "rir_dir",
    "count",
    "seed",
    "subset",
    "new_each_epoch",
    "expected_overlap_ratio",
}
STATISTICS_MIXTURES = 32  # training mixtures simulated at start-up to log the corpus statistics


@dataclass
class RecordingSet:
    """Recordings with their reference and scored regions, ready to chunk or to diarize whole."""

    name: str
    uris: list[str]
    audio: dict[str, Path]
    references: dict[str, Annotation]
    uems: dict[str, Timeline]
    scored: bool = True  # False: recordings without references, diarized but not scored

    @staticmethod
    def from_files(
        name: str,
        root: Path,
        lst: str,
        rttm: str,
        uem: str,
        audio: str,
        on_missing: str = "error",
        skips: SkipLog | None = None,
        unusable_audio: Callable[[list[Path]], set[str]] | None = None,
    ) -> RecordingSet:
        """Read a set; ``rttm`` / ``uem`` / ``audio`` may hold ``{uri}``; relative paths are under
        ``root``. Turns and scored regions are checked against each recording's length, except for
        the files ``unusable_audio`` names (absolute paths failing the audio pre-scan, whose
        header length cannot be trusted: they are left out or named by that check)."""
        lst, rttm, uem, audio = (str(under_root(root, p)) for p in (lst, rttm, uem, audio))
        uris = read_uri_list(lst)
        audio_paths = {u: Path(audio.format(uri=u)) for u in uris}
        found_audio = {u for u, p in audio_paths.items() if p.is_file()}
        checked = _against_audio(
            {u: audio_paths[u] for u in found_audio}, on_missing, skips, unusable_audio
        )
        references = per_uri(rttm, uris, partial(read_rttm, **checked))
        uems = per_uri(uem, uris, partial(read_uem, **checked))
        sources = {
            "list": (lst, set(uris)),
            "audio": (audio, found_audio),
            "rttm": (rttm, set(references)),
            "uem": (uem, set(uems)),
        }
        keep = match_uris(sources, skip=on_missing == "skip", skips=skips, selection="list")
        return RecordingSet(name, uris, audio_paths, references, uems).restricted(keep)

    def speaker_count(self, uri: str) -> int:
        """The number of speakers in a recording's reference (oracle-count scoring); at least 1."""
        return max(1, len(self.references[uri].labels()))

    def restricted(self, keep: set[str]) -> RecordingSet:
        """The same set with only the URIs in ``keep`` (in their order here)."""
        kept = [u for u in self.uris if u in keep]
        return RecordingSet(
            self.name,
            kept,
            {u: self.audio[u] for u in kept},
            {u: r for u, r in self.references.items() if u in keep},
            {u: r for u, r in self.uems.items() if u in keep},
            self.scored,
        )

    @staticmethod
    def from_recordings(
        name: str,
        recordings: str,
        rttm: str | None = None,
        uem: str | None = None,
        on_missing: str = "error",
        skips: SkipLog | None = None,
        unusable_audio: Callable[[list[Path]], set[str]] | None = None,
    ) -> RecordingSet:
        """Recordings given as a folder of audio files or a list of them (URI = file name without
        extension), with references (``rttm``, a file or ``{uri}`` template) when they are to be
        scored. Scored regions come from ``uem`` or, without one, span each whole recording.
        References are checked against the audio as by :meth:`from_files`."""
        audio = find_recordings(recordings, AUDIO_EXTENSIONS)
        uris = list(audio)
        if rttm is None:
            if uem is not None:
                raise ConfigValueError("uem", "scored regions only with references (rttm=...)", uem)
            return RecordingSet(name, uris, audio, {}, {}, scored=False)
        checked = _against_audio(audio, on_missing, skips, unusable_audio)
        references = per_uri(rttm, uris, partial(read_rttm, **checked))
        sources = {"recordings": (recordings, set(uris)), "rttm": (rttm, set(references))}
        if uem is not None:
            uems = per_uri(uem, uris, partial(read_uem, **checked))
            sources["uem"] = (uem, set(uems))
        else:
            uems = {u: Timeline([Segment(0.0, audio_duration(audio[u]))], uri=u) for u in uris}
        keep = match_uris(sources, skip=on_missing == "skip", skips=skips, selection="recordings")
        return RecordingSet(name, uris, audio, references, uems).restricted(keep)


def _against_audio(
    audio: dict[str, Path],
    on_missing: str,
    skips: SkipLog | None,
    unusable: Callable[[list[Path]], set[str]] | None = None,
) -> dict:
    """The reference readers' arguments that check turns and scored regions against each
    recording's length (read from the audio headers; a file that cannot be opened, or that
    ``unusable`` names, is left to the audio checks): past the end is an error, or with
    ``on_missing=skip`` cropped or dropped and counted in ``skips``."""
    bad = unusable(list(audio.values())) if unusable is not None and audio else set()
    durations = {}
    for uri, path in audio.items():
        if str(Path(path).absolute()) in bad:
            continue
        try:
            durations[uri] = audio_duration(path)
        except (DataFormatError, OSError):
            continue
    return {"durations": durations, "skip_past_end": on_missing == "skip", "skips": skips}


def per_uri(template: str, uris: list[str], reader) -> dict:
    """One file for all URIs, or one per URI through a ``{uri}`` template (missing files are simply
    absent)."""
    if "{uri}" not in template:
        return reader(template)
    out = {}
    for uri in uris:
        file = Path(template.format(uri=uri))
        if file.is_file():
            out.update(reader(file))
    return out


def chunk_targets(
    reference: Annotation, start: float, end: float, max_speakers: int, skips: SkipLog, where: str
) -> tuple[torch.Tensor, list[str]]:
    """``(frames, speakers)`` activity of ``reference`` in ``[start, end)`` at 100 frames/s,
    speakers in order of first activity, at most ``max_speakers`` (the least active others are
    dropped and counted)."""
    window = reference.crop(Segment(start, end), mode="intersection")
    turns = [
        (label, seg.start - start, seg.end - start)
        for seg, _, label in window.itertracks(yield_label=True)
    ]
    turns.sort(key=lambda t: (t[1], t[0]))
    speakers = list(dict.fromkeys(t[0] for t in turns))
    frames = int(round((end - start) * LABEL_RATE))
    activity = turns_to_activity(turns, speakers, frames)
    if len(speakers) > max_speakers:
        keep = sorted(
            torch.argsort(activity.sum(dim=0), descending=True, stable=True)[:max_speakers].tolist()
        )
        skips.add(
            f"speakers beyond data.max_speakers={max_speakers} dropped from a chunk",
            where,
            count=len(speakers) - max_speakers,
        )
        activity, speakers = activity[:, keep], [speakers[k] for k in keep]
    return activity, speakers


class RecordingChunks(Dataset):
    """Fixed, non-overlapping chunks of a recording set (the last, shorter chunk of each recording
    kept)."""

    def __init__(
        self,
        recordings: RecordingSet,
        chunk_seconds: float,
        sample_rate: int,
        max_speakers: int,
        skips: SkipLog,
        min_seconds: float = 1.0,
    ):
        self.recordings = recordings
        self.sample_rate = sample_rate
        self.max_speakers = max_speakers
        self.skips = skips
        self.items: list[tuple[str, float, float]] = []
        for uri in recordings.uris:
            for region in recordings.uems[uri].support():
                start = region.start
                while region.end - start >= min_seconds:
                    end = min(start + chunk_seconds, region.end)
                    self.items.append((uri, start, end))
                    start = end

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | Draw) -> dict:
        uri, start, end = self.items[
            draw_index(key)
        ]  # a chunk holds no randomness: only the index counts
        wave = load_segment(self.recordings.audio[uri], self.sample_rate, start, end - start)
        labels, _ = chunk_targets(
            self.recordings.references[uri],
            start,
            end,
            self.max_speakers,
            self.skips,
            f"{uri} {start:.1f}-{end:.1f}s",
        )
        return {"wave": wave, "labels": labels, "uri": uri, "start": start}


class SimulatedChunks(Dataset):
    """Mixtures of a seeded simulator, each cropped to at most ``chunk_seconds``. ``len`` is the
    mixtures per epoch (``count``); any index ``>= 0`` is a valid mixture, so
    :class:`EpochMixtureSampler` can give every epoch new ones.

    The crop's start is drawn from the mixture index and, with ``recrop_each_epoch`` (a fixed set
    of mixtures seen every epoch), the epoch too: over the epochs every part of every mixture is
    trained on, where one crop per index would leave the rest of each long mixture unused.
    """

    def __init__(
        self,
        simulator,
        count: int,
        chunk_seconds: float,
        max_speakers: int,
        skips: SkipLog,
        recrop_each_epoch: bool = False,
    ):
        self.simulator = simulator
        self.count = count
        self.chunk_seconds = chunk_seconds
        self.max_speakers = max_speakers
        self.skips = skips
        self.recrop_each_epoch = recrop_each_epoch

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, key: int | Draw) -> dict:
        index = draw_index(key)  # the mixture index alone seeds the mixture
        mixture = self.simulator(index)
        start = 0.0
        if mixture.duration > self.chunk_seconds:
            epoch = [key.epoch] if self.recrop_each_epoch and isinstance(key, Draw) else []
            rng = np.random.default_rng([self.simulator.seed, index, 1, *epoch])
            start = round(float(rng.uniform(0, mixture.duration - self.chunk_seconds)), 2)
        end = min(mixture.duration, start + self.chunk_seconds)
        reference = Annotation(uri=mixture.uri)
        for speaker, s, e in mixture.turns:
            reference[Segment(s, e), len(reference)] = speaker
        labels, _ = chunk_targets(reference, start, end, self.max_speakers, self.skips, mixture.uri)
        rate = mixture.sample_rate
        return {
            "wave": mixture.wave[int(round(start * rate)) : int(round(end * rate))],
            "labels": labels,
            "uri": mixture.uri,
            "start": start,
        }


class EpochMixtureSampler(EpochSeededSampler):
    """Epoch ``e`` draws mixtures ``e * count .. (e + 1) * count - 1`` in a seeded order: every
    epoch new conversations (a fixed set of a few hundred is memorised within a few epochs), yet the
    whole run is a function of ``seed``. With ``fresh=False`` every epoch reshuffles mixtures
    ``0 .. count - 1``.
    """

    def __init__(self, count: int, seed: int = 0, fresh: bool = True):
        super().__init__(seed)
        self.count = count
        self.fresh = fresh

    def __len__(self) -> int:
        return self.count

    def order(self) -> list[int]:
        """This epoch's mixture indices in a seeded order."""
        offset = self.epoch * self.count if self.fresh else 0
        return (offset + self.rng().permutation(self.count)).tolist()


def collate_chunks(items: list[dict]) -> dict:
    """Pad waveforms, labels (frames and speakers) and build the masks the loss needs."""
    lengths = torch.tensor([it["wave"].numel() for it in items])
    waves = torch.zeros(len(items), int(lengths.max()))
    frames = max(it["labels"].shape[0] for it in items)
    speakers = max(1, max(it["labels"].shape[1] for it in items))
    labels = torch.zeros(len(items), frames, speakers)
    for i, it in enumerate(items):
        waves[i, : lengths[i]] = it["wave"]
        labels[i, : it["labels"].shape[0], : it["labels"].shape[1]] = it["labels"]
    return {
        "wave": waves,
        "length": lengths,
        "labels": labels,
        "label_frames": torch.tensor([it["labels"].shape[0] for it in items]),
        "num_speakers": torch.tensor([it["labels"].shape[1] for it in items]),
        "uri": [it["uri"] for it in items],
        "start": [it["start"] for it in items],
    }


@dataclass(frozen=True)
class DiarizationDataInfo(DataInfo):
    """What a diarization task needs besides the rate: the most speakers a training chunk holds."""

    max_speakers: int


class DiarizationDataModule(AudioDataModule):
    """Diarization data: training on simulated conversations or on recording chunks; validation on
    chunks of a recording set; test on whole recordings (diarized by the task's chunked inference).

    Args:
        root: dataset folder; relative paths are under it.
        sets: ``{name: {lst, rttm, uem, audio}}`` recording sets (files or ``{uri}`` templates).
        train: ``simulated`` (mixtures on the fly, see ``simulation``) or the name of a set in
        ``sets``.
        val: name of the set whose chunks are scored every epoch.
        test: names of the sets diarized and scored by DER after training.
        simulation: the on-the-fly simulator: ``tree`` (VoxCeleb layout), ``speakers_file``,
            ``noise_dir``, ``rir_dir``, ``count`` (training mixtures), ``seed`` and the
            :class:`~sonolab.data.mixtures.MixtureConfig` fields.
        simulated_sets: ``{name: {tree, speakers_file, exclude_file, count, seed, subset,
            ...MixtureConfig}}``: sets written once (prepare_data) to ``<root>/<name>_<hash of the
            parameters>/`` and then read like any other set.
        chunk_seconds: length of training and validation chunks.
        max_speakers: speakers per chunk at most (the model's attractors during training).
        sample_rate: model rate (files at other rates are resampled).
        on_missing: a URI missing from list / audio / RTTM / UEM: ``error`` or ``skip`` (counted).
        synth: when given, the synthetic speaker corpus (VoxCelebSynthConfig fields) is generated
        into
            ``synth_root`` first, for simulations that draw from it.
        verify_audio: check every recording of a set (header, rate, channels, length, last sample;
            cached in ``<root>/.sonolab/``) when the set is first read, so a truncated file is found
            at start-up, not when inference reaches it.
        on_bad_audio: a recording that fails the check: ``error`` (all listed) or ``skip`` (left
        out, counted).
    """

    def __init__(
        self,
        root: str,
        sets: dict | None = None,
        train: str = "simulated",
        val: str | None = None,
        test: list[str] | None = None,
        simulation: dict | None = None,
        simulated_sets: dict | None = None,
        chunk_seconds: float = 30.0,
        max_speakers: int = 4,
        sample_rate: int = 16000,
        batch_size: int = 8,
        num_workers: int = 2,
        on_missing: str = "error",
        synth: dict | None = None,
        synth_root: str | None = None,
        pin_memory: bool = False,
        seed: int = 0,
        verify_audio: bool = True,
        on_bad_audio: str = "error",
    ):
        super().__init__()
        check_settings(
            "data",
            SETTING_RULES,
            chunk_seconds=chunk_seconds,
            max_speakers=max_speakers,
            batch_size=batch_size,
            on_missing=on_missing,
            on_bad_audio=on_bad_audio,
        )
        self.root = Path(root)
        self.sets_cfg = {k: dict(v) for k, v in (sets or {}).items()}
        self.simulated_cfg = {k: dict(v) for k, v in (simulated_sets or {}).items()}
        self.simulated_dirs: dict[str, str] = {}
        for name, spec in self.simulated_cfg.items():
            # One folder per parameter set, so changing a simulated set (in a sweep, say) writes a
            # new one beside the old instead of clashing with it.
            digest = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode())
            folder = f"{name}_{digest.hexdigest()[:8]}"
            self.simulated_dirs[name] = folder
            subset = spec.get("subset", "test")
            self.sets_cfg.setdefault(
                name,
                {
                    "lst": f"{folder}/{subset}.lst",
                    "rttm": f"{folder}/{subset}.rttm",
                    "uem": f"{folder}/{subset}.uem",
                    "audio": f"{folder}/audio/{{uri}}.wav",
                },
            )
        self.train_source = train
        self.val_name = val
        self.test_names = list(test or [])
        for name in [n for n in [val, *self.test_names] if n] + (
            [] if train == "simulated" else [train]
        ):
            if name not in self.sets_cfg:
                raise ConfigValueError(
                    "data.sets", f"a set named {name!r} (known: {sorted(self.sets_cfg)})", name
                )
        self.simulation = dict(simulation or {})
        self.chunk_seconds = chunk_seconds
        self.max_speakers = max_speakers
        self.sample_rate = sample_rate
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.on_missing = on_missing
        self.synth = dict(synth) if synth else None
        self.synth_root = Path(synth_root) if synth_root else None
        self.pin_memory = pin_memory
        self.seed = seed
        self.verify_audio = verify_audio
        self.on_bad_audio = on_bad_audio
        self.recording_sets: dict[str, RecordingSet] = {}
        self.train_set: Dataset | None = None

    synth_generator = (
        "sonolab.data.synth.voxceleb.VoxCelebSynthConfig",
        "sonolab.data.synth.voxceleb.generate_voxceleb",
    )
    no_augment_reason = (
        "it adds noise and reverberation in its simulation "
        "(data.simulation.noise_dir / rir_dir / snr_db / reverb_prob)"
    )
    evaluate_arguments = {
        "recordings": "a folder of audio files (searched recursively) or a list of audio paths, "
        "one per line (relative to the list), diarized as the one test set; the URI is the file "
        "name. One RTTM and timeline per recording.",
        "rttm": "references to score against (DER, both setups): one RTTM file or a {uri} template",
        "uem": "scored regions (file or {uri} template); without one, each whole recording is "
        "scored",
    }
    held_out_hint = "validate on a set that is not in data.test"

    def validation_is_tested(self) -> bool:
        """Whether the validation set is also a test set (by name or by listing file)."""
        if self.val_name is None:
            return False
        listing = lambda name: (self.root / str(self.sets_cfg[name].get("lst", name))).resolve()  # noqa: E731
        return any(
            name == self.val_name or listing(name) == listing(self.val_name)
            for name in self.test_names
        )

    @staticmethod
    def evaluation_config(data: dict, args: dict) -> dict:
        """The run's ``data`` config with evaluate.py's arguments applied: ``recordings`` (a folder
        of audio files or a list of them; optional ``rttm`` and ``uem``, files or ``{uri}``
        templates) becomes the one test set, named after the folder or list."""
        data = dict(data)
        if args.get("recordings") is None:
            for key in ("rttm", "uem"):
                if args.get(key) is not None:
                    raise ConfigValueError(
                        key, "recordings=<folder or list> to go with it", args[key]
                    )
            return data
        source = Path(from_cwd(args["recordings"]))
        name = source.stem if source.is_file() else source.name
        spec = {"recordings": str(source)}
        for key in ("rttm", "uem"):
            if args.get(key) is not None:
                spec[key] = from_cwd(args[key])
        data["sets"] = {**dict(data.get("sets") or {}), name: spec}
        data["test"] = [name]
        return data

    @property
    def info(self) -> DiarizationDataInfo:
        """What the task needs: the sample rate and the most speakers a training chunk holds."""
        return DiarizationDataInfo(sample_rate=self.sample_rate, max_speakers=self.max_speakers)

    def _simulator(self, spec: dict, prefix: str, where: str):
        spec = dict(spec)
        keys = set(MixtureConfig.__dataclass_fields__) - {
            "sample_rate"
        }  # the rate is data.sample_rate
        unknown = sorted(set(spec) - keys - SIMULATOR_KEYS)
        if unknown:
            raise ConfigValueError(
                f"{where}.{unknown[0]}", f"one of {sorted(keys | SIMULATOR_KEYS)}", unknown[0]
            )
        if not spec.get("tree"):
            raise ConfigValueError(
                f"{where}.tree",
                "a VoxCeleb-layout folder of single-speaker audio",
                spec.get("tree"),
            )
        config = MixtureConfig(
            **{k: v for k, v in spec.items() if k in keys}, sample_rate=self.sample_rate
        )
        path = lambda key: under_root(self.root, spec.get(key))  # noqa: E731
        return simulator_from_tree(
            path("tree"),
            config,
            int(spec.get("seed", 0)),
            path("speakers_file"),
            path("noise_dir"),
            path("rir_dir"),
            prefix,
            exclude_file=path("exclude_file"),
        )

    @property
    def synth_target(self) -> Path:
        """The synthetic speaker corpus goes to ``synth_root`` (the simulations draw from it)."""
        return self.synth_root

    def prepare_data(self) -> None:
        """Generate the synthetic speaker corpus and write the simulated sets (no-ops once done)."""
        super().prepare_data()
        for name, spec in self.simulated_cfg.items():
            simulator = self._simulator(spec, f"{name}_", f"data.simulated_sets.{name}")
            stats = write_mixture_set(
                self.root / self.simulated_dirs[name],
                simulator,
                int(spec.get("count", 20)),
                spec.get("subset", "test"),
            )
            log.info(
                "simulated set %s: %s",
                name,
                describe(stats["statistics"], spec.get("expected_overlap_ratio")),
            )

    def recordings(self, name: str) -> RecordingSet:
        """The recording set ``name``, read on first use (URI matching, skips counted)."""
        if name not in self.recording_sets:
            skips = SkipLog()
            spec = self.sets_cfg[name]
            unusable = partial(self._unusable_audio, name) if self.verify_audio else None
            if "recordings" in spec:
                self.recording_sets[name] = RecordingSet.from_recordings(
                    name,
                    spec["recordings"],
                    spec.get("rttm"),
                    spec.get("uem"),
                    self.on_missing,
                    skips,
                    unusable,
                )
            else:
                self.recording_sets[name] = RecordingSet.from_files(
                    name,
                    self.root,
                    spec["lst"],
                    spec["rttm"],
                    spec["uem"],
                    spec["audio"],
                    self.on_missing,
                    skips,
                    unusable,
                )
            if self.verify_audio:
                self.recording_sets[name] = self._without_bad_audio(
                    self.recording_sets[name], skips
                )
            skips.report(log, f"recording set {name}")
            self.skipped.update(skips)
        return self.recording_sets[name]

    def _unusable_audio(self, name: str, paths: list[Path]) -> set[str]:
        """The files among ``paths`` that fail the audio pre-scan (absolute paths), found without
        acting on them: :meth:`_without_bad_audio` names or skips them (from the same cache)."""
        problems, _ = verify_audio_files(
            paths, self.sample_rate, True, cache_root=self.root, label=name
        )
        return set(problems)

    def _without_bad_audio(self, recordings: RecordingSet, skips: SkipLog) -> RecordingSet:
        """The set with the recordings that fail the audio pre-scan left out (``on_bad_audio=skip``,
        counted), or an error listing them all."""
        problems = screen_audio(
            list(recordings.audio.values()),
            f"recording set {recordings.name}",
            f"recordings the loader can read ({len(recordings.uris)} checked)",
            self.on_bad_audio,
            self.sample_rate,
            cache_root=self.root,
            label=recordings.name,
        )
        if not problems:
            return recordings
        bad = {
            uri for uri, path in recordings.audio.items() if str(Path(path).absolute()) in problems
        }
        for uri in bad:
            skips.add(
                "unreadable recording left out (data.on_bad_audio=skip)", str(recordings.audio[uri])
            )
        return recordings.restricted(set(recordings.uris) - bad)

    def setup(self, stage: str | None = None) -> None:
        """Read what ``stage`` uses: fit reads the training source, the validation and the test sets
        (so a bad test reference fails before training); test reads only the test sets."""
        if stage in (None, "fit") and self.train_set is None:
            if self.train_source == "simulated":
                self.train_set = SimulatedChunks(
                    self._simulator(self.simulation, "train_", "data.simulation"),
                    int(self.simulation.get("count", 1000)),
                    self.chunk_seconds,
                    self.max_speakers,
                    self.skipped,
                    recrop_each_epoch=not self._new_each_epoch,
                )
                sample = min(STATISTICS_MIXTURES, len(self.train_set))
                statistics = mixture_statistics(
                    self.train_set.simulator(i).activity() for i in range(sample)
                )
                log.info(
                    "training mixtures (the first %d): %s",
                    sample,
                    describe(statistics, self.simulation.get("expected_overlap_ratio")),
                )
            else:
                self.train_set = RecordingChunks(
                    self.recordings(self.train_source),
                    self.chunk_seconds,
                    self.sample_rate,
                    self.max_speakers,
                    self.skipped,
                )
                train = self.recordings(self.train_source)
                statistics = mixture_statistics(reference_activities(train.references, train.uems))
                log.info("training set %s: %s", self.train_source, describe(statistics))
        if stage in (None, "fit", "validate") and self.val_name:
            self.recordings(self.val_name)
        if stage in (None, "fit", "test"):
            for name in self.test_names:
                self.recordings(name)

    def _loader(self, dataset: Dataset, sampler: EpochSeededSampler | None = None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=None if sampler is None else start_at_epoch(sampler, self),
            num_workers=self.num_workers,
            collate_fn=collate_chunks,
            pin_memory=self.pin_memory,
            drop_last=sampler is not None,
            # workers outlive each pass: the epoch reaches the simulated mixtures and crops through
            # the sampler's keys, so nothing per epoch lives in a worker
            persistent_workers=self.num_workers > 0,
        )

    @property
    def _new_each_epoch(self) -> bool:
        return bool(self.simulation.get("new_each_epoch", True))

    def train_dataloader(self) -> DataLoader:
        """Shuffled training chunks; simulated ones new every epoch
        (``simulation.new_each_epoch``)."""
        sampler: EpochSeededSampler = ShuffleSampler(len(self.train_set), self.seed)
        if isinstance(self.train_set, SimulatedChunks):
            sampler = EpochMixtureSampler(len(self.train_set), self.seed, self._new_each_epoch)
        return self._loader(self.train_set, sampler=sampler)

    def has_validation(self) -> bool:
        """Whether a validation set is configured (``val``)."""
        return bool(self.val_name)

    def val_dataloader(self) -> DataLoader | list:
        """Chunks of the validation set, in order (none when ``val`` is null)."""
        if not self.val_name:
            return []
        return self._loader(
            RecordingChunks(
                self.recordings(self.val_name),
                self.chunk_seconds,
                self.sample_rate,
                self.max_speakers,
                self.skipped,
            )
        )

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test set, yielding each recording's URI (the task reads and diarizes it
        whole)."""
        return [
            DataLoader(
                _RecordingIndex(self.recordings(name)),
                batch_size=1,
                collate_fn=lambda items: items[0],
            )
            for name in self.test_names
        ]


class _RecordingIndex(Dataset):
    """The URIs of a recording set with its name, one per item (the task reads the audio chunk by
    chunk)."""

    def __init__(self, recordings: RecordingSet):
        self.recordings = recordings

    def __len__(self) -> int:
        return len(self.recordings.uris)

    def __getitem__(self, index: int) -> dict:
        return {"set": self.recordings.name, "uri": self.recordings.uris[index]}
