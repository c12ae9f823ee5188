"""How many rounds a metric gets: the two-look sequential rule.

``gate_rounds`` measures ``[performance] rounds`` rounds and looks; while any metric is
INCONCLUSIVE (and ``max_rounds`` rounds of the spread seen could decide it at all) it
measures up to ``max_rounds`` and looks once more; then it records every metric on the
checker, which judges it (``Checker.against_rounds``).  Each look's interval is at
confidence ``1 - (1 - confidence) / looks`` (``RoundSettings.look_confidence``, Bonferroni
over the looks), so the chance that any look's interval misses the true change stays
within ``1 - confidence``: a false FAIL (a change inside the minimum effect called a
regression) and a false PASS (a regression beyond it called a pass) each within
``(1 - confidence) / 2``, however the run stops.  Re-measuring one round at a time and
looking each time at 95% held no such bound.

``gate_pairs`` is the same rule for a paired A/B session (``gating.paired``): ``paired_rounds`` pairs (at
least three), one more look at ``paired_max_rounds`` pairs while any metric is INCONCLUSIVE, each look's interval
at the confidence of ``paired_confidence`` (Bonferroni over the looks and the test's metrics).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .baselines import BaselineKey
from .checker import Checker
from .paired import MIN_PAIRS, PairedMeasurer, judge_recorded_pairs
from .rounds import RoundMeasurer, RoundMetric, RoundSettings, comparable, decidable, judge_entry


def record_interrupted(check: "Checker", metrics: Sequence[RoundMetric], measurer: RoundMeasurer) -> None:
    """The session was interrupted between or during rounds: each metric measured in at least one
    round is recorded, not judged, as the median of its raw rounds, with every round kept."""
    for metric in metrics:
        values = sorted(v for v in measurer.values(metric.name) if v is not None)
        if values:
            check.info(metric.name, values[len(values) // 2], metric.unit, metric.higher_is_better,
                       extra={"rounds": measurer.record(metric), "interrupted": True,
                              "note": f"{len(values)} round(s) measured before the session was interrupted; not judged"})


class RoundProgress:
    """One line per round (or pair) through ``say``: how far the test is, and at the second look which
    metrics are still undecided, so that a slow run says why it is slow."""

    def __init__(self, say: Callable[[str], None] | None, nodeid: str, unit: str, first: int, most: int):
        self.say, self.nodeid, self.unit, self.first, self.most = say, nodeid, unit, first, most
        self.undecided: list[str] = []

    def __call__(self, done: int) -> None:
        if self.say is None:
            return
        if self.undecided:
            self.say(f"{self.nodeid}: {self.unit} {done} of {self.most}; undecided: {', '.join(self.undecided)}")
        elif self.most > self.first:
            self.say(f"{self.nodeid}: {self.unit} {done} of {self.first} (up to {self.most} while a metric is undecided)")
        else:
            self.say(f"{self.nodeid}: {self.unit} {done} of {self.first}")


def gate_rounds(check: "Checker", metrics: Sequence[RoundMetric], measurer: RoundMeasurer, settings: RoundSettings,
                workload: dict[str, Any], *, key: BaselineKey | None = None, extra: dict | None = None,
                say: Callable[[str], None] | None = None) -> None:
    """Measure ``rounds``, then up to ``max_rounds`` while any metric is INCONCLUSIVE (the two-look rule of
    the module docstring), and record each metric on ``check``."""
    key = check.resolve_key(key, metrics[0].name)
    family = settings
    settings = settings.at_each_look()
    entries = {m.name: check.store.entry(key, m.name) for m in metrics}

    def undecided(metric: RoundMetric) -> bool:
        entry = entries[metric.name]
        if not (measurer.measured(metric.name) and comparable(entry, workload, measurer.kind)):
            return False
        rounds = measurer.record(metric)
        judgement = judge_entry(entry, rounds, metric, settings)  # type: ignore[arg-type]
        return judgement.verdict == "inconclusive" and decidable(entry, rounds, judgement, metric,  # type: ignore[arg-type]
                                                                  settings, settings.max_rounds)

    announce = RoundProgress(say, check.nodeid, "round", settings.rounds,
                             settings.rounds if check.update else max(settings.max_rounds, settings.rounds))
    measurer.on_round = announce
    try:
        measurer.more(settings.rounds)
        # Recording a baseline compares with nothing: its rounds are what they are.
        if not check.update and measurer.count < settings.max_rounds:
            announce.undecided = [m.name for m in metrics if undecided(m)]
            if announce.undecided:
                measurer.more(settings.max_rounds - measurer.count)  # the second and last look
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: keep the rounds measured so far, judge nothing
        record_interrupted(check, metrics, measurer)
        raise
    for metric in metrics:
        if not measurer.measured(metric.name):
            check.fail(f"{metric.name}: not measured in every round ({measurer.values(metric.name)}); "
                       "see the LoadGen logs in the test's folder")
            check.info(metric.name, None, metric.unit, metric.higher_is_better, extra={"rounds": measurer.record(metric)})
            continue
        check.against_rounds(metric, measurer.record(metric), settings, workload, entry=entries[metric.name],
                             key=key, extra={**(extra or {}), "sequential": {
                                 "looks": family.looks, "family_confidence": family.confidence,
                                 "rule": "two looks, confidence split over them (Bonferroni)"}})


def pair_counts(settings: RoundSettings) -> tuple[int, int]:
    """(pairs at the first look, pairs at most) of a paired session: ``paired_rounds`` and
    ``paired_max_rounds``, at least ``MIN_PAIRS``."""
    first = max(settings.paired_rounds, MIN_PAIRS)
    return first, max(settings.paired_max_rounds, first)


def paired_confidence(settings: RoundSettings, metrics: int) -> float:
    """Each paired interval's confidence: ``confidence`` split over the looks and the test's ``metrics``
    (Bonferroni; gating/paired.py says why)."""
    first, most = pair_counts(settings)
    looks = 2 if most > first else 1
    return 1 - (1 - settings.confidence) / (looks * max(1, metrics))


def gate_pairs(check: "Checker", metrics: Sequence[RoundMetric], measurer: PairedMeasurer, settings: RoundSettings,
               workload: dict[str, Any], reference: dict[str, Any], *, extra: dict | None = None,
               say: Callable[[str], None] | None = None) -> None:
    """Measure pairs, one more look while any metric is INCONCLUSIVE (module docstring), and record each
    metric on ``check`` against the reference side."""
    first, most = pair_counts(settings)
    confidence = paired_confidence(settings, len(metrics))

    def undecided(metric: RoundMetric) -> bool:
        if not measurer.measured(metric.name):
            return False
        return judge_recorded_pairs(measurer.record(metric.name), metric, settings, confidence).verdict == "inconclusive"

    announce = RoundProgress(say, check.nodeid, "pair", first, most)
    measurer.on_round = announce
    try:
        measurer.more(first)
        if most > measurer.count:
            announce.undecided = [m.name for m in metrics if undecided(m)]
            if announce.undecided:
                measurer.more(most - measurer.count)
    except KeyboardInterrupt:  # keep what was measured; judge nothing
        for metric in metrics:
            values = sorted(v for v in measurer.values(metric.name) if v is not None)
            if values:
                check.info(metric.name, values[len(values) // 2], metric.unit, metric.higher_is_better,
                           extra={"paired_rounds": measurer.record(metric.name), "interrupted": True,
                                  "note": "interrupted during a paired A/B measurement; not judged"})
        raise
    for metric in metrics:
        record = measurer.record(metric.name)
        if not measurer.measured(metric.name):
            check.fail(f"{metric.name}: not measured in every round of both sides (reference "
                       f"{record['reference']}, current {record['current']}); see the LoadGen logs in the test's folder")
            check.info(metric.name, None, metric.unit, metric.higher_is_better, extra={"paired_rounds": record})
            continue
        check.against_reference(metric, record, settings, confidence, workload, reference, extra=extra)
