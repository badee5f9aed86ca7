"""Pure readers of benchmark file formats; every error names the file (and line) and what was expected."""

from .voxceleb import Trial, Utterance, check_trial_audio, read_speaker_list, read_trial_list, scan_speaker_tree

__all__ = ["Trial", "Utterance", "check_trial_audio", "read_speaker_list", "read_trial_list", "scan_speaker_tree"]
