"""``xlre extract`` and ``xlre score``: triples from raw text, and their score."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from xlre.cli.common import app, err_console, fail, new_bar, progress_bar, quiet_hf


@app.command("extract")
def extract_cmd(
    model: Annotated[Path, typer.Option(help="A model directory written by xlre train.")],
    inputs: Annotated[list[str] | None, typer.Argument(help="Text files (one document a line) or JSONL ({\"id\", \"text\", \"lang\"}), .gz too; none or - for standard input.")] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", help="An input file or a quoted glob pattern ('docs/*.jsonl.gz', ** recursive); repeatable, added to INPUTS.")] = None,
    lang: Annotated[str | None, typer.Option(help="Language (BCP 47 tag: en, fr, zh, zh-Hans, ...) of documents that do not name one (default: detected per document).")] = None,
    kb: Annotated[Path | None, typer.Option(help="KB directory: attach KB ids to subjects and objects.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Relation probability threshold (default: the model's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 32,
    optimize: Annotated[str | None, typer.Option(help="CPU only: onnx-int8 (the encoder in ONNX Runtime, int8; needs xlre[onnx]) or int8 (torch dynamic int8). BENCHMARKS.md has their speed and F1 cost.")] = None,
    out: Annotated[str | None, typer.Option(help="Write JSONL triples to this file instead of standard output; a directory of parts (one per input, and manifest.json) when it ends with /, is a directory, or the inputs are several or a glob.")] = None,
    input_format: Annotated[str, typer.Option(help="auto, text or jsonl.")] = "auto",
    skip_bad: Annotated[bool, typer.Option(help="Skip bad input lines (counted by reason) instead of stopping.")] = False,
    resume: Annotated[bool, typer.Option(help="Directory of parts: redo only the parts with no finished output (same model and settings).")] = False,
    engine: Annotated[str, typer.Option(help="Directory of parts: local (this process) or ray (model-holding Ray actors; pip install 'xlre[ray]').")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="--engine ray: the cluster to join (auto, ray://HOST:10001); default: start a local Ray instance.")] = None,
    ray_actors: Annotated[int | None, typer.Option(help="--engine ray: at most this many actors (default: one per GPU, else one per --ray-cpus-per-actor CPUs).")] = None,
    ray_cpus_per_actor: Annotated[int, typer.Option(help="--engine ray: CPU cores (torch threads) per actor.")] = 1,
) -> None:
    """Extract (subject, relation, object) triples from raw text, one JSON triple a line.

    One output file (or standard output), or, with several inputs, a glob, or --out
    ending in /, a directory of parts: one part per input file and manifest.json, which
    --resume continues and --engine ray spreads over Ray actors. A document with no
    language (no --lang, no "lang" field) gets it detected; the summary on standard error
    counts documents per language, given and detected, and those in a language the model
    was not trained on (each such language is also warned about once).
    """
    from xlre.extraction.partdir import expand_inputs, is_parts_dir

    quiet_hf()
    paths, globbed = expand_inputs([*(inputs or []), *(input_ or [])])
    if is_parts_dir(out, len(paths), globbed):
        _extract_parts(paths, out, model, lang, kb, threshold, batch_size, optimize,
                       input_format, skip_bad, resume, engine, ray_address, ray_actors,
                       ray_cpus_per_actor)
        return
    if resume or engine != "local":
        raise fail("--resume and --engine ray work on a directory of parts. Fix: give --out "
                   "DIR/ (ending with /), or drop them")
    _extract_one(paths or ["-"], Path(out) if out is not None else None, model, lang, kb,
                 threshold, batch_size, optimize, input_format, skip_bad)


def _extract_one(paths: list[str], out: Path | None, model: Path, lang: str | None,
                 kb: Path | None, threshold: float | None, batch_size: int,
                 optimize: str | None, input_format: str, skip_bad: bool) -> None:
    """Every input into one JSONL file (written under a temporary name) or standard output."""
    import os
    import tempfile

    from xlre.extraction import Extractor, InputReport, read_documents

    report = InputReport()
    tmp_path = None
    try:
        extractor = Extractor.from_pretrained(model, threshold=threshold, batch_size=batch_size,
                                              kb=kb, optimize=optimize)
        docs = read_documents(paths, input_format, lang, skip_bad, report)
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


def _extract_parts(paths: list[str], out: str, model: Path, lang: str | None, kb: Path | None,
                   threshold: float | None, batch_size: int, optimize: str | None,
                   input_format: str, skip_bad: bool, resume: bool, engine: str,
                   ray_address: str | None, ray_actors: int | None,
                   ray_cpus_per_actor: int) -> None:
    """One part per input file into the directory ``out``, with its manifest."""
    from xlre.extraction.partdir import PartSettings
    from xlre.extraction.parts import extract_parts
    from xlre.extraction.ray_engine import RayOptions

    settings = PartSettings(model=str(model), lang=lang, kb=str(kb) if kb else None,
                            threshold=threshold, batch_size=batch_size, optimize=optimize,
                            input_format=input_format, skip_bad=skip_bad)
    options = RayOptions(ray_address, ray_actors, ray_cpus_per_actor)
    if engine == "local" and (ray_address or ray_actors):
        raise fail("--ray-address and --ray-actors need --engine ray")
    with new_bar() as bar:
        rows = {"parts": bar.add_task("parts", total=len(paths)),
                "documents": bar.add_task("documents", total=None)}

        def update(stage: str, n: int) -> None:
            bar.advance(rows[stage], n)

        result = extract_parts(paths, out, settings, resume=resume, engine=engine,
                               ray_options=options, progress=update)
        bar.advance(rows["parts"], result["parts_kept"])
    summary = {**result["counts"], "out": str(out), "engine": engine,
               "parts_written_this_time": len(result["parts_written_this_time"]),
               "parts_kept": result["parts_kept"], "seconds": result["seconds"],
               "manifest": str(Path(out) / "manifest.json")}
    err_console.print_json(json.dumps(summary, ensure_ascii=False))


@app.command("score")
def score_cmd(
    gold: Annotated[Path, typer.Option(help='Gold JSONL: {"id", "lang", "text", "triples": [{"subject", "relation", "object"}]} a line.')],
    triples: Annotated[list[str], typer.Option("--triples", help="Triples from xlre extract, run on the same documents; repeatable.")],
) -> None:
    """Precision, recall and F1 of extracted triples against gold triples, per language."""
    from xlre.evaluation.triples import score_triples

    result = score_triples(gold, triples)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")

