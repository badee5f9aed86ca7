"""The VoxCeleb datamodule's settings, one group each: training crops (``data.crops``), evaluation
lists (``data.lists``), the score-normalisation cohort (``data.cohort``) and how audio files are
read and checked (``data.audio``).

Each group is a frozen dataclass that checks its values when built, naming the
``data.<group>.<key>`` it refuses; :data:`MOVED_KEYS` says where each key of the former flat
``data`` block went.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..utils.errors import ConfigValueError, check_settings
from .audio import AUDIO_EXTENSIONS
from .readers.voxceleb import DUPLICATE_POLICIES

# data.<old key> -> <group>.<key>: the flat keys of configs written before the grouping
MOVED_KEYS = {
    "crop_seconds": "crops.seconds",
    "crop_frames": "crops.frames",
    "speed_perturb": "crops.speed_perturb",
    "speaker_balanced": "crops.speaker_balanced",
    "trial_dir": "lists.trial_dir",
    "val_trials": "lists.val_trials",
    "val_trial_dir": "lists.val_trial_dir",
    "val_holdout": "lists.val_holdout",
    "test_trials": "lists.test_trials",
    "eval_batch_size": "lists.eval_batch_size",
    "eval_max_seconds": "lists.eval_max_seconds",
    "duplicate_trials": "lists.duplicate_trials",
    "cohort_utts_per_speaker": "cohort.utts_per_speaker",
    "extensions": "audio.extensions",
    "resample": "audio.resample",
    "channel": "audio.channel",
    "min_audio_seconds": "audio.min_audio_seconds",
}

HOLDOUT_DEFAULTS = {"speakers": 100, "trials": 20000, "seed": 0}


def frames_to_samples(
    frames: int, sample_rate: int, window_ms: float = 25.0, shift_ms: float = 10.0
) -> int:
    """Samples that give exactly ``frames`` analysis frames: (frames - 1) shifts plus one window."""
    if frames < 1:
        raise ConfigValueError("data.crops.frames", "at least 1 frame", frames)
    return (frames - 1) * int(round(sample_rate * shift_ms / 1000)) + int(
        round(sample_rate * window_ms / 1000)
    )


@dataclass(frozen=True)
class CropSettings:
    """``data.crops``: the random training crops.

    Args:
        seconds: crop length.
        frames: the crop length in 25 ms / 10 ms fbank frames instead, as WeSpeaker counts it
            (``num_frms: 200`` = 32,240 samples at 16 kHz); overrides ``seconds`` when given.
        speed_perturb: 0.9 / 1.0 / 1.1 speed with tripled speaker labels.
        speaker_balanced: draw speakers uniformly instead of utterances.
    """

    seconds: float = 2.0
    frames: int | None = None
    speed_perturb: bool = False
    speaker_balanced: bool = False

    def __post_init__(self) -> None:
        check_settings(
            "data.crops",
            {"seconds": (lambda v: v > 0, "a positive crop length in seconds")},
            seconds=self.seconds,
        )

    def samples(self, sample_rate: int) -> int:
        """The crop length in samples at ``sample_rate``."""
        if self.frames:
            return frames_to_samples(self.frames, sample_rate)
        return int(self.seconds * sample_rate)


@dataclass(frozen=True)
class TrialListSettings:
    """``data.lists``: the trial lists scored, and how their utterances are embedded.

    Args:
        trial_dir: folder the trial lists' paths are relative to (VoxCeleb1's ``wav``).
        val_trials: trial list scored every epoch (``val/eer``); null = the first test list. For
            checkpoint selection it must not be a test list: hold out training speakers with
            ``val_holdout`` or ``python -m sonolab.data.holdout``.
        val_trial_dir: folder the validation list's paths are relative to (null: ``trial_dir``; the
            training tree for a held-out speakers' list).
        val_holdout: ``{speakers, trials, seed}``: hold that many training speakers out at start-up
            and validate on trials over them (written to the data folder's ``.sonolab/`` cache), in
            place of ``val_trials``.
        test_trials: ``{name: trial list}`` scored after training (e.g. vox1_O, vox1_E, vox1_H).
        eval_batch_size: utterances per evaluation batch at most, longest first (1 = no padding,
            exact full-length embeddings).
        eval_batch_seconds: padded seconds of audio per evaluation batch at most (the batch's
            longest utterance x its count; null = no limit; a longer utterance is a batch alone).
        eval_max_seconds: truncate evaluation utterances (null = full length).
        duplicate_trials: a pair listed twice in a trial list: ``error`` or ``drop`` (scored once,
            counted).
    """

    trial_dir: str = "wav"
    val_trials: str | None = None
    val_trial_dir: str | None = None
    val_holdout: dict | None = None
    test_trials: dict[str, str] = field(default_factory=dict)
    eval_batch_size: int = 1
    eval_batch_seconds: float | None = None
    eval_max_seconds: float | None = None
    duplicate_trials: str = "error"

    def __post_init__(self) -> None:
        check_settings(
            "data.lists",
            {
                "eval_batch_size": (lambda v: v >= 1, "at least 1"),
                "eval_batch_seconds": (
                    lambda v: v is None or v > 0,
                    "null or a positive number of seconds",
                ),
                "eval_max_seconds": (
                    lambda v: v is None or v > 0,
                    "null or a positive number of seconds",
                ),
                "duplicate_trials": (
                    lambda v: v in DUPLICATE_POLICIES,
                    " or ".join(DUPLICATE_POLICIES),
                ),
            },
            eval_batch_size=self.eval_batch_size,
            eval_batch_seconds=self.eval_batch_seconds,
            eval_max_seconds=self.eval_max_seconds,
            duplicate_trials=self.duplicate_trials,
        )
        object.__setattr__(self, "test_trials", dict(self.test_trials or {}))
        if self.val_holdout:
            unknown = sorted(set(self.val_holdout) - set(HOLDOUT_DEFAULTS))
            if unknown:
                raise ConfigValueError(
                    f"data.lists.val_holdout.{unknown[0]}",
                    f"a key of {', '.join(HOLDOUT_DEFAULTS)}",
                    self.val_holdout,
                )
            if self.val_trials is not None:
                raise ConfigValueError(
                    "data.lists.val_holdout",
                    "null when data.lists.val_trials is given (one validation list)",
                    self.val_holdout,
                )
            object.__setattr__(self, "val_holdout", {**HOLDOUT_DEFAULTS, **self.val_holdout})


@dataclass(frozen=True)
class CohortSettings:
    """``data.cohort``: the training utterances embedded for score normalisation.

    Args:
        utts_per_speaker: training utterances per speaker embedded as the AS-norm cohort and for the
            mean embedding (0 = none; needed for mean subtraction and AS-norm), drawn at random
            (seeded) and spread over the speaker's sessions; -1 = every training utterance
            (WeSpeaker's cohort and mean: all of VoxCeleb2 dev).
    """

    utts_per_speaker: int = 0

    def __post_init__(self) -> None:
        check_settings(
            "data.cohort",
            {
                "utts_per_speaker": (
                    lambda v: v >= -1,
                    "0 (no cohort), a count, or -1 (every training utterance)",
                )
            },
            utts_per_speaker=self.utts_per_speaker,
        )


@dataclass(frozen=True)
class AudioReadSettings:
    """``data.audio``: which files are taken and how they are read and checked.

    Args:
        extensions: audio extensions accepted in the tree; other files are left out and counted.
        resample: files at another rate than ``data.sample_rate`` are resampled (false: rejected).
        channel: multi-channel files: null averages the channels, an index (from 0) picks one.
        min_audio_seconds: shorter files count as bad in the pre-scan (``data.verify_audio``; one
            25 ms analysis frame by default).
    """

    extensions: tuple[str, ...] = AUDIO_EXTENSIONS
    resample: bool = True
    channel: int | None = None
    min_audio_seconds: float = 0.025

    def __post_init__(self) -> None:
        check_settings(
            "data.audio",
            {
                "channel": (
                    lambda v: v is None or v >= 0,
                    "null (average the channels) or a channel index from 0",
                ),
                "min_audio_seconds": (lambda v: v >= 0, "0 or more seconds"),
            },
            channel=self.channel,
            min_audio_seconds=self.min_audio_seconds,
        )
        object.__setattr__(self, "extensions", tuple(self.extensions))
