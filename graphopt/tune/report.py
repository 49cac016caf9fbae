"""What a study found: counts, the Pareto front as a table, and a PNG of the trade-off.

Reads the study as stored (any worker's trials, this run's and earlier ones), so
the table printed after a resumed study covers the whole study.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from graphopt.tune.pareto import front_indices
from graphopt.tune.study_config import UNITS, StudyConfig


@dataclass(frozen=True)
class Summary:
    states: dict[str, int]
    reused: int
    compiled: int
    pruned_before_build: int
    surplus: int
    complete: list  # FrozenTrials with values
    pareto: list  # the non-dominated ones, by trial number
    fetched: int = 0  # artifacts another node built, fetched by content id (graphopt.tune.artifact_table)


def summarize(study) -> Summary:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials if not t.user_attrs.get("surplus"))
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    pareto = sorted((complete[i] for i in front_indices([t.values for t in complete])), key=lambda t: t.values)
    pruned_early = sum(1 for t in trials if t.state == TrialState.PRUNED and "build" not in t.user_attrs.get("stages", []))
    return Summary(dict(states), sum(1 for t in trials if t.user_attrs.get("reused")),
                   sum(1 for t in trials if t.user_attrs.get("compiled")), pruned_early,
                   sum(1 for t in trials if t.user_attrs.get("surplus")), complete, pareto,
                   sum(1 for t in trials if t.user_attrs.get("fetched")))


def counts_line(s: Summary) -> str:
    states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(s.states.items()))
    return (f"trials: {states}; compiled {s.compiled}, reused by artifact id {s.reused}, "
            f"fetched from another node {s.fetched}, pruned before build {s.pruned_before_build}")


def fmt(name: str, value: float) -> str:
    if name == "peak_memory":
        return f"{int(value):,}"
    return f"{value:.4g}"


def pareto_table(s: Summary, config: StudyConfig, knobs: list[str]) -> list[str]:
    heads = ["trial", *[f"{o} ({UNITS[o]})" if UNITS[o] else o for o in config.objectives], *knobs, "artifact"]
    rows = [[str(t.number), *[fmt(o, v) for o, v in zip(config.objectives, t.values)],
             *[str(t.params.get(k, "")) for k in knobs], str(t.user_attrs.get("artifact_id", ""))[:12]]
            for t in s.pareto]
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(heads), line(["-" * w for w in widths]), *[line(r) for r in rows]]


def best_line(s: Summary, config: StudyConfig) -> str:
    if not s.complete:
        return "best: no completed trial"
    parts = []
    for k, name in enumerate(config.objectives):
        best = min(s.complete, key=lambda t: t.values[k])
        parts.append(f"{name} {fmt(name, best.values[k])}{UNITS[name] and ' ' + UNITS[name]} (trial {best.number})")
    return "best: " + ", ".join(parts)


def plot(s: Summary, config: StudyConfig, path: Path, title: str) -> None:
    """All completed trials on the first two objectives, the front joined; a third objective as colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(config.objectives) < 2 or not s.complete:
        from graphopt.tune.errors import TuneError

        raise TuneError("--plot needs two objectives and at least one completed trial")
    x_name, y_name = config.objectives[:2]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colour = [t.values[2] for t in s.complete] if len(config.objectives) > 2 else "tab:blue"
    dots = ax.scatter([t.values[0] for t in s.complete], [t.values[1] for t in s.complete], c=colour, s=22,
                      alpha=0.7, label="trials")
    front = sorted(s.pareto, key=lambda t: t.values[0])
    ax.plot([t.values[0] for t in front], [t.values[1] for t in front], "o-", color="tab:red", mfc="none", ms=9,
            label="Pareto front")
    if len(config.objectives) > 2:
        fig.colorbar(dots, ax=ax, label=config.objectives[2])
    ax.set_xlabel(f"{x_name} ({UNITS[x_name]})" if UNITS[x_name] else x_name)
    ax.set_ylabel(f"{y_name} ({UNITS[y_name]})" if UNITS[y_name] else y_name)
    ax.set_title(f"{title}: {len(s.complete)} trials, {s.states.get('PRUNED', 0)} pruned")
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
