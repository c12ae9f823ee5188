"""``llmperf``: the console script.

Each subcommand lives in its own module of this package with two functions:
``configure(parser)`` adds its arguments and ``run(args) -> int`` does the work
(heavy imports inside ``run``).  User errors (``LlmperfError``) are printed as
one line, without a traceback, and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import LlmperfError

#: subcommand -> (module in this package, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "evaluate-accuracy": ("evaluate_accuracy", "score an mlperf_log_accuracy.json with ROUGE, as MLPerf's llama2-70b script does"),
    "test06": ("test06", "run MLPerf TEST06 checks on a folder holding mlperf_log_accuracy.json"),
    "report": ("report", "write HTML/Markdown/JSON reports from results, compared to a baseline and history"),
    "compare": ("compare", "the A/B verdict table of a paired session's results (or of two results): exit 1 on REGRESSED"),
    "baselines": ("baselines", "show baselines, or update them from a passed run's results"),
    "prepare-openorca": ("prepare_openorca", "apply MLPerf's processorca filters to an OpenOrca parquet"),
    "find-qps": ("find_qps", "find the highest Server/Interactive target_qps whose LoadGen run is VALID; prints the user.conf line"),
    "sweep": ("sweep", "Server sweep over rates (and concurrencies): tokens/s, TTFT/TPOT/ITL/E2E p50/p90/p99, goodput"),
    "prepare-model": ("prepare_model", "materialize the embedded model as a local checkpoint; prints its folder last"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported (``--help`` stays fast)."""
    from .. import __version__

    parser = argparse.ArgumentParser(prog="llmperf", description="pytest-llmperf command-line tools")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(f"{__package__}.{module_name}")
            module.configure(sub_parser)
            sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if arg in COMMANDS), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except LlmperfError as exc:
        print(f"llmperf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"llmperf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
