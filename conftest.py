"""Repository-level pytest configuration.

The plugin itself is registered through the ``pytest11`` entry point once the
package is installed; this file only keeps runs from the repository quiet and
offline.
"""

import os

# Nothing reaches a model hub: every model and dataset is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# pytester runs the plugin in isolated pytest sessions for the plugin's own tests.
pytest_plugins = ["pytester"]
