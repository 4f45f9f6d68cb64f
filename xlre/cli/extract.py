"""``xlre extract`` and ``xlre score``: triples from raw text, and their score."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from xlre.cli.common import app, err_console, progress_bar, quiet_hf


@app.command("extract")
def extract_cmd(
    model: Annotated[Path, typer.Option(help="A model directory written by xlre train.")],
    inputs: Annotated[list[str] | None, typer.Argument(help="Text files (one document a line) or JSONL ({\"id\", \"text\", \"lang\"}); none or - for standard input.")] = None,
    lang: Annotated[str | None, typer.Option(help="Language (BCP 47 tag: en, fr, zh, zh-Hans, ...) of documents that do not name one (default: detected per document).")] = None,
    kb: Annotated[Path | None, typer.Option(help="KB directory: attach KB ids to subjects and objects.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Relation probability threshold (default: the model's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 32,
    optimize: Annotated[str | None, typer.Option(help="CPU only: int8 (dynamic int8 quantisation; see BENCHMARKS.md for its speed and F1 cost).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write JSONL triples here instead of standard output.")] = None,
    input_format: Annotated[str, typer.Option(help="auto, text or jsonl.")] = "auto",
    skip_bad: Annotated[bool, typer.Option(help="Skip bad input lines (counted by reason) instead of stopping.")] = False,
) -> None:
    """Extract (subject, relation, object) triples from raw text, one JSON triple a line.

    A document with no language (no --lang, no "lang" field) gets it detected; the summary
    on standard error counts documents per language, given and detected, and those in a
    language the model was not trained on (each such language is also warned about once).
    """
    import os
    import tempfile

    from xlre.extraction import Extractor, InputReport, read_documents

    quiet_hf()
    report = InputReport()
    tmp_path = None
    try:
        extractor = Extractor.from_pretrained(model, threshold=threshold, batch_size=batch_size,
                                              kb=kb, optimize=optimize)
        docs = read_documents(inputs or ["-"], input_format, lang, skip_bad, report)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
            sink = os.fdopen(fd, "w", encoding="utf-8")
        else:
            sink = sys.stdout
        n_triples = 0
        with progress_bar(None, {"docs": "documents"}) as update:
            def counted():
                for doc in docs:
                    yield doc
                    update("docs", 1)

            for triple in extractor.extract(counted()):
                sink.write(json.dumps(triple.to_json(), ensure_ascii=False) + "\n")
                n_triples += 1
        if out is not None:
            sink.close()
            os.replace(tmp_path, out)
            tmp_path = None
    finally:
        if tmp_path is not None:
            with __import__("contextlib").suppress(OSError):
                os.unlink(tmp_path)
    err_console.print_json(json.dumps({"triples": n_triples, **report.as_dict(),
                                       "languages": extractor.languages.report.as_dict()},
                                      ensure_ascii=False))



@app.command("score")
def score_cmd(
    gold: Annotated[Path, typer.Option(help='Gold JSONL: {"id", "lang", "text", "triples": [{"subject", "relation", "object"}]} a line.')],
    triples: Annotated[list[str], typer.Option("--triples", help="Triples from xlre extract, run on the same documents; repeatable.")],
) -> None:
    """Precision, recall and F1 of extracted triples against gold triples, per language."""
    from xlre.evaluation.triples import score_triples

    result = score_triples(gold, triples)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")

