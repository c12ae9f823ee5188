"""llmperf baselines show / update: same rules as --llmperf-update-baselines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from unittest import mock

import pytest

DATA = Path(__file__).parents[1] / "test_report_data"
RUN_PASSED, RUN_FAILED, BASELINES = DATA / "decode-a", DATA / "decode-b", DATA / "baselines"
BASELINE_FILE = Path("smollm2-135m-instruct", "cpu", "transformers-float32.json")
METRIC = "decode.tokens_per_second"


def llmperf(*argv) -> int:
    """The real ``llmperf`` entry point, limited to the subcommands under test."""
    from pytest_llmperf.cli import main

    mine = {name: main.COMMANDS[name] for name in ("report", "baselines")}
    with mock.patch.dict(main.COMMANDS, mine, clear=True):
        return main.main([str(arg) for arg in argv])


@pytest.fixture
def baselines(tmp_path) -> Path:
    root = tmp_path / "baselines"
    shutil.copytree(BASELINES, root)
    return root


def entry(root: Path) -> dict:
    return json.loads((root / BASELINE_FILE).read_text())["metrics"][METRIC]


def run_value(run: Path) -> float:
    return json.loads((run / "results.json").read_text())["metrics"][0]["value"]


def edited_run(tmp_path: Path, edit) -> Path:
    data = json.loads((RUN_PASSED / "results.json").read_text())
    edit(data)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps(data))
    return tmp_path / "run"


def test_show_prints_a_table_per_key(baselines, capsys):
    assert llmperf("baselines", "show", "--baselines", baselines) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("SmolLM2-135M-Instruct / cpu / transformers / float32")
    assert out[1].split() == ["metric", "value", "unit", "direction", "tolerance", "date", "commit"]
    row = out[3].split()
    assert row[0] == METRIC and row[2:5] == ["tokens/s", "higher", "35%"]


def test_update_from_a_passed_run_keeps_tolerance_and_records_provenance(baselines, capsys):
    path = baselines / BASELINE_FILE
    data = json.loads(path.read_text())
    data["metrics"][METRIC]["tolerance"] = {"relative": 0.2}  # tuned by hand: must survive
    path.write_text(json.dumps(data))
    path.write_text(path.read_text().replace(str(run_value(RUN_PASSED)), "1.0"))  # an older value
    assert llmperf("baselines", "update", RUN_PASSED, "--baselines", baselines) == 0
    updated = entry(baselines)
    assert updated["value"] == run_value(RUN_PASSED)
    assert updated["tolerance"] == {"relative": 0.2}
    results = json.loads((RUN_PASSED / "results.json").read_text())
    assert updated["provenance"]["git_commit"] == results["run"]["git_commit"]
    assert updated["provenance"]["date"] == results["run"]["finished"]
    assert updated["provenance"]["test"] == results["metrics"][0]["test"]
    assert f"{METRIC} 1 -> {run_value(RUN_PASSED):.4g} tokens/s" in capsys.readouterr().out


def test_update_into_an_empty_folder_creates_the_keyed_file(tmp_path):
    assert llmperf("baselines", "update", RUN_PASSED, "--baselines", tmp_path / "fresh") == 0
    assert entry(tmp_path / "fresh")["value"] == run_value(RUN_PASSED)


def test_dry_run_writes_nothing(baselines, capsys):
    before = (baselines / BASELINE_FILE).read_bytes()
    assert llmperf("baselines", "update", RUN_PASSED, "--baselines", baselines, "--dry-run") == 0
    assert (baselines / BASELINE_FILE).read_bytes() == before
    assert "would update" in capsys.readouterr().out


def test_refuses_the_real_failed_run(baselines, capsys):
    before = (baselines / BASELINE_FILE).read_bytes()
    assert llmperf("baselines", "update", RUN_FAILED, "--baselines", baselines) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "status 'failed'" in err and "test_decode_tokens_per_second" in err
    assert (baselines / BASELINE_FILE).read_bytes() == before


@pytest.mark.parametrize("break_run", ["status-failed", "metric-failed", "never-finished"])
def test_refuses_a_failed_run_with_one_line(baselines, tmp_path, capsys, break_run):
    def edit(data):
        if break_run == "status-failed":
            data["run"]["status"] = "failed"
            data["tests"][0]["outcome"] = "failed"
        elif break_run == "metric-failed":
            data["metrics"][0]["verdict"] = "fail"
        else:
            data["run"].update(status="running", finished=None)

    before = (baselines / BASELINE_FILE).read_bytes()
    assert llmperf("baselines", "update", edited_run(tmp_path, edit), "--baselines", baselines) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("llmperf baselines: not updated: ")
    assert (baselines / BASELINE_FILE).read_bytes() == before


def test_a_run_without_baseline_keys_is_bad_input(baselines, tmp_path, capsys):
    def strip(data):
        data["metrics"][0]["extra"].pop("baseline_key")

    assert llmperf("baselines", "update", edited_run(tmp_path, strip), "--baselines", baselines) == 2
    assert "baseline_key" in capsys.readouterr().err


def test_show_names_a_malformed_baseline_file(baselines, capsys):
    (baselines / BASELINE_FILE).write_text("{broken")
    assert llmperf("baselines", "show", "--baselines", baselines) == 2
    err = capsys.readouterr().err
    assert "transformers-float32.json" in err and "not valid JSON" in err


def test_show_skips_array_manifests(baselines, capsys):
    arrays = baselines / BASELINE_FILE.with_suffix("")
    arrays.mkdir()
    (arrays / "manifest.json").write_text('{"prompts": []}')
    (arrays / "prompt-0.npy").write_bytes(b"")
    assert llmperf("baselines", "show", "--baselines", baselines) == 0
    assert "arrays: 1 .npy files" in capsys.readouterr().out
