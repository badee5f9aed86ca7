"""Real-time factor and peak memory of diarizing one long recording (default 1 hour) on this
machine.

Run: python3 -m uv run --frozen python benchmarks/diarization_inference.py [--run-dir
     logs/train/runs/<id>] [--minutes 60] [--model eend_eda_small] [--device cpu] [--window 30]

The recording is simulated 2-speaker conversation written to a temporary WAV; with ``--run-dir`` a
trained run's model is used (its recorded checkpoint), otherwise untrained weights of ``--model``
(the cost does not depend on the weights). Peak memory is the process's maximum resident set size,
which includes the Python runtime and libraries. By default the recording is diarized in one pass
(the config's decoding); ``--window 30`` reads and diarizes it 30 s at a time (hop: half a window)
and joins the windows' speakers by clustering.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SONOLAB_ROOT", str(ROOT))


def long_recording(path: Path, minutes: float, rate: int = 16000) -> float:
    """Write ``minutes`` of simulated conversation (synthetic speakers) to ``path``; returns its
    duration."""
    from sonolab.data.mixtures import MixtureConfig, simulator_from_tree
    from sonolab.data.synth.voxceleb import VoxCelebSynthConfig, generate_voxceleb

    corpus = generate_voxceleb(ROOT / "data" / "synth_voxceleb", VoxCelebSynthConfig())
    simulator = simulator_from_tree(corpus / "wav", MixtureConfig(speakers={2: 1.0}), seed=7)
    written, index = 0, 0
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as out:
        while written < minutes * 60 * rate:
            wave = simulator(index).wave.numpy()
            out.write(wave)
            written += wave.size
            index += 1
    return written / rate


def main(argv: list[str] | None = None) -> int:
    """Build the recording, diarize it, print the real-time factor and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--run-dir",
        default=None,
        help="trained diarization run folder (default: untrained weights)",
    )
    parser.add_argument("--model", default="eend_eda_small")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="diarize window by window (seconds; speakers joined by clustering) instead of the "
        "config's decoding (one pass over the whole recording by default)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from sonolab.checkpoints import checkpoint_for_run, load_checkpoint, load_task_state
    from sonolab.inference.diarization import (
        DecodingConfig,
        activities_to_annotation,
        diarize_recording,
    )
    from sonolab.run import build_task

    if args.run_dir:
        cfg = OmegaConf.load(Path(args.run_dir) / ".hydra" / "config.yaml")
    else:
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("train", ["experiment=synth_eend_eda", f"model={args.model}"])
    task = build_task(cfg, {"sample_rate": 16000, "max_speakers": 4})
    if args.run_dir:
        path, _ = checkpoint_for_run(args.run_dir)
        load_task_state(task, load_checkpoint(path), path)
    task = task.to(args.device).eval()
    decoding = DecodingConfig.from_config(OmegaConf.to_container(cfg.task.decoding))
    if args.window:
        decoding.window_seconds = args.window
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "long.wav"
        duration = long_recording(wav, args.minutes)
        start = time.time()
        probs, step = diarize_recording(
            task.model, task.features, wav, 16000, decoding, device=args.device
        )
        hypothesis = activities_to_annotation(
            probs, step, "long", decoding.threshold, decoding.median_frames
        )
        seconds = time.time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"{duration / 60:.1f} min of audio diarized in {seconds:.1f} s: real-time factor "
        f"{seconds / duration:.4f}; "
        f"{len(hypothesis.labels())} speakers, {probs.shape[0]} frames; peak resident memory "
        f"{peak:.0f} MiB "
        f"({args.threads} threads, {args.device}, "
        f"{f'{decoding.window_seconds:g} s windows' if decoding.window_seconds else 'one pass'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
