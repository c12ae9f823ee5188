"""pytest-llmperf: certify an LLM serving stack with pytest.

The plugin (``pytest_llmperf.plugin``) is registered through the ``pytest11``
entry point; everything else is plain Python that can be used without pytest.
"""

__version__ = "0.1.0"
