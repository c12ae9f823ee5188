"""``llmperf prepare-model``: write the embedded model's checkpoint once."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="a local checkpoint folder to check instead of the embedded model")


def run(args: argparse.Namespace) -> int:
    from .. import models

    spec = models.resolve(args.model)
    print(f"model: {spec.name} ({models.parameter_count(spec):,} parameters)")
    print(spec.path)
    return 0
