"""Deprecated name of ``pytest_llmperf.engines.servers`` (the server launcher moved beside the engines).

``python -m pytest_llmperf.servers ...`` still works: it says the new name on stderr and runs it.
"""

import sys
import warnings

from .engines.servers import *  # noqa: F401,F403  (the old import path keeps working)
from .engines.servers import main

NEW_NAME = "pytest_llmperf.engines.servers"

if __name__ == "__main__":
    print(f"python -m pytest_llmperf.servers is deprecated: use python -m {NEW_NAME}", file=sys.stderr)
    sys.exit(main())
else:
    warnings.warn(f"pytest_llmperf.servers is deprecated: import {NEW_NAME}", DeprecationWarning, stacklevel=2)
