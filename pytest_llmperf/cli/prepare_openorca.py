"""``llmperf prepare-openorca``: MLPerf's processorca filters, writing parquet (never pickle).

Accepts MLPerf's option names too (``--dataset_pq_path``, ``--model_dir``, ...),
so an existing command line keeps working.  Writes
``open_orca_gpt4_tokenized_llama.sampled_<N>.parquet`` (the dataset the
benchmark uses) and ``...calibration_<K>.parquet`` into ``--export-dir`` and
prints what every filter kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config.parsers import non_negative, positive

PREFIX = "open_orca_gpt4_tokenized_llama"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset-pq-path", "--dataset_pq_path", required=True,
                        help="the OpenOrca GPT-4 parquet (columns id, system_prompt, question, response)")
    parser.add_argument("--model-dir", "--model_dir", required=True,
                        help="checkpoint folder whose tokenizer counts tokens ('embedded' for the embedded model)")
    parser.add_argument("--seqlen-limit", "--seqlen_limit", type=positive, default=1024,
                        help="inputs and outputs must be shorter than this many tokens (default 1024)")
    parser.add_argument("--export-dir", "--export_dir", required=True, help="folder to write the parquet files to")
    parser.add_argument("--num-total-samples", "--num_total_samples", type=positive, default=24576,
                        help="rows in the sampled set, split evenly among origins (default 24576)")
    parser.add_argument("--calibration-subset-size", "--calibration_subset_size", type=non_negative, default=1000,
                        help="rows in the calibration subset; 0 = none (default 1000)")
    parser.add_argument("--prompt-format", choices=("llama2", "chat-template"), default="llama2",
                        help="llama2: MLPerf's prompt text (default); chat-template: the tokenizer's chat template")


def run(args: argparse.Namespace) -> int:
    from ..datasets import processorca
    from ..errors import InputError
    from ..models import load_tokenizer

    source = Path(args.dataset_pq_path)
    export = Path(args.export_dir)
    if export.exists() and not export.is_dir():
        raise InputError(export, "is a file", "pass a folder for --export-dir")
    frame = processorca.read_openorca_parquet(source)
    tokenizer = load_tokenizer(args.model_dir)
    settings = processorca.ProcessorcaSettings(seqlen_limit=args.seqlen_limit, total_samples=args.num_total_samples,
                                               prompt_format=args.prompt_format)
    sampled, _, report = processorca.process(frame, tokenizer, settings, source)

    print(f"read {report.rows_read:,} rows from {source}")
    for step, rows in report.kept_after:
        print(f"  {step}: {rows:,} left")
    print("  per origin: " + ", ".join(f"{origin} {rows:,}" for origin, rows in report.per_origin))
    export.mkdir(parents=True, exist_ok=True)
    written = [_write(sampled, export / f"{PREFIX}.sampled_{args.num_total_samples}.parquet")]
    size = args.calibration_subset_size
    if size and size <= len(sampled):
        written.append(_write(processorca.calibration_subset(sampled, size), export / f"{PREFIX}.calibration_{size}.parquet"))
    elif size:
        print(f"calibration subset skipped: {size} rows asked, the sampled set has {len(sampled)}")
    for path in written:
        print(f"wrote {path}")
    return 0


def _write(frame, path: Path) -> Path:
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)  # a killed run never leaves a half file under the final name
    return path
