"""The result table, `results.json` and the scale plot."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from bench.common import Row


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("chars", "chunks/s") or abs(value) >= 1000:
        return f"{value:,.0f}"
    if unit in ("ms", "MiB", "texts"):
        return f"{value:,.1f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(rows: list[Row]) -> str:
    """A Markdown table: figure, ours, LlamaIndex default, ratio, the floor or raw figure, target."""
    lines = [
        "| section | figure | ours | LlamaIndex default | ours ÷ default | floor / raw (same run) | target |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        unit = f" {r.unit}" if r.unit else ""
        ours = f"{_fmt(r.ours, r.unit)}{unit}"
        base = f"{_fmt(r.llamaindex, r.unit)}{unit}" if r.llamaindex is not None else "—"
        ratio = f"{r.ours / r.llamaindex:.2f}×" if r.ours is not None and r.llamaindex else "—"
        ref = f"{_fmt(r.reference, r.unit)}{unit} ({r.reference_name})" if r.reference is not None else ""
        lines.append(f"| {r.section} | {r.figure} | {ours} | {base} | {ratio} | {ref} | {r.target} |")
    return "\n".join(lines)


def write_json(path: Path, rows: list[Row], scale: dict[str, Any], quick: bool, seconds: float) -> None:
    """Every figure, the scale series and the machine they were measured on."""
    import os

    data = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "quick": quick,
        "seconds": round(seconds, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "rows": [r.to_dict() for r in rows],
        "scale": scale,
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def plot(path: Path, scale: dict[str, Any]) -> None:
    """Four panels against corpus size (log-log): build time, disk, peak memory, ask p50."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("build_seconds", "full build (s)"),
        ("disk_mb", "index on disk (MiB)"),
        ("peak_mb", "peak memory (MiB)"),
        ("ask_p50_ms", "warm ask p50 (ms)"),
    )
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, (key, title) in zip(axes, panels):
        for name, label, style in (("ours", "ours", "o-"), ("llamaindex", "LlamaIndex default", "s--")):
            points = scale.get(name, [])
            ax.plot([p["size"] for p in points], [p[key] for p in points], style, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("chunks in the corpus (ours)")
        ax.grid(True, which="both", alpha=0.3)
    axes[-1].axhline(60, color="grey", linestyle=":", linewidth=1)
    axes[0].legend()
    fig.suptitle("How cost grows with corpus size (synthetic corpus from the real articles' sentences)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
