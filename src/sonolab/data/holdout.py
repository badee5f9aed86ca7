"""Validation trials from held-out training speakers, so that checkpoint selection never sees a test
list.

``python -m sonolab.data.holdout --root /data/voxceleb --train-dir vox2_dev/wav --speakers 100
--trials 20000`` picks ``--speakers`` speakers of the training tree at random (seeded), writes the
others to ``<out>/train_speakers.txt`` (``data.train_speakers``) and a trial list over the held-out
ones to ``<out>/val_trials.txt`` (``data.lists.val_trials``, its paths relative to the training
tree: ``data.lists.val_trial_dir``): half target pairs across sessions, half non-target, each pair
once. ``--out`` defaults to the training tree's parent folder (``vox2_dev/`` above). Existing files
are not overwritten. ``data.lists.val_holdout={speakers, trials, seed}`` does the same at start-up
without the command (the list is written to the data folder's ``.sonolab/`` cache).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..cli import as_flags
from ..utils.errors import ConfigValueError
from .readers.voxceleb import Utterance, scan_speaker_tree, trial_line
from .synth.voxceleb import make_trials


def hold_out(
    utterances: list[Utterance],
    speakers: int,
    trials: int,
    seed: int = 0,
    where: str = "the training tree",
) -> tuple[list[str], list[tuple[int, str, str]]]:
    """Hold ``speakers`` of the speakers of ``utterances`` out (seeded): the held-out speakers and a
    trial list over their utterances (half target pairs across sessions, half non-target)."""
    by_speaker: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for utt in utterances:
        by_speaker[utt.speaker].append((utt.path, utt.session))
    names = sorted(by_speaker)
    if not 2 <= speakers < len(names):
        raise ConfigValueError(
            "holdout speakers", f"2..{len(names) - 1} ({where} has {len(names)} speakers)", speakers
        )
    rng = np.random.default_rng([seed, 17])
    held = sorted(names[i] for i in rng.choice(len(names), speakers, replace=False))
    pools = {s: by_speaker[s] for s in held}
    # Target pairs come from different sessions (VoxCeleb's videos); a corpus with one session per
    # speaker (read speech) has none, and then any two utterances of a speaker make a target pair.
    cross_session = any(len({session for _, session in pool}) > 1 for pool in pools.values())
    try:
        return held, make_trials(pools, trials, rng, cross_session=cross_session)
    except ValueError as err:
        raise ConfigValueError(
            "holdout trials", f"a number the {speakers} held-out speakers can give ({err})", trials
        ) from err


def main(argv: list[str] | None = None) -> int:
    """Hold speakers out of a VoxCeleb tree for validation: sonolab holdout <flags>

    Writes ``train_speakers.txt`` and ``val_trials.txt``; prints where and how many (also
    ``python -m sonolab.data.holdout``)."""
    parser = argparse.ArgumentParser(
        prog="python -m sonolab.data.holdout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--root", required=True, help="dataset folder (data.root)")
    parser.add_argument(
        "--train-dir", default="vox2_dev/wav", help="training tree under the root (data.train_dir)"
    )
    parser.add_argument(
        "--speakers", type=int, default=100, help="speakers held out for validation"
    )
    parser.add_argument("--trials", type=int, default=20000, help="validation trials (half target)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=None, help="folder for the two files (default: the tree's parent)"
    )
    args = parser.parse_args(as_flags(parser, sys.argv[1:] if argv is None else argv))
    train_root = Path(args.root) / args.train_dir
    out = Path(args.out) if args.out else train_root.parent
    targets = [out / "train_speakers.txt", out / "val_trials.txt"]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise FileExistsError(f"{', '.join(existing)} exist: remove them or choose --out")
    utterances = scan_speaker_tree(train_root)
    held, trials = hold_out(utterances, args.speakers, args.trials, args.seed, str(train_root))
    remaining = sorted({u.speaker for u in utterances} - set(held))
    out.mkdir(parents=True, exist_ok=True)
    targets[0].write_text(
        "".join(f"{s}\n" for s in remaining), encoding="utf-8", errors="surrogateescape"
    )
    targets[1].write_text(
        "".join(trial_line(*trial) for trial in trials),
        encoding="utf-8",
        errors="surrogateescape",
    )
    print(
        f"{targets[0]}: {len(remaining)} training speakers\n{targets[1]}: {len(trials)} trials "
        "over "
        f"{args.speakers} held-out speakers (paths relative to {train_root})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
