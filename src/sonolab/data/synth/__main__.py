"""Command line: ``python -m sonolab.data.synth voxceleb --out DIR [--seed N ...]``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from .voxceleb import VoxCelebSynthConfig, check_request, generate_voxceleb


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and write the requested synthetic dataset."""
    parser = argparse.ArgumentParser(prog="python -m sonolab.data.synth", description=__doc__)
    sub = parser.add_subparsers(dest="dataset", required=True)
    vox = sub.add_parser("voxceleb", help="speaker dataset in the VoxCeleb layout with trial lists")
    vox.add_argument("--out", required=True, help="output folder (must not exist, or hold the same dataset)")
    vox.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    for field in dataclasses.fields(VoxCelebSynthConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            vox.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = float if field.type in ("float", float) else int
            vox.add_argument(flag, type=kind, default=field.default)
    args = parser.parse_args(argv)
    cfg = VoxCelebSynthConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(VoxCelebSynthConfig)})
    try:
        check_request(cfg)
    except ValueError as err:
        parser.error(str(err))  # exit status 2, nothing written
    start = time.time()
    out = generate_voxceleb(args.out, cfg, workers=args.workers)
    print(f"wrote {out} in {time.time() - start:.1f}s: {cfg.num_val_trials} validation and {cfg.num_test_trials} "
          "test trials, half of them target", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
