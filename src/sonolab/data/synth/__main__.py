"""Command line for the generated datasets.

``python -m sonolab.data.synth voxceleb --out DIR [--seed N ...]``: speakers in the VoxCeleb layout.
``python -m sonolab.data.synth mixtures --source TREE --out DIR [--count N --speakers 2:1 ...]``:
simulated conversations from a VoxCeleb-layout tree, in the AMI-excerpts layout, with statistics.
``python -m sonolab.data.synth esc50 --out DIR [--num-classes N ...]``: sound events in the ESC-50
layout.
``python -m sonolab.data.synth audioset --out DIR [--train-clips N ...]``: multi-label clips in
AudioSet's layout.
``python -m sonolab.data.synth soundscapes --source ESC50_TREE --out DIR [--seed N ...]``: sound
event soundscapes with strong labels in DESED's layout, from real ESC-50 / ESC-10 clips.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from ...cli import as_flags
from ...stopping import run_stoppable
from ..mixtures import SEGMENTERS, SOURCES, MixtureConfig, simulator_from_tree
from ..turn_statistics import describe
from .audioset import AudioSetSynthConfig, generate_audioset
from .esc50 import Esc50SynthConfig, generate_esc50
from .mixtures import write_mixture_set
from .soundscapes import SoundscapeSynthConfig, generate_soundscapes
from .voxceleb import VoxCelebSynthConfig, check_request, generate_voxceleb


def _mapping(text: str) -> dict[int, float]:
    """``"1:0.25,2:0.75"`` -> ``{1: 0.25, 2: 0.75}``."""
    try:
        return {int(k): float(v) for k, v in (item.split(":") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'count:value,...' (e.g. 1:0.5,2:0.5), found {text!r}"
        ) from None


def _numbers(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, found {text!r}"
        ) from None


def _add_config_flags(parser: argparse.ArgumentParser, config_class) -> None:
    """One ``--flag`` per field of a generator's config dataclass (bool, float, int or str)."""
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kinds = {"float": float, float: float, "str": str, str: str}
            parser.add_argument(flag, type=kinds.get(field.type, int), default=field.default)


def _config(args: argparse.Namespace, config_class):
    return config_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)})


def _add_voxceleb(sub) -> argparse.ArgumentParser:
    vox = sub.add_parser("voxceleb", help="speaker dataset in the VoxCeleb layout with trial lists")
    vox.add_argument(
        "--out", required=True, help="output folder (must not exist, or hold the same dataset)"
    )
    vox.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    _add_config_flags(vox, VoxCelebSynthConfig)
    return vox


def _add_generator(sub, name: str, help_text: str, config_class) -> argparse.ArgumentParser:
    """A subcommand taking ``--out`` and one flag per field of a generator's config."""
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument(
        "--out", required=True, help="output folder (must not exist, or hold the same dataset)"
    )
    _add_config_flags(parser, config_class)
    return parser


def _add_mixtures(sub) -> argparse.ArgumentParser:
    mix = sub.add_parser(
        "mixtures", help="simulated conversations (EEND recipe) in the AMI-excerpts layout"
    )
    default = MixtureConfig()
    mix.add_argument(
        "--source",
        required=True,
        help="VoxCeleb-layout tree of single-speaker audio (<speaker>/<session>/...)",
    )
    mix.add_argument(
        "--speakers-list", default=None, help="file of speaker ids to draw from (default: all)"
    )
    mix.add_argument(
        "--out", required=True, help="output folder (must not exist, or hold the same set)"
    )
    mix.add_argument("--count", type=int, default=20, help="number of mixtures")
    mix.add_argument(
        "--first-index", type=int, default=0, help="index of the first mixture in the seeded series"
    )
    mix.add_argument("--seed", type=int, default=0)
    mix.add_argument("--subset", default="test", help="name of the .lst / .rttm / .uem files")
    mix.add_argument("--prefix", default="mix", help="URIs are <prefix><index>")
    mix.add_argument(
        "--speakers",
        type=_mapping,
        default=default.speakers,
        help="speaker-count distribution, e.g. 1:0.25,2:0.75",
    )
    mix.add_argument(
        "--beta",
        type=_mapping,
        default=default.beta,
        help="mean silence (s) per speaker count, e.g. 2:2,3:5",
    )
    mix.add_argument(
        "--utterances-per-speaker",
        type=_numbers,
        default=default.utterances_per_speaker,
        help="min,max",
    )
    mix.add_argument(
        "--snr-db",
        type=_numbers,
        default=default.snr_db,
        help="SNRs of the added noise, e.g. 5,10,15,20",
    )
    mix.add_argument(
        "--noise-dir", default=None, help="noise files (e.g. MUSAN noise/); none = no noise"
    )
    mix.add_argument("--rir-dir", default=None, help="room impulse responses for reverberation")
    mix.add_argument("--reverb-prob", type=float, default=default.reverb_prob)
    mix.add_argument(
        "--sources",
        choices=SOURCES,
        default=default.sources,
        help="pieces placed per speaker: whole utterances, or speech segments as the EEND recipe",
    )
    mix.add_argument(
        "--min-segment-seconds",
        type=float,
        default=default.min_segment_seconds,
        help="shortest segment kept with --sources segments (the recipe: 1.5)",
    )
    mix.add_argument(
        "--segmenter",
        choices=SEGMENTERS,
        default=default.segmenter,
        help="speech detector for the turns / segments",
    )
    mix.add_argument(
        "--expected-overlap-ratio",
        type=float,
        default=None,
        help="the overlap ratio the set should have (printed beside the measured one)",
    )
    mix.add_argument("--sample-rate", type=int, default=default.sample_rate)
    return mix


def main(argv: list[str] | None = None) -> int:
    """Generate a synthetic dataset: sonolab synth {voxceleb,esc50,audioset,mixtures,soundscapes}
    --out DIR

    (also ``python -m sonolab.data.synth``; each dataset's flags as its --help lists them)."""
    parser = argparse.ArgumentParser(prog="python -m sonolab.data.synth", description=__doc__)
    sub = parser.add_subparsers(dest="dataset", required=True)
    _add_voxceleb(sub)
    mix = _add_mixtures(sub)
    esc = _add_generator(
        sub,
        "esc50",
        "sound-event clips in the ESC-50 layout (meta/esc50.csv + audio/)",
        Esc50SynthConfig,
    )
    aus = _add_generator(
        sub,
        "audioset",
        "multi-label clips in AudioSet's layout (class index, segment CSVs, audio/)",
        AudioSetSynthConfig,
    )
    scapes = _add_generator(
        sub,
        "soundscapes",
        "sound-event soundscapes with strong labels in DESED's layout, from ESC-50 / ESC-10 clips",
        SoundscapeSynthConfig,
    )
    args = parser.parse_args(as_flags(parser, sys.argv[1:] if argv is None else argv))
    start = time.time()
    generators = {  # name: (config class, writer, parser, summary of what was written)
        "soundscapes": (
            SoundscapeSynthConfig,
            generate_soundscapes,
            scapes,
            lambda c, out: f"events per part {out['events']} of {len(out['classes'])} classes",
        ),
        "audioset": (
            AudioSetSynthConfig,
            generate_audioset,
            aus,
            lambda c, out: (
                f"{c.train_clips} training and {c.eval_clips} eval clips; training clips per "
                f"class: {out['train_label_counts']}"
            ),
        ),
        "esc50": (
            Esc50SynthConfig,
            generate_esc50,
            esc,
            lambda c, out: (
                f"{c.num_classes} classes x {c.clips_per_class} clips: {', '.join(out['classes'])}"
            ),
        ),
    }
    if args.dataset in generators:
        config_class, generate, sub_parser, summary = generators[args.dataset]
        try:
            config = _config(args, config_class)
        except ValueError as err:
            sub_parser.error(str(err))
        content = generate(args.out, config)
        print(
            f"wrote {args.out} in {time.time() - start:.1f}s: {summary(config, content)}",
            file=sys.stderr,
        )
        return 0
    if args.dataset == "mixtures":
        try:
            config = MixtureConfig(
                speakers=args.speakers,
                beta=args.beta,
                utterances_per_speaker=args.utterances_per_speaker,
                snr_db=args.snr_db,
                reverb_prob=args.reverb_prob,
                sample_rate=args.sample_rate,
                sources=args.sources,
                min_segment_seconds=args.min_segment_seconds,
                segmenter=args.segmenter,
            )
            simulator = simulator_from_tree(
                args.source,
                config,
                args.seed,
                args.speakers_list,
                args.noise_dir,
                args.rir_dir,
                args.prefix,
            )
        except ValueError as err:
            mix.error(str(err))
        content = write_mixture_set(args.out, simulator, args.count, args.subset, args.first_index)
        print(json.dumps(content["statistics"], indent=2))
        print(describe(content["statistics"], args.expected_overlap_ratio), file=sys.stderr)
        print(
            f"wrote {args.count} mixtures to {args.out} in {time.time() - start:.1f}s",
            file=sys.stderr,
        )
        return 0
    cfg = _config(args, VoxCelebSynthConfig)
    try:
        check_request(cfg)
    except ValueError as err:
        parser.error(str(err))  # exit status 2, nothing written
    out = generate_voxceleb(args.out, cfg, workers=args.workers)
    print(
        f"wrote {out} in {time.time() - start:.1f}s: {cfg.num_val_trials} validation and "
        f"{cfg.num_test_trials} "
        "test trials, half of them target",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_stoppable(main))
