"""Compile mode from LoadGen's worker threads: the CUDA graph trees' per-thread state.

torch 2.11 sets that state up only in the thread that imported
``torch._inductor.cudagraph_trees`` and fails a bare assert in any other thread
(seen on the H200: docs/gpu-runs.md). The engine sets it up for the calling
thread; this needs no GPU.
"""

import threading

import pytest

torch = pytest.importorskip("torch")


def _in_new_thread(function):
    found = {}

    def run():
        try:
            found["value"] = function()
        except BaseException as exc:  # reported to the test's thread
            found["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in found:
        raise found["error"]
    return found["value"]


def test_a_new_thread_gets_the_state_set_up():
    from torch._inductor import cudagraph_trees

    from pytest_llmperf.engines.transformers_engine import _cuda_graph_state_for_this_thread

    def set_up():
        before = torch._C._is_key_in_tls("tree_manager_containers")
        _cuda_graph_state_for_this_thread(torch)
        after = torch._C._is_key_in_tls("tree_manager_containers")
        return before, after, cudagraph_trees.get_obj(cudagraph_trees.local, "tree_manager_containers")

    before, after, containers = _in_new_thread(set_up)
    assert (before, after, containers) == (False, True, {})


def test_the_importing_thread_keeps_its_state():
    from torch._inductor import cudagraph_trees

    from pytest_llmperf.engines.transformers_engine import _cuda_graph_state_for_this_thread

    containers = cudagraph_trees.get_obj(cudagraph_trees.local, "tree_manager_containers")
    _cuda_graph_state_for_this_thread(torch)
    assert cudagraph_trees.get_obj(cudagraph_trees.local, "tree_manager_containers") is containers
