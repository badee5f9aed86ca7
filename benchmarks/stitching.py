"""What joining window-local speakers costs on real meetings: the AMI test meetings' references
through an oracle local model (:mod:`sonolab.inference.oracle`), joined by clustering (today's
scheme) and by overlap activity (the former one), scored with collar 0 (overlap scored).

Run: python3 -m uv run --frozen python benchmarks/stitching.py [--setup
     ../shared/data/ami-diarization-setup] [--window 30 --hop 15] [--eer 10] [--dim 192]

The clustering threshold is chosen on the development meetings (same simulation), never on the
test meetings. Needs the AMI references of ../shared/data (no audio).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETUP = ROOT.parent / "shared" / "data" / "ami-diarization-setup"
GRID = [round(t, 2) for t in np.arange(0.6, 1.01, 0.05)]


def ami_references(setup: Path, subset: str) -> tuple[dict, dict]:
    """The references and UEMs of the AMI ``subset`` (train / dev / test) meetings."""
    from sonolab.data.readers import read_rttm
    from sonolab.data.readers.rttm import read_uem

    references, uems = {}, {}
    for name in (setup / "lists" / f"{subset}.meetings.txt").read_text().split():
        references.update(read_rttm(setup / "only_words" / "rttms" / subset / f"{name}.rttm"))
        uems.update(read_uem(setup / "uems" / subset / f"{name}.uem"))
    return references, uems


def main(argv: list[str] | None = None) -> int:
    """Print the dev-chosen threshold and the test meetings' DER split for both schemes."""
    from sonolab.inference.oracle import embedding_eer, noise_for_eer, stitching_der

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", type=Path, default=DEFAULT_SETUP)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--hop", type=float, default=15.0)
    parser.add_argument("--eer", type=float, default=10.0, help="embedding cosine EER (%%)")
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--grid", type=float, nargs="+", default=GRID)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.setup / "lists" / "test.meetings.txt").is_file():
        print(f"no AMI references at {args.setup} (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    started = time.time()
    noise = noise_for_eer(args.eer, args.dim, args.seed)
    check = embedding_eer(noise, args.dim, np.random.default_rng(args.seed + 1))
    print(f"embeddings: {args.dim}-d, noise {noise:.3f}: cosine EER {check:.1f} % on another draw")
    common = dict(window_seconds=args.window, hop_seconds=args.hop, noise=noise, dim=args.dim)
    dev = ami_references(args.setup, "dev")
    tuned = {
        t: stitching_der(*dev, threshold=t, seed=args.seed, **common)["der"] for t in args.grid
    }
    threshold = min(tuned, key=tuned.get)
    print(
        "dev DER by clustering threshold: " + ", ".join(f"{t}: {d:.2f}" for t, d in tuned.items())
    )
    test = ami_references(args.setup, "test")
    print(
        f"\n{len(test[0])} AMI test meetings, windows {args.window:g} s / hop {args.hop:g} s, "
        "collar 0 (overlap scored), 0.1 s frames"
    )
    print("| joining | DER % | confusion % of speech | missed s | false alarm s | labels |")
    print("|---|---|---|---|---|---|")
    for name, value in ((f"clustering (threshold {threshold})", threshold), ("overlap", None)):
        result = stitching_der(*test, threshold=value, seed=args.seed + 1, **common)
        counts = sorted(result["labels"].values())
        print(
            f"| {name} | {result['der']:.2f} | {result['confusion_pct']:.2f} | "
            f"{result['missed']:.1f} | {result['false_alarm']:.1f} | {counts[0]}-{counts[-1]} |"
        )
    print(f"\n({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
