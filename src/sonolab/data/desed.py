"""DESED's layout (DCASE task 4) as a tagging datamodule: clips with weak labels train, clips with
strong labels validate and test. Their clip labels are the classes of their events; the events
themselves (onset, offset, class) are kept for the frame- and event-level scoring of sound event
detection."""

from __future__ import annotations

import logging
from pathlib import Path

from ..utils.errors import ConfigValueError, DataFormatError
from ..utils.io import under_root
from .readers.desed import StrongEvent, read_strong_labels, read_weak_labels
from .tagging import ClipDataModule, TaggedClip, listings_overlap

log = logging.getLogger(__name__)


class DesedDataModule(ClipDataModule):
    """Soundscapes in DESED's layout, several labels per clip.

    Args:
        root: dataset folder.
        train / train_audio: the weak-label TSV (``filename  event_labels``) and its audio folder.
        val / val_audio, test / test_audio: strong-label TSVs (``filename  onset  offset
            event_label``) and their audio folders; ``val`` may be null.
        classes: the class names in index order; null: every label the listings use, sorted.
        clip_settings: :class:`~sonolab.data.tagging.ClipDataModule`'s (10 s clips by default;
            ``synth``: :class:`~sonolab.data.synth.soundscapes.SoundscapeSynthConfig` fields, the
            soundscapes generated from ESC-50-layout clips into ``root`` first).
    """

    multi_label = True
    synth_generator = (
        "sonolab.data.synth.soundscapes.SoundscapeSynthConfig",
        "sonolab.data.synth.soundscapes.generate_soundscapes",
    )
    test_name = "eval"

    def __init__(
        self,
        root: str,
        train: str = "metadata/train/weak.tsv",
        train_audio: str = "audio/train/weak",
        val: str | None = "metadata/validation/validation.tsv",
        val_audio: str = "audio/validation",
        test: str = "metadata/eval/eval.tsv",
        test_audio: str = "audio/eval",
        classes: list[str] | None = None,
        **clip_settings,
    ):
        super().__init__(root, **{"clip_seconds": 10.0, **clip_settings})
        self.listings = {"train": train, "val": val, "test": test}
        self.audio_dirs = {"train": train_audio, "val": val_audio, "test": test_audio}
        self.classes = list(classes) if classes else None
        # the events of the strong-label parts, by clip path: what sound event detection scores
        self.events: dict[str, dict[Path, list[StrongEvent]]] = {}

    def validation_is_tested(self) -> bool:
        """Whether the validation listing is the test listing."""
        return listings_overlap(self.root, self.listings["val"], self.listings["test"])

    def _read(self) -> dict[str, list[TaggedClip]]:
        weak_path = under_root(self.root, self.listings["train"])
        weak = read_weak_labels(weak_path, self.classes)
        strong: dict[str, tuple[Path, list[StrongEvent], list[str]]] = {}
        for part in ("val", "test"):
            if self.listings[part] is not None:
                path = under_root(self.root, self.listings[part])
                strong[part] = (path, *read_strong_labels(path, self.classes))
        if self.classes is None:
            used = {label for labels in weak.values() for label in labels}
            used |= {e.label for _, events, _ in strong.values() for e in events}
            self.classes = sorted(used)
        if not self.classes:
            raise DataFormatError(weak_path, "event labels in the listings", found="none")
        self.class_names = list(self.classes)
        index = {name: k for k, name in enumerate(self.class_names)}
        parts: dict[str, list[TaggedClip]] = {"val": []}
        audio = under_root(self.root, self.audio_dirs["train"])
        clips = [
            TaggedClip(audio / name, tuple(sorted(index[label] for label in labels)))
            for name, labels in weak.items()
        ]
        parts["train"] = self._readable_clips(clips, weak_path, "desed_train")
        for part, (path, events, names) in strong.items():
            audio = under_root(self.root, self.audio_dirs[part])
            by_clip: dict[Path, list[StrongEvent]] = {audio / name: [] for name in names}
            for e in events:
                by_clip[audio / e.filename].append(e)
            clips = [
                TaggedClip(clip, tuple(sorted({index[e.label] for e in found})))
                for clip, found in by_clip.items()
            ]
            parts[part] = self._readable_clips(clips, path, f"desed_{part}")
            self.events[part] = {c.path: by_clip[c.path] for c in parts[part]}
        for part in ("train", "test"):
            if not parts.get(part):
                raise ConfigValueError(f"data.{part}", "a listing with clips", self.listings[part])
        self.skipped.report(log, "DESED listings")
        return parts
