"""``report.png``: the live charts, drawn once from the timeline for people who read reports offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PANELS = [
    (
        "Users: the trace's curve, the shape's target, actual; conversations in progress",
        [
            ("curve_users", "curve"),
            ("target_users", "target"),
            ("actual_users", "actual"),
            ("conversations_in_progress", "in progress"),
        ],
        1,
        "",
    ),
    (
        "Requests per second",
        [("scheduled", "scheduled"), ("sent", "sent"), ("not_sent", "not sent")],
        1,
        "",
    ),
    ("TTFT per second", [("ttft_p50_s", "p50"), ("ttft_p99_s", "p99")], 1000, "ms"),
    ("TPOT per second", [("tpot_p50_s", "p50"), ("tpot_p99_s", "p99")], 1000, "ms"),
    ("Output tokens per second", [("output_tokens", "tokens/s")], 1, ""),
    ("Schedule lateness p99", [("lateness_p99_s", "p99")], 1000, "ms"),
    (
        "Server: running / waiting",
        [("server_running", "running"), ("server_waiting", "waiting")],
        1,
        "",
    ),
    ("Server: KV-cache usage", [("server_kv_cache_usage", "KV cache")], 100, "%"),
]


def write_report_png(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in PANELS if any(r.get(k) is not None for r in rows for k, _ in p[1])]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(11, 2.3 * max(1, len(panels))), sharex=True, squeeze=False
    )
    xs = [r["second"] for r in rows]
    for ax, (name, series, scale, unit) in zip(axes[:, 0], panels, strict=True):
        for key, label in series:
            ys = [None if r.get(key) is None else r[key] * scale for r in rows]
            if any(y is not None for y in ys):
                ax.plot(xs, [float("nan") if y is None else y for y in ys], label=label, lw=1.2)
        ax.set_title(name + (f" ({unit})" if unit else ""), fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since replay start")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
