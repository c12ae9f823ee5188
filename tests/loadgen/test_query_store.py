"""Per-query token times on disk (``queries.npz``), the queries.json of older runs, and their readers."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest

from plumbing import InstantEngine, answer_tokens
from pytest_llmperf.errors import InputError
from pytest_llmperf.loadgen import run_loadgen, run_settings
from pytest_llmperf.loadgen.capacity import judge_probe
from pytest_llmperf.loadgen.query_store import (LEGACY_QUERY_TIMES, QUERY_STORE, QueryRecorder, QueryTimes,
                                                read_query_store, write_query_store)
from pytest_llmperf.loadgen.query_times import QueryTiming, Slo, query_stats, read_query_times
from pytest_llmperf.metrics.latency import percentile
from pytest_llmperf.loadgen.serving_workload import run_workload
from pytest_llmperf.loadgen.sweep import qps_point
from pytest_llmperf.config.profiles import ScenarioSection, load_profile
from pytest_llmperf.config.serving_profile import ServingWorkloadSection

ROWS = [(3, 100.0, (100.25, 100.5, 100.875), 3),   # three tokens
        (1, 100.5, (), 0),                          # no answer
        (2, 101.0, (101.5,), 1),                    # one token: no TPOT, no ITL
        (0, 101.25, (101.5, 101.75), 2)]


def test_round_trip_keeps_every_column_relative_to_the_first_issue(tmp_path):
    written = QueryTimes.from_rows(ROWS)
    path = write_query_store(tmp_path, written)
    assert path == tmp_path / QUERY_STORE
    read = read_query_store(tmp_path)
    assert read.qsl_idx.tolist() == [3, 1, 2, 0] and read.tokens.tolist() == [3, 0, 1, 2]
    assert read.offsets.tolist() == [0, 3, 3, 4, 6]
    np.testing.assert_array_equal(read.issued, written.issued - 100.0)  # exact: binary fractions
    np.testing.assert_array_equal(read.token_times, written.token_times - 100.0)
    assert list(read)[0] == QueryTiming(3, 0.0, (0.25, 0.5, 0.875), 3)
    assert list(read)[1].token_times == ()


def test_writes_in_slices_the_same_bytes(tmp_path, monkeypatch):
    from pytest_llmperf.loadgen import query_store

    rng = np.random.default_rng(1)
    rows = [(i, float(i), tuple(sorted(rng.random(int(rng.integers(0, 9))) + i)), 4) for i in range(200)]
    monkeypatch.setattr(query_store, "WRITE_SLICE", 7)  # many slices, a short last one
    written = QueryTimes.from_rows(rows)
    read = read_query_store(write_query_store(tmp_path, written))
    assert read.offsets.tolist() == written.offsets.tolist()
    np.testing.assert_allclose(read.token_times, written.token_times, rtol=0, atol=1e-7)  # float32 gaps


def test_times_stay_exact_to_a_microsecond_over_a_long_run(tmp_path):
    """10,000 queries x 100 tokens 10 ms apart over 1,000 s: the float32 gaps and the running sum
    that rebuilds the times lose less than a microsecond anywhere."""
    rng = np.random.default_rng(2)
    issued = np.sort(rng.uniform(1e5, 1e5 + 1000, 10_000))
    rows = [(i, t, t + 0.05 + np.cumsum(rng.uniform(0.009, 0.011, 100)), 100) for i, t in enumerate(issued)]
    written = QueryTimes.from_rows(rows)
    read = read_query_store(write_query_store(tmp_path, written))
    origin = issued.min()
    assert np.max(np.abs(read.token_times - (written.token_times - origin))) < 1e-6
    assert np.max(np.abs(read.itl()[~np.isnan(read.itl())] - written.itl()[~np.isnan(written.itl())])) < 1e-8


def test_columns_agree_with_the_per_query_definitions():
    times = QueryTimes.from_rows(ROWS)
    queries = [QueryTiming(*row) for row in ROWS]
    for name in ("ttft", "tpot", "e2e"):
        expected = [getattr(q, name) for q in queries]
        assert [None if np.isnan(v) else v for v in getattr(times, name)()] == expected, name
    itl = times.itl()
    assert sorted(itl[~np.isnan(itl)].tolist()) == sorted(g for q in queries for g in q.itl)
    slo = Slo(ttft_ms=300.0, tpot_ms=300.0)
    assert times_met(slo, times) == [slo.met_by(q) for q in queries]
    assert query_stats(times, slo) == query_stats(queries, slo)


def times_met(slo, times):
    return slo.met(times).tolist()


def test_percentile_follows_loadgen_and_leaves_out_missing_values():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 3.0  # index floor(0.5 x 4) = 2 of the sorted values
    assert percentile(np.array([np.nan, 1.0, 2.0]), 99) == 2.0
    assert percentile([], 50) is None and percentile([np.nan], 50) is None


def test_old_queries_json_is_still_read(tmp_path):
    (tmp_path / LEGACY_QUERY_TIMES).write_text(json.dumps({"schema": 1, "queries": [
        [3, 0.0, [0.25, 0.5, 0.875], 3], [1, 0.5, [], 0]]}))
    read = read_query_times(tmp_path)
    assert [q.token_times for q in read] == [(0.25, 0.5, 0.875), ()]
    assert query_stats(read).latency_ms["ttft"][50.0] == 250.0
    write_query_store(tmp_path, QueryTimes.from_rows(ROWS))  # a folder with both: the new file wins
    assert len(read_query_times(tmp_path)) == len(ROWS)


@pytest.mark.parametrize("damage, problem", [
    (lambda path: path.write_bytes(b"not a zip"), "is not a per-query times file"),
    (lambda path: _rewrite(path, drop="offsets"), "lacks offsets"),
    (lambda path: _rewrite(path, first_token=np.zeros(2)), "columns differ in length"),
    (lambda path: _rewrite(path, offsets=np.array([0, 5, 2, 2, 6])), "offsets decrease"),
    (lambda path: _rewrite(path, offsets=np.array([0, 1])), "do not index its 6 token times"),
    (lambda path: _rewrite(path, schema=np.array([9])), "has schema 9"),
])
def test_a_bad_file_names_the_file_the_problem_and_the_fix(tmp_path, damage, problem):
    path = write_query_store(tmp_path, QueryTimes.from_rows(ROWS))
    damage(path)
    with pytest.raises(InputError) as caught:
        read_query_times(tmp_path)
    message = str(caught.value)
    assert str(path) in message and problem in message and "re-run the LoadGen test" in message


def test_a_missing_file_and_a_broken_json_say_so(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_query_times(tmp_path)
    (tmp_path / LEGACY_QUERY_TIMES).write_text('{"queries": [[1, 2]]}')
    with pytest.raises(InputError, match=r"queries\.json.*is not a per-query times file"):
        read_query_times(tmp_path)


def _rewrite(path, drop=None, **replace):
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files if name != drop}
    arrays.update(replace)
    np.savez(path, **arrays)


def test_recorder_views_are_the_buffers_and_release_empties_them():
    recorder = QueryRecorder()
    recorder.add(7, 1.0, (1.5, 2.0), 2)
    recorder.add(8, 1.25, [], 0)
    columns = recorder.columns()
    assert columns.offsets.tolist() == [0, 2, 2] and columns.token_times.tolist() == [1.5, 2.0]
    recorder.release()
    assert len(recorder) == 0 and len(recorder.columns()) == 0
    assert columns.qsl_idx.tolist() == [7, 8]  # views taken before keep their values


@pytest.fixture(scope="module")
def profile():
    profile = load_profile("embedded")
    server = ScenarioSection(min_duration_ms=0, min_query_count=50, performance_sample_count=4, target_qps=200.0,
                             target_latency_percentile=0.9, ttft_latency_ms=100.0, tpot_latency_ms=30.0)
    return dataclasses.replace(profile, loadgen=dataclasses.replace(profile.loadgen, server=server),
                               serving_workload=ServingWorkloadSection(qps=200.0, seconds=0.25))


def instant_runner(tokens=5):
    engine = InstantEngine(answer=answer_tokens(tokens))
    return lambda settings, folder: run_loadgen(engine, [[1, 2]] * 4, settings.scenario, "PerformanceOnly",
                                                settings, folder)


def test_a_run_writes_queries_npz_that_capacity_sweep_and_workload_read(profile, tmp_path):
    base = run_settings(profile, "Server", "PerformanceOnly")
    point = qps_point(instant_runner(), base, 200.0, tmp_path / "sweep")
    assert (tmp_path / "sweep" / QUERY_STORE).is_file() and not (tmp_path / "sweep" / LEGACY_QUERY_TIMES).exists()
    assert point.stats.queries >= 50 and point.stats.good_queries == point.stats.queries
    assert point.stats.tokens_per_second == pytest.approx(5 * point.stats.samples_per_second)
    passed, ttft_ms, tpot_ms, reason = judge_probe(tmp_path / "sweep", base, 0.1)
    assert passed and ttft_ms < 90 and tpot_ms < 27, reason
    workload = run_workload(instant_runner(), profile, tmp_path / "workload")
    assert workload.stats.queries == workload.requests == 50


def test_capacity_judges_an_old_queries_json(profile, tmp_path):
    slow_first_token = [[i, i * 0.01, [i * 0.01 + 0.2, i * 0.01 + 0.21], 2] for i in range(20)]
    (tmp_path / LEGACY_QUERY_TIMES).write_text(json.dumps({"schema": 1, "queries": slow_first_token}))
    passed, ttft_ms, tpot_ms, reason = judge_probe(tmp_path, run_settings(profile, "Server", "PerformanceOnly"), 0.1)
    assert not passed and ttft_ms == pytest.approx(200.0) and tpot_ms == pytest.approx(10.0)
    assert "TTFT p90 200.0 ms > 90.0 ms" in reason


def test_written_file_is_a_plain_npz(tmp_path):
    """Other tools read it with numpy alone: ``np.load(path)``."""
    path = write_query_store(tmp_path, QueryTimes.from_rows(ROWS))
    assert zipfile.is_zipfile(path)
    with np.load(path) as data:
        assert data["token_gaps"].dtype == np.float32 and data["offsets"][-1] == 6
        assert data["first_token"][0] == 0.25 and np.isnan(data["first_token"][1])  # no answer: NaN
