"""``llmperf evaluate-accuracy``: score an accuracy log as MLPerf's llama2-70b script does.

Takes the same arguments as ``language/llama2-70b/evaluate-accuracy.py``
(``--checkpoint-path``, ``--mlperf-accuracy-file``, ``--dataset-file``,
``--dtype``, ``--verbose``) and prints the same result dict, with plain numbers,
as its last line.  The numbers are identical to rouge_score's; the work is
spread over every core.  The dataset may be parquet or JSON; MLPerf's ``.pkl``
needs ``--allow-pickle`` (unpickling runs code from the file); ``embedded``
names the embedded OpenOrca sample the default profile runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..config.parsers import positive

#: MLPerf's --dtype names -> the accuracy-log reader's element types.
DTYPES = {"int32": "int32", "int64": "int64", "float": "float32"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-path", required=True,
                        help="the model's checkpoint folder (its tokenizer decodes the responses); "
                             "'embedded' for the embedded model")
    parser.add_argument("--mlperf-accuracy-file", required=True,
                        help="mlperf_log_accuracy.json of an AccuracyOnly run (or its folder)")
    parser.add_argument("--dataset-file", required=True,
                        help="processed OpenOrca with an 'output' column: .parquet, .json, or .pkl with --allow-pickle; "
                             "'embedded' for the embedded sample")
    parser.add_argument("--dtype", default="int64", choices=tuple(DTYPES),
                        help="element type of the logged responses (default int64, as MLPerf's script; "
                             "pytest-llmperf and MLPerf's reference SUT write int32)")
    parser.add_argument("--verbose", action="store_true", help="also print timings and the sentence splitter's rule")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow a .pkl dataset (unpickling runs code from the file: only for files you trust)")
    parser.add_argument("--sentence-splitter", default="auto", choices=("auto", "punkt", "regex"),
                        help="splitter for rougeLsum: nltk punkt (MLPerf's) where its data is installed, "
                             "else the regex fallback (default: auto)")
    parser.add_argument("--method", default="fast", choices=("fast", "reference"),
                        help="fast (default; identical numbers) or reference (rouge_score itself, slow)")
    parser.add_argument("--workers", type=positive, default=0,
                        help="processes to score with (default: every usable core)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the result dict to FILE")


def run(args: argparse.Namespace) -> int:
    from ..runtime import atomic
    from ..datasets.openorca import EMBEDDED, embedded_records, read_table
    from ..loadgen.accuracy_log import read_accuracy_log
    from ..metrics import rouge
    from ..models import load_tokenizer

    started = time.perf_counter()
    log_path = Path(args.mlperf_accuracy_file)
    entries = read_accuracy_log(log_path, DTYPES[args.dtype])
    if log_path.is_dir():
        log_path = log_path / "mlperf_log_accuracy.json"
    if args.dataset_file == EMBEDDED:
        references = [record["output"] for record in embedded_records()]
    else:
        rows = read_table(Path(args.dataset_file), ("output",), allow_pickle=args.allow_pickle, only_required=True)
        references = [row["output"] if isinstance(row["output"], str) else "" for row in rows]
    tokenizer = load_tokenizer(args.checkpoint_path)
    loaded = time.perf_counter()
    result = rouge.score_accuracy_log(entries, references, tokenizer, log_path=log_path,
                                      splitter=args.sentence_splitter, method=args.method, workers=args.workers)
    scored = time.perf_counter()
    print(f"rougeLsum sentence splitter: {result.splitter}")
    if args.verbose:
        print(f"responses: {len(entries)} logged, {result.gen_num} scored (first per qsl_idx); "
              f"read {loaded - started:.1f} s, scored {scored - loaded:.1f} s ({args.method})")
    print("\nResults\n")
    print(result.mlperf_dict())
    if args.json:
        atomic.write_json(args.json, {**result.mlperf_dict(), "sentence_splitter": result.splitter})
    return 0
