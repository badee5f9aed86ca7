"""Pure readers of benchmark file formats; every error names the file (and line) and what was
expected.

verification: VoxCeleb trees, trial and speaker lists; diarization: RTTM, UEM, URI lists;
tagging: ESC-50 metadata, AudioSet class indices, segment CSVs and JSON datafiles; sound event
detection: DESED's strong / weak label and duration TSVs.
"""

from .audioset import (
    AudioSetClip,
    AudioSetLabel,
    read_class_labels,
    read_json_datafile,
    read_segments,
)
from .desed import StrongEvent, read_durations, read_strong_labels, read_weak_labels
from .esc50 import Esc50Clip, read_esc50_meta
from .rttm import (
    find_recordings,
    match_uris,
    read_rttm,
    read_uem,
    read_uri_list,
    write_rttm,
    write_uem,
)
from .voxceleb import (
    Trial,
    Utterance,
    check_trial_audio,
    read_speaker_list,
    read_trial_list,
    scan_speaker_tree,
)

__all__ = [
    "AudioSetClip",
    "AudioSetLabel",
    "Esc50Clip",
    "StrongEvent",
    "Trial",
    "Utterance",
    "check_trial_audio",
    "find_recordings",
    "match_uris",
    "read_class_labels",
    "read_durations",
    "read_esc50_meta",
    "read_json_datafile",
    "read_rttm",
    "read_segments",
    "read_speaker_list",
    "read_strong_labels",
    "read_trial_list",
    "read_uem",
    "read_uri_list",
    "read_weak_labels",
    "scan_speaker_tree",
    "write_rttm",
    "write_uem",
]
