"""Counters of a running service, rendered in the Prometheus text exposition format (v0.0.4).

Written by hand (a few counters, one histogram) rather than pulling in a client library:
the format is plain text and the service is single-process.
"""

from __future__ import annotations

from collections import Counter

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


class Metrics:
    def __init__(self, slo_s: float) -> None:
        self.slo_s = slo_s
        self.responses: Counter[tuple[str, str]] = Counter()  # (variant or "-", status code)
        self.batches: Counter[str] = Counter()
        self.batch_rows: Counter[str] = Counter()
        self.batch_sizes: Counter[tuple[str, int]] = Counter()  # (variant, size the batch ran at)
        self.slo_met = 0
        self.served = 0
        self.bucket_counts = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0

    def response(self, code: int, variant: str | None = None, latency_s: float | None = None) -> None:
        self.responses[(variant or "-", str(code))] += 1
        if latency_s is None:
            return
        self.served += 1
        self.slo_met += latency_s <= self.slo_s
        self.latency_sum += latency_s
        for i, bound in enumerate(LATENCY_BUCKETS):
            self.bucket_counts[i] += latency_s <= bound

    def batch(self, variant: str, rows: int, size: int | None = None) -> None:
        """A batch of `rows` rows ran at batch size `size` (rows + padding; default: rows)."""
        self.batches[variant] += 1
        self.batch_rows[variant] += rows
        self.batch_sizes[(variant, rows if size is None else size)] += 1

    def render(self, service_estimates: dict[str, float], queue_rows: int,
               size_estimates: dict[tuple[str, int], float] | None = None) -> str:
        lines = ["# HELP graphopt_serve_responses_total Responses by variant and HTTP status.",
                 "# TYPE graphopt_serve_responses_total counter"]
        lines += [f"graphopt_serve_responses_total{_labels(variant=v, code=c)} {n}"
                  for (v, c), n in sorted(self.responses.items())]
        lines += ["# HELP graphopt_serve_slo_met_total Served requests whose server-side latency met the SLO.",
                  "# TYPE graphopt_serve_slo_met_total counter", f"graphopt_serve_slo_met_total {self.slo_met}",
                  "# HELP graphopt_serve_latency_seconds Server-side latency of served requests.",
                  "# TYPE graphopt_serve_latency_seconds histogram"]
        lines += [f"graphopt_serve_latency_seconds_bucket{_labels(le=f'{b:g}')} {n}"
                  for b, n in zip(LATENCY_BUCKETS, self.bucket_counts)]
        lines += [f'graphopt_serve_latency_seconds_bucket{{le="+Inf"}} {self.served}',
                  f"graphopt_serve_latency_seconds_sum {self.latency_sum:.6f}",
                  f"graphopt_serve_latency_seconds_count {self.served}",
                  "# HELP graphopt_serve_batches_total Batches run per variant.",
                  "# TYPE graphopt_serve_batches_total counter"]
        lines += [f"graphopt_serve_batches_total{_labels(variant=v)} {n}" for v, n in sorted(self.batches.items())]
        lines += ["# HELP graphopt_serve_batch_rows_total Rows run per variant (without padding).",
                  "# TYPE graphopt_serve_batch_rows_total counter"]
        lines += [f"graphopt_serve_batch_rows_total{_labels(variant=v)} {n}" for v, n in sorted(self.batch_rows.items())]
        lines += ["# HELP graphopt_serve_service_seconds Predicted batch service time per variant (online EWMA).",
                  "# TYPE graphopt_serve_service_seconds gauge"]
        lines += [f"graphopt_serve_service_seconds{_labels(variant=v)} {s:.6f}"
                  for v, s in sorted(service_estimates.items())]
        lines += ["# HELP graphopt_serve_batch_size_total Batches per variant and size run (padding included).",
                  "# TYPE graphopt_serve_batch_size_total counter"]
        lines += [f"graphopt_serve_batch_size_total{_labels(variant=v, size=str(n))} {c}"
                  for (v, n), c in sorted(self.batch_sizes.items())]
        lines += [("# HELP graphopt_serve_size_service_seconds Predicted batch time per variable-batch variant and "
                   "batch size (online EWMA; sizes that have run)."),
                  "# TYPE graphopt_serve_size_service_seconds gauge"]
        lines += [f"graphopt_serve_size_service_seconds{_labels(variant=v, size=str(n))} {s:.6f}"
                  for (v, n), s in sorted((size_estimates or {}).items())]
        lines += ["# HELP graphopt_serve_queue_rows Rows waiting for the worker.",
                  "# TYPE graphopt_serve_queue_rows gauge", f"graphopt_serve_queue_rows {queue_rows}",
                  "# HELP graphopt_serve_slo_seconds The latency target.",
                  "# TYPE graphopt_serve_slo_seconds gauge", f"graphopt_serve_slo_seconds {self.slo_s:g}"]
        return "\n".join(lines) + "\n"
