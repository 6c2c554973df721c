"""SLO verdicts and trust checks of a finished run, and the exit code CI reads.

Exit codes: 0 all gates pass (or none given), 3 an SLO gate missed, 4 the run cannot be trusted
(books do not balance, a worker was lost, the load generator was CPU-saturated). A run that is both
untrustworthy and missing an SLO exits 4: its numbers do not support the miss either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from locust_burstgpt.metrics import MetricsStore
from locust_burstgpt.slo import LATENCY_METRICS, Gate, SLOSpec

EXIT_SLO_MISS = 3
EXIT_UNTRUSTED = 4


@dataclass
class Verdict:
    gates: list[dict[str, Any]] = field(default_factory=list)
    trust_problems: list[str] = field(default_factory=list)

    @property
    def slo_passed(self) -> bool:
        return all(g["passed"] for g in self.gates)

    @property
    def trusted(self) -> bool:
        return not self.trust_problems

    def exit_code(self) -> int | None:
        """The code to force, or None to leave Locust's own (no gates, trusted run)."""
        if not self.trusted:
            return EXIT_UNTRUSTED
        if not self.gates:
            return None
        return 0 if self.slo_passed else EXIT_SLO_MISS

    def to_dict(self) -> dict[str, Any]:
        return {
            "gates": self.gates,
            "slo_passed": self.slo_passed if self.gates else None,
            "trusted": self.trusted,
            "trust_problems": self.trust_problems,
            "exit_code": self.exit_code(),
        }

    def lines(self) -> list[str]:
        out = []
        for g in self.gates:
            out.append(
                f"SLO {'PASS' if g['passed'] else 'MISS'}: "
                + (g["text"] + f" (measured {g['display']})" if g["passed"] else g["miss"])
            )
        for p in self.trust_problems:
            out.append(f"UNTRUSTWORTHY RUN: {p}")
        return out


def gate_value(gate: Gate, store: MetricsStore, duration_s: float | None) -> float | None:
    total = store.total()
    if gate.metric in LATENCY_METRICS:
        return total.hist[gate.metric].percentile(gate.percentile)
    summary = total.summary(store.slo, duration_s)
    if gate.metric == "goodput":
        return (summary.get("goodput") or {}).get("fraction")
    if gate.metric == "fail_ratio":
        finished = summary["requests"] - sum(
            v for k, v in summary["outcomes"].items() if k == "cancelled"
        )
        return (finished - summary["ok"]) / finished if finished else None
    return summary.get(gate.metric)


def _display(gate: Gate, value: float | None) -> str:
    if value is None:
        return "no data"
    if gate.metric in LATENCY_METRICS:
        return f"{value:.3f} s" if value >= 1 else f"{value * 1000:.1f} ms"
    return f"{value:.4g}"


def evaluate(
    spec: SLOSpec, store: MetricsStore, duration_s: float | None, trust_problems: list[str]
) -> Verdict:
    verdict = Verdict(trust_problems=list(trust_problems))
    for gate in spec.gates:
        value = gate_value(gate, store, duration_s)
        verdict.gates.append(
            {
                "gate": gate.key,
                "text": gate.text,
                "op": gate.op,
                "threshold": gate.threshold,
                "value": value,
                "passed": gate.passes(value),
                "display": _display(gate, value),
                "miss": gate.miss_text(value),
            }
        )
    return verdict
