"""pytest wiring: options, markers, fixtures and hooks. Logic lives elsewhere."""

from __future__ import annotations

import os
import sys

import pytest

from . import hardware, models
from .config import options
from .runtime import interrupts, progress
from .errors import LlmperfError
from .gating.checker import TIMING, Checker
from .harness.session import EngineTarget, LlmperfSession, engine_targets

SETTINGS_KEY = pytest.StashKey["options.Settings"]()
SESSION_KEY = pytest.StashKey[LlmperfSession]()
INSTALLED_KEY = pytest.StashKey[bool]()  # this session installed the signal handlers

MARKERS = {
    "cpu": "runs an engine on the CPU",
    "cuda": "runs an engine on an NVIDIA GPU (torch CUDA build)",
    "rocm": "runs an engine on an AMD GPU (torch ROCm build)",
    "ascend": "runs an engine on a Huawei Ascend NPU (torch_npu)",
    "real_weights": "judges accuracy: skipped, before any engine loads, on a weightless model shape",
}
#: Tests that use this fixture (directly or through llmperf_engine) are parametrized per engine x device.
ENGINE_FIXTURE = "llmperf_target"


def pytest_addoption(parser):
    options.add_options(parser)


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    try:
        settings = options.read_settings(config)
        from .config.profiles import load_profile

        profile = load_profile(settings.profile)
        if settings.model and not models.is_special_model_name(settings.model):
            models.resolve(settings.model)  # a wrong path is a usage error now, not fifty failures later
    except LlmperfError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    session = config.stash[SESSION_KEY] = LlmperfSession(settings, profile)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and progress.lines_enabled(bool(getattr(reporter, "isatty", False))):
        session.say = reporter.write_line  # a performance test's rounds, one line each
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        _pin_worker(settings, workerinput)
    elif not config.option.collectonly:
        config.pluginmanager.register(ControllerHooks(settings, profile.name), "llmperf-controller")


def _pin_worker(settings, workerinput) -> None:
    """Worker gwN sees accelerator N only; set before any engine touches the device."""
    if os.environ.get("LLMPERF_PIN_DEVICES", "1") == "0" or settings.device == "cpu":
        return
    index = int(str(workerinput.get("workerid", "gw0")).lstrip("gw") or 0)
    devices = (settings.device,) if settings.device != "auto" else ("cuda", "rocm", "ascend")
    for device in devices:
        hardware.pin_worker(device, index)


def pytest_generate_tests(metafunc):
    if ENGINE_FIXTURE not in metafunc.fixturenames:
        return
    settings = metafunc.config.stash[SETTINGS_KEY]
    params = [pytest.param(t, id=t.id, marks=getattr(pytest.mark, t.device)) for t in engine_targets(settings)]
    metafunc.parametrize("llmperf_target", params, scope="session")


def pytest_sessionstart(session):
    # SIGINT / SIGTERM stop the session at once (docs/loadgen.md)
    session.config.stash[INSTALLED_KEY] = interrupts.install()


def close_engines(config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    try:
        if session is not None:
            session.close()
    except KeyboardInterrupt:  # Ctrl-C while the engines shut down: go on stopping what is left
        pass


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    close_engines(config)
    interrupts.end_session()  # after an interrupt: stop every descendant, then end the process here
    if config.stash.get(INSTALLED_KEY, False):  # a session that stopped before it started installed nothing
        interrupts.uninstall()


# -- fixtures -------------------------------------------------------------------

@pytest.fixture(scope="session")
def llmperf_session(request) -> LlmperfSession:
    """Session state: settings, profile, model, engine cache, shared work."""
    return request.config.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def llmperf_profile(llmperf_session):
    """The active profile (``--llmperf-profile``)."""
    return llmperf_session.profile


@pytest.fixture(scope="session")
def llmperf_target(request) -> EngineTarget:
    """Overridden by parametrization; here only so the name resolves."""
    return request.param


@pytest.fixture
def llmperf_engine(llmperf_session, llmperf_target, request):
    """The loaded engine for this item's (engine, device); skips where it cannot run."""
    from .suite.engines import engine_or_skip, skip_weightless

    if request.node.get_closest_marker("real_weights"):
        skip_weightless(llmperf_session)
    return engine_or_skip(llmperf_session, llmperf_target)


@pytest.fixture
def llmperf_check(request, llmperf_session) -> Checker:
    """Record metrics and judge them against limits and baselines; judged when the test returns.

    Bound to the test's ``llmperf_engine`` where it uses one (engine key and baseline key)."""
    check = Checker(request.node.nodeid, request.node.user_properties, llmperf_session.baselines,
                    llmperf_session.settings.update_baselines, llmperf_session.settings.strict_baselines)
    if "llmperf_engine" in request.fixturenames:
        engine = request.getfixturevalue("llmperf_engine")
        if hasattr(engine, "info"):  # a test module may override the fixture with something else
            check.bind(engine, baseline_key=llmperf_session.baseline_key(engine))
    return check


@pytest.fixture(autouse=True)
def _llmperf_timings(request):
    """Move the time this test spent loading, generating and scoring into results.json."""
    session = request.config.stash.get(SESSION_KEY, None)
    before = dict(session.timings) if session else {}
    yield
    if session:
        for phase, total in session.timings.items():
            spent = total - before.get(phase, 0.0)
            if spent > 0:
                request.node.user_properties.append((TIMING, {"phase": phase, "seconds": spent}))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """Judge what the test recorded on ``llmperf_check`` once its body returns, so a forgotten
    ``verify()`` still fails the test (in its call phase: FAILED, not a teardown error)."""
    result = yield
    check = pyfuncitem.funcargs.get("llmperf_check")
    if isinstance(check, Checker):
        check.verify()
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A user error (bad file, dead endpoint) reads as its one-line message, not a traceback."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and isinstance(call.excinfo.value, LlmperfError):
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"


# -- reporting (controller only) ----------------------------------------------------

class ControllerHooks:
    """Registered only in the process that owns the session (as junitxml does)."""

    def __init__(self, settings, profile_name: str):
        self.settings = settings
        self.profile_name = profile_name
        self.recorder = None
        self.written: list = []
        self.running = None  # the test item being run, and when it started (for an interrupt)

    def pytest_sessionstart(self, session):
        # Created here, not at configure time, so --help/--markers write nothing.
        from .harness.recording import SessionRecorder

        self.recorder = SessionRecorder(self.settings, self.profile_name, list(sys.argv))
        interrupts.on_hard_stop(self.recorder.hard_stop)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        import time

        self.running = (item, time.perf_counter())

    def pytest_runtest_logfinish(self, nodeid, location):
        self.running = None

    def pytest_keyboard_interrupt(self, excinfo):
        if self.recorder is not None:
            import time

            item, started = self.running or (None, time.perf_counter())
            self.recorder.on_interrupted(item.nodeid if item else None, item.user_properties if item else [],
                                         time.perf_counter() - started)

    def pytest_runtest_logreport(self, report):
        if self.recorder is not None:
            self.recorder.on_report(report)

    def pytest_sessionfinish(self, session, exitstatus):
        # Engines stop here, before the terminal summary, so what they print while stopping comes
        # before pytest's last lines (pytest_unconfigure closes again: a no-op by then).
        close_engines(session.config)
        if self.recorder is not None:
            self.written = self.recorder.finish(int(exitstatus))

    def pytest_terminal_summary(self, terminalreporter):
        if self.recorder is None:
            return
        if self.settings.durations:
            terminalreporter.write_sep("=", "llmperf durations (seconds)")
            for line in self.recorder.duration_lines():
                terminalreporter.write_line(line)
        lines = self.recorder.summary_lines()
        if lines:
            terminalreporter.write_sep("=", "llmperf summary")
            for line in lines:
                terminalreporter.write_line(line)
        for path in self.written:
            terminalreporter.write_line(f"baseline written: {path}")
        if self.settings.update_baselines and not self.written:
            terminalreporter.write_line("baselines not updated: the run did not pass, or recorded none")
