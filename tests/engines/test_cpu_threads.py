"""Thread control of in-process CPU engines: OMP_NUM_THREADS wins, else the usable cores shared
among xdist workers; the transformers engine applies and records the count."""

import os

import pytest

from pytest_llmperf import hardware


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(hardware.XDIST_WORKERS_VARIABLE, raising=False)
    return monkeypatch


def test_omp_num_threads_is_honoured(clean_env):
    clean_env.setenv("OMP_NUM_THREADS", "3")
    assert hardware.cpu_threads() == (3, "OMP_NUM_THREADS")


def test_usable_cores_are_shared_among_xdist_workers(clean_env):
    cores = len(os.sched_getaffinity(0))
    assert hardware.cpu_threads()[0] == cores
    clean_env.setenv(hardware.XDIST_WORKERS_VARIABLE, str(cores * 4))
    threads, why = hardware.cpu_threads()
    assert threads == 1 and "xdist workers" in why  # never zero, never more than a worker's share


def test_the_affinity_mask_counts_not_the_machine(clean_env):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 usable cores to restrict the mask to one")
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
        assert hardware.cpu_threads()[0] == 1
    finally:
        os.sched_setaffinity(0, before)


def test_the_transformers_engine_records_its_threads(hf_engine):
    import torch

    assert hf_engine.info.threads == torch.get_num_threads() >= 1
    assert any(note.startswith("torch CPU threads:") for note in hf_engine.info.notes)
