"""Multi-objective samplers that do not propose a configuration twice.

A compile-option space is small and discrete (tens of configurations), so a
plain sampler soon proposes configurations the study already has: with artifact
dedup that costs no compile, but it spends a trial of the budget on nothing.
`NoRepeat` wraps TPE (multi-objective, multivariate) or NSGA-II: it asks the
base sampler for the whole configuration at once, retries a few times when the
proposal was seen (finished, pruned or running in another worker), and else
draws uniformly from the configurations not yet seen. During the base sampler's
random start-up phase that is random sampling without replacement, which is
also how `--sampler random` covers a whole grid in exactly grid-size trials.
"""

from __future__ import annotations

import json
import random

from optuna.samplers import BaseSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.trial import TrialState

from graphopt.tune.errors import TuneError
from graphopt.tune.space import Space

SAMPLERS = ("tpe", "nsga2", "random")
RETRIES = 16
CLAIM = "graphopt:config"  # system attr: the configuration a trial took, written before its params


def config_key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


class NoRepeat(BaseSampler):
    def __init__(self, base: BaseSampler, space: Space, seed: int | None = None) -> None:
        self.base, self.space = base, space
        self.rng = random.Random(seed)
        self.grid = space.grid()

    def infer_relative_search_space(self, study, trial) -> dict:
        return self.space.distributions()

    def sample_relative(self, study, trial, search_space) -> dict:
        if not search_space:
            return {}
        seen = _seen(study, trial.number)
        proposal: dict = {}
        for _ in range(RETRIES):
            proposal = self.base.sample_relative(study, trial, search_space)
            if not proposal or config_key(proposal) not in seen:
                break
        if not proposal or config_key(proposal) in seen:
            proposal = self._unseen(seen) or proposal
        return self._claim(study, trial, proposal) if proposal else proposal

    def _unseen(self, seen: set[str]) -> dict | None:
        """A uniform draw among the grid's configurations not seen (None: a range space, or all seen)."""
        unseen = [c for c in self.grid or [] if config_key(c) not in seen]
        return self.rng.choice(unseen) if unseen else None

    def _claim(self, study, trial, proposal: dict) -> dict:
        """Writes the proposal into the storage, then re-reads: if another worker claimed the same
        configuration meanwhile, this one (the later writer always sees the earlier) draws again."""
        for _ in range(RETRIES):
            study._storage.set_trial_system_attr(trial._trial_id, CLAIM, config_key(proposal))
            seen = _seen(study, trial.number)
            if config_key(proposal) not in seen:
                return proposal
            proposal = self._unseen(seen)
            if proposal is None:
                return {}  # everything is taken: let the base sampler draw independently
        return proposal

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
        self.rng.seed()


def _seen(study, number: int) -> set[str]:
    """Configurations of other trials that count as tried: done, pruned, running, or failed on their own
    (a trial failed by a killed worker has no `error` attr and may be drawn again)."""
    seen = set()
    for t in study.get_trials(deepcopy=False):
        if t.number == number or not (t.params or CLAIM in t.system_attrs):
            continue
        if t.state == TrialState.FAIL and "error" not in t.user_attrs:
            continue
        claim = t.system_attrs.get(CLAIM)
        seen.add(claim if claim is not None else config_key(t.params))
    return seen


def make_sampler(name: str, space: Space, trials: int, seed: int | None = None) -> BaseSampler:
    """`tpe`: multi-objective multivariate TPE; `nsga2`: NSGA-II; `random`: without replacement."""
    startup = max(3, min(10, trials // 3))
    if name == "tpe":
        base = TPESampler(multivariate=True, n_startup_trials=startup, constant_liar=False, seed=seed)
    elif name == "nsga2":
        base = NSGAIISampler(population_size=max(4, min(20, trials // 3)), seed=seed)
    elif name == "random":
        base = RandomSampler(seed=seed)
    else:
        raise TuneError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return NoRepeat(base, space, seed)
