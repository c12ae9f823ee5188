"""Find the accuracy logs of finished TEST06 audits, and the scenario each ran."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..loadgen.accuracy_log import ACCURACY_LOG
from ..loadgen.detail import DETAIL_LOG, read_detail
from ..loadgen.runner import RUN_FILE
from ..loadgen.settings import SCENARIOS


def find_test06_logs(folder: Path) -> list[tuple[str, Path]]:
    """(scenario, accuracy log) pairs under ``folder``.

    ``folder`` holds the log itself (its scenario read from run.json or
    mlperf_log_detail.txt beside it), or one subfolder per scenario, either
    holding the log or in the submission layout ``<Scenario>/TEST06/accuracy/``.
    """
    if not folder.is_dir():
        raise InputError(folder, "is not a folder", f"pass a folder holding {ACCURACY_LOG} or <Scenario>/ subfolders")
    if (folder / ACCURACY_LOG).is_file():
        return [(scenario_of(folder), folder / ACCURACY_LOG)]
    found = []
    for scenario in SCENARIOS:
        for candidate in (folder / scenario / ACCURACY_LOG, folder / scenario / "TEST06" / "accuracy" / ACCURACY_LOG):
            if candidate.is_file():
                found.append((scenario, candidate))
                break
    if not found:
        raise InputError(folder, f"holds no {ACCURACY_LOG}, nor {'/, '.join(SCENARIOS)}/ subfolders with one",
                         "pass the folder of a TEST06 audit run")
    return found


def scenario_of(folder: Path) -> str:
    run_file = folder / RUN_FILE
    if run_file.is_file():
        try:
            scenario = json.loads(run_file.read_text(encoding="utf-8")).get("scenario")
        except json.JSONDecodeError:
            scenario = None
        if scenario in SCENARIOS:
            return scenario
    if (folder / DETAIL_LOG).is_file():
        scenario = read_detail(folder).get("effective_scenario")
        if scenario in SCENARIOS:
            return scenario
    raise InputError(folder, f"its scenario is unknown (no {RUN_FILE} or {DETAIL_LOG} naming it)",
                     "put the log in a subfolder named after its scenario: Offline/, Server/ or Interactive/")
