"""``summary.md`` in a run folder: one page for a person where ``run.json`` is for programs. It
says how the run differs from the defaults (the experiment, the config-group options that are not
``train.yaml``'s, the command-line overrides), how it ended, its metrics (the task's own results
table) and the plots the run wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from ..utils.io import write_text_atomic

SUMMARY = "summary.md"


def default_choices(config_dir: Path) -> dict[str, str]:
    """The option ``train.yaml``'s defaults list picks in each config group (``null`` ones left
    out)."""
    entries = yaml.safe_load((config_dir / "train.yaml").read_text()).get("defaults", [])
    return {
        group: str(option)
        for entry in entries
        if isinstance(entry, dict)
        for group, option in entry.items()
        if option is not None and "/" not in group
    }


def run_choices(cfg: DictConfig) -> dict[str, str]:
    """The option picked in each config group for this run (Hydra's runtime record)."""
    try:
        choices = cfg.hydra.runtime.choices
    except Exception:  # composed without Hydra's runtime section (tests, the API)
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return {}
        choices = HydraConfig.get().runtime.choices
    return {
        str(k): str(v)
        for k, v in choices.items()
        if v is not None and not str(k).startswith("hydra/")
    }


def summary_text(out_dir: Path, cfg: DictConfig, record: dict[str, Any], config_dir: Path) -> str:
    """The markdown of ``summary.md`` for the run in ``out_dir`` (``record``: its run.json
    content)."""
    lines = [
        f"# Run {out_dir.name}",
        "",
        f"**{record['status']}** in {record['seconds']} s"
        + (f": `{record['error']}`" if record.get("error") else ""),
        "",
    ]
    defaults, chosen = default_choices(config_dir), run_choices(cfg)
    changed = [
        (group, defaults.get(group, "-"), option)
        for group, option in sorted(chosen.items())
        if option != defaults.get(group, "null")
    ]
    lines += ["## Configuration (differences from the defaults)", ""]
    if changed:
        lines += ["| config group | default | this run |", "|---|---|---|"]
        lines += [f"| {group} | {default} | {option} |" for group, default, option in changed]
        lines.append("")
    overrides = record.get("overrides") or []
    lines += (
        ["Command-line overrides: " + " ".join(f"`{o}`" for o in overrides)]
        if overrides
        else ["No command-line overrides."]
    )
    if not changed and not overrides:
        lines[-1] = "The default configuration, no overrides."
    lines += [
        "",
        "The full resolved configuration: `.hydra/config.yaml` (and `run.json`).",
        "",
        "## Metrics",
        "",
    ]
    results = out_dir / "results.md"
    if results.is_file():
        lines.append(results.read_text().strip())
    elif record.get("metrics"):
        lines += ["| metric | value |", "|---|---|"] + [
            f"| {k} | {v:.4g} |" for k, v in record["metrics"].items()
        ]
    else:
        lines.append("No test metrics.")
    plots = sorted(p.name for p in out_dir.glob("*.png"))
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def write_summary(out_dir: Path, cfg: DictConfig, record: dict[str, Any], config_dir: Path) -> Path:
    """Write ``summary.md`` into ``out_dir`` (atomically) and return its path."""
    path = out_dir / SUMMARY
    write_text_atomic(path, summary_text(out_dir, cfg, record, config_dir))
    return path
