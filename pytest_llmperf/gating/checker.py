"""The test-side API for gates: record metrics, judge them, fail with one line each.

A ``Checker`` belongs to one test and, once bound (``bind``), to one engine:
every metric it records carries that engine's key, and baseline gates use that
engine's baseline key.  The plugin binds the ``llmperf_check`` fixture to the
``llmperf_engine`` of the same test by itself.  It judges each metric against a
limit (a profile target or a baseline), records every metric (passed or not) for
results.json, stages new baseline values under ``--llmperf-update-baselines``,
and ``verify()`` fails the test with all failed gates, one line each.  The
plugin calls ``verify()`` when the test body returns, so a gate cannot be
forgotten.

Records travel as pytest ``user_properties`` so that under pytest-xdist only
the controller writes results.json and baselines.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import TYPE_CHECKING, Any

from ..runtime.results import Metric, git_commit
from .baselines import STRICT_FLAG, BaselineKey, BaselineStore, Tolerance, baseline_entry, record_command
from .limits import Limit, failure_message, judge

if TYPE_CHECKING:
    from ..engines import Engine
    from .paired import PairedAccuracy
    from .rounds import RoundMetric, RoundSettings

METRIC = "llmperf_metric"
BASELINE = "llmperf_baseline"
ENGINE = "llmperf_engine"
TIMING = "llmperf_timing"


class Checker:
    def __init__(self, nodeid: str, user_properties: list, baselines: BaselineStore, update: bool,
                 strict: bool = False):
        self.nodeid = nodeid
        self.user_properties = user_properties
        self.store = baselines
        self.update = update
        self.strict = strict
        """``--llmperf-strict-baselines``: a metric with no baseline entry fails the test instead of
        being reported as NO BASELINE."""
        self.failures: list[str] = []
        self.metrics: list[Metric] = []
        self.engine_key: str | None = None
        """Results key of the bound engine (``transformers-cpu``); None until bound."""
        self.baseline_key: BaselineKey | None = None
        """Baseline key of the bound engine; None until bound."""

    # -- binding --------------------------------------------------------------

    def bind(self, engine: "Engine | None" = None, *, baseline_key: BaselineKey | None = None,
             engine_key: str | None = None) -> "Checker":
        """Bind to ``engine`` (its description is recorded once) or to a bare ``engine_key``; returns self."""
        if engine is not None:
            key = engine_key or f"{engine.info.engine}-{engine.info.device}"
            if key != self.engine_key:
                self.user_properties.append((ENGINE, {"key": key, **dataclasses.asdict(engine.info)}))
            engine_key = key
        self.engine_key = engine_key or self.engine_key
        self.baseline_key = baseline_key or self.baseline_key
        return self

    def engine(self, engine: "Engine") -> str:
        """Bind to ``engine`` (the older spelling); return its results key."""
        return self.bind(engine).engine_key  # type: ignore[return-value]

    # -- recording ----------------------------------------------------------

    def _record(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        self.user_properties.append((METRIC, metric.to_dict()))
        return metric

    def info(self, name: str, value: float | None, unit: str, higher_is_better: bool | None = None,
             *, engine: str | None = None, extra: dict | None = None) -> Metric:
        """A value reported but not gated (MFU, sample counts, ...)."""
        return self._record(judge(name, value, unit, higher_is_better, None, test=self.nodeid,
                                  engine=engine or self.engine_key, extra=extra))

    def against(self, name: str, value: float | None, unit: str, higher_is_better: bool | None,
                limit: Limit, *, engine: str | None = None, extra: dict | None = None) -> Metric:
        """Gate ``value`` on a fixed limit (a profile target)."""
        metric = self._record(judge(name, value, unit, higher_is_better, limit, test=self.nodeid,
                                    engine=engine or self.engine_key, extra=extra))
        if metric.verdict == "fail":
            self.failures.append(failure_message(metric, limit))
        return metric

    def against_baseline(self, name: str, value: float | None, unit: str, higher_is_better: bool | None,
                         tolerance: Tolerance, *, key: BaselineKey | None = None, engine: str | None = None,
                         extra: dict | None = None) -> Metric:
        """Gate ``value`` on the recorded baseline of ``key`` (default: the bound engine's).

        No baseline yet: the verdict is NO BASELINE with the command that records one
        (``no_baseline``; a failure under ``--llmperf-strict-baselines``), unless this run is
        recording baselines (then the verdict is ``new``, and a change from the old baseline is
        reported, not gated).  The key and
        tolerance go into the metric's extra, so ``llmperf baselines update``
        and ``llmperf report`` can find the baseline later.
        """
        key = self.resolve_key(key, name)
        extra = {**(extra or {}), "baseline_key": dataclasses.asdict(key), "tolerance": tolerance.to_dict()}
        limit = self.store.limit(key, name)
        if not self.update and limit is not None:
            return self.against(name, value, unit, higher_is_better, limit, engine=engine, extra=extra)
        if self.update:
            self.stage_baseline(name, value, unit, higher_is_better, tolerance, key=key)
            verdict = "pass" if limit is not None and value is not None and limit.admits(float(value)) else "new"
        else:
            return self.no_baseline(name, value, unit, higher_is_better, f"no baseline in {self.store.display_path(key)}",
                                    engine=engine, extra=extra)
        return self._record(judge(name, value, unit, higher_is_better, limit, test=self.nodeid,
                                  engine=engine or self.engine_key, verdict=verdict, extra=extra))

    def record_command(self) -> str:
        """The command that records this test's baselines."""
        return record_command(self.nodeid)

    def no_baseline(self, name: str, value: float | None, unit: str, higher_is_better: bool | None, reason: str,
                    *, engine: str | None = None, extra: dict | None = None, command: str | None = None) -> Metric:
        """A metric with nothing to be judged against (a new metric, a custom profile's first run, a
        baseline of another workload): its own verdict, NO BASELINE, with the command that records one.
        It fails the test only under ``--llmperf-strict-baselines`` (CI recipes may turn that on)."""
        command = command or self.record_command()
        extra = {**(extra or {}), "no_baseline": reason, "record_with": command}
        if self.strict:
            self.failures.append(f"{name}: {reason}; record one with: {command} "
                                 f"({STRICT_FLAG} makes a missing baseline a failure)")
        return self._record(judge(name, value, unit, higher_is_better, None, test=self.nodeid,
                                  engine=engine or self.engine_key, verdict="no_baseline", extra=extra))

    def stage_baseline(self, name: str, value: float | None, unit: str, higher_is_better: bool | None,
                       tolerance: Tolerance, *, key: BaselineKey | None = None,
                       files: dict[str, str] | None = None, rounds: dict[str, Any] | None = None) -> None:
        """Propose a baseline entry; the controller writes it only if the whole run passes.

        ``rounds``: ``baseline_entry``'s keywords of a metric measured in rounds."""
        key = self.resolve_key(key, name)
        if value is None:
            return
        provenance = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      "git_commit": git_commit(), "test": self.nodeid}
        entry = baseline_entry(value, unit, higher_is_better, tolerance.to_dict(), provenance, **(rounds or {}))
        self.user_properties.append((BASELINE, {"key": dataclasses.asdict(key), "name": name, "entry": entry,
                                                "files": files or {}}))

    def resolve_key(self, key: BaselineKey | None, name: str) -> BaselineKey:
        if key is None and self.baseline_key is None:
            raise TypeError(f"{name}: this checker is bound to no engine, so it has no baseline key; "
                            "use llmperf_engine in the test, call llmperf_check.bind(engine), or pass key=")
        return key or self.baseline_key  # type: ignore[return-value]

    def against_rounds(self, metric: "RoundMetric", rounds: dict[str, Any], settings: "RoundSettings",
                       workload: dict[str, Any], *, entry: dict[str, Any] | None, key: BaselineKey,
                       extra: dict | None = None) -> Metric:
        """Judge a metric measured in rounds (``gating.rounds``) against its baseline ``entry``.

        The value shown is the median raw round value; the baseline shown is the baseline's
        normalized median at this run's calibration (what the baseline engine would do here, now).
        An old entry (one value and a tolerance) is judged by its tolerance on that median.  No entry,
        or one of another workload (named), is NO BASELINE (``no_baseline``).
        INCONCLUSIVE fails only where the profile says so (``inconclusive_fails``).  Under
        ``--llmperf-update-baselines`` nothing is judged: the rounds are staged as the new baseline
        when the machine was quiet during them (``_record_rounds``)."""
        from .noise import RoundStats
        from .recorded import against_entry

        name, higher = metric.name, metric.higher_is_better
        value = RoundStats.of(rounds["raw"]).median
        min_effect = settings.min_effect(higher)
        extra = {**(extra or {}), "baseline_key": dataclasses.asdict(key), "rounds": rounds, "workload": workload,
                 "min_effect": min_effect, "confidence": settings.confidence,
                 "round_settings": dataclasses.asdict(settings)}
        made = dict(test=self.nodeid, engine=self.engine_key, extra=extra)
        staged = dict(rounds=rounds, workload=workload, min_effect=min_effect)
        if self.update:
            return self._record_rounds(metric, value, rounds, settings, workload, entry, key, made, staged)
        # The same decision llmperf report makes again from results.json (gating.recorded).
        outcome = against_entry(entry, rounds, metric, settings, workload, self.store.display_path(key))
        if outcome.verdict == "no_baseline":
            return self.no_baseline(name, value, metric.unit, higher, outcome.reason, extra=extra)
        if outcome.verdict == "tolerance":
            return self.against(name, value, metric.unit, higher, outcome.limit, extra=extra)  # type: ignore[arg-type]
        judgement, source = outcome.judgement, outcome.source
        assert judgement is not None
        limit = Limit(None, None, outcome.reference, source, "--llmperf-profile")
        extra.update(change=judgement.change, interval=[judgement.low, judgement.high], basis=judgement.basis)
        result = judge(name, value, metric.unit, higher, limit, verdict=judgement.verdict, **made)
        result = dataclasses.replace(result, limit=judgement.describe())
        if judgement.verdict == "fail":
            self.failures.append(f"{name} regressed: {value:.4f} {metric.unit} (median of {judgement.n_current} "
                                 f"rounds), {judgement.describe()} against {source}; see --llmperf-profile")
        elif judgement.verdict == "inconclusive" and settings.inconclusive_fails:
            self.failures.append(f"{name} INCONCLUSIVE after {judgement.n_current} rounds (max_rounds "
                                 f"{settings.max_rounds}): {judgement.describe()}; {settings.source} sets "
                                 "performance.inconclusive_fails = true")
        return self._record(result)

    def against_reference(self, metric: "RoundMetric", record: dict[str, Any], settings: "RoundSettings",
                          confidence: float, workload: dict[str, Any], reference: dict[str, Any], *,
                          extra: dict | None = None) -> Metric:
        """Judge a metric measured in pairs against the reference side of a paired A/B session
        (``gating.paired``): the value is the median of this side's rounds, the baseline the median of
        the reference's.  REGRESSED fails the test; IMPROVED and PASS pass; INCONCLUSIVE fails only where
        the profile says so.  Nothing is staged as a baseline: paired rounds are no baseline."""
        import statistics

        from .paired import judge_recorded_pairs, pairs_needed

        judgement = judge_recorded_pairs(record, metric, settings, confidence)
        name, higher = metric.name, metric.higher_is_better
        value, base = statistics.median(record["current"]), statistics.median(record["reference"])
        paired = {**judgement.to_dict(), "rounds": record, "reference_setup": reference,
                  "round_settings": dataclasses.asdict(settings), "pairs_needed": pairs_needed(judgement)}
        extra = {**(extra or {}), "paired": paired, "workload": workload, "change": judgement.change,
                 "interval": [judgement.low, judgement.high], "min_effect": judgement.min_effect, "basis": "paired",
                 "confidence": confidence}
        source = f"the reference ({reference.get('spec', '')}), measured beside this run"
        limit = Limit(None, None, base, source, "--llmperf-compare")
        verdict = {"regressed": "fail", "improved": "pass", "pass": "pass"}.get(judgement.verdict, "inconclusive")
        result = judge(name, value, metric.unit, higher, limit, verdict=verdict, test=self.nodeid,  # type: ignore[arg-type]
                       engine=self.engine_key, extra=extra)
        result = dataclasses.replace(result, limit=f"reference {base:.4g}: {judgement.describe()}")
        if judgement.verdict == "regressed":
            self.failures.append(f"{name} REGRESSED against the reference: {value:.4f} {metric.unit} against "
                                 f"{base:.4f} (medians of {judgement.pairs} pairs), {judgement.describe()}; "
                                 f"reference: --llmperf-compare {reference.get('spec', '')}")
        elif judgement.verdict == "inconclusive" and settings.inconclusive_fails:
            self.failures.append(f"{name} INCONCLUSIVE after {judgement.pairs} pairs: {judgement.describe()}; "
                                 f"{settings.source} sets performance.inconclusive_fails = true")
        return self._record(result)

    def paired_accuracy(self, name: str, paired: "PairedAccuracy", unit: str, min_effect: float,
                        reference: dict[str, Any], *, setting: str, extra: dict | None = None) -> Metric:
        """An accuracy difference of this side against the reference, scored on the same items
        (``gating.paired``: McNemar for MMLU, a paired bootstrap for ROUGE), judged by
        ``accuracy_verdict`` against ``min_effect`` (``setting`` names where it is set).  The value is
        the difference, current minus reference; REGRESSED fails the test."""
        from .paired import accuracy_verdict

        verdict = accuracy_verdict(paired, min_effect)
        describe = (f"{paired.difference:+.4g} {unit} (95% CI {paired.low:+.4g}..{paired.high:+.4g}; "
                    f"p {paired.p_value:.3g}; regressed beyond -{min_effect:g}; {paired.items} items)")
        extra = {**(extra or {}), "paired": {**paired.to_dict(), "verdict": verdict, "min_effect": min_effect,
                                              "reference_setup": reference}}
        source = f"the reference ({reference.get('spec', '')}), scored on the same items"
        limit = Limit(-min_effect, None, 0.0, source, setting)
        result = judge(name, paired.difference, unit, True, limit, test=self.nodeid, engine=self.engine_key,
                       verdict={"regressed": "fail", "inconclusive": "inconclusive"}.get(verdict, "pass"),  # type: ignore[arg-type]
                       extra=extra)
        result = dataclasses.replace(result, limit=describe)
        if verdict == "regressed":
            self.failures.append(f"{name} REGRESSED against the reference: {describe}; reference: "
                                 f"--llmperf-compare {reference.get('spec', '')}; see {setting}")
        return self._record(result)

    def _record_rounds(self, metric: "RoundMetric", value: float, rounds: dict[str, Any], settings: "RoundSettings",
                       workload: dict[str, Any], entry: dict[str, Any] | None, key: BaselineKey, made: dict,
                       staged: dict) -> Metric:
        """Under ``--llmperf-update-baselines``: stage ``rounds`` as the new baseline when the machine was
        quiet during them; rounds that shared the CPU with other processes are INCONCLUSIVE, not recorded."""
        from .rounds import comparable, judge_entry

        name, higher = metric.name, metric.higher_is_better
        known = [c for c in rounds.get("contention") or [] if c is not None]
        if known and max(known) >= settings.max_contention:
            self.failures.append(
                f"{name}: baseline not recorded: other processes used up to {100 * max(known):.0f}% of the CPU "
                f"during its rounds (limit {100 * settings.max_contention:g}%, {settings.source}: "
                "performance.max_contention); record baselines on a quiet machine")
            return self._record(judge(name, value, metric.unit, higher, None, verdict="inconclusive", **made))
        self.stage_baseline(name, value, metric.unit, higher, Tolerance(), key=key, rounds=staged)
        verdict = "new"
        if entry is not None and comparable(entry, workload, rounds["calibration_kind"]):
            judgement = judge_entry(entry, rounds, metric, settings)
            made["extra"].update(change=judgement.change, interval=[judgement.low, judgement.high],
                                 basis=judgement.basis)
            verdict = "pass" if judgement.verdict == "pass" else "new"
        return self._record(judge(name, value, metric.unit, higher, None, verdict=verdict, **made))

    def fail(self, message: str) -> None:
        """A failed check that is not a metric (a compliance rule, an invalid run)."""
        self.failures.append(message)

    # -- verdict ------------------------------------------------------------

    def verify(self) -> None:
        """Fail the test with every failed gate, one line each (the plugin calls it when the test returns)."""
        if self.failures:
            import pytest

            __tracebackhide__ = True
            pytest.fail("\n".join(self.failures), pytrace=False)
