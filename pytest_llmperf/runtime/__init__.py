"""Services any layer may use while a run goes on: crash-safe writes (``atomic``), the results.json
record (``results``), progress lines (``progress``), interrupts (``interrupts``) and the processes a
run started (``process_tree``)."""
