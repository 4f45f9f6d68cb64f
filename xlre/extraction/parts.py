"""Extraction into a directory of parts, on this machine or on Ray.

``xlre extract --model M --input 'docs/*.jsonl.gz' --out OUT/`` (:func:`extract_parts`)
writes one JSONL part of triples per input file into ``OUT/`` and ``OUT/manifest.json``
(the layout: :mod:`xlre.extraction.partdir`). Consumes input files (text or JSONL, gzip
too, as :func:`~xlre.extraction.read_documents` reads them) and a model directory;
produces the parts, which :mod:`xlre.kg.reading` reads back as one file.

* ``engine="local"``: one Extractor in this process, the parts one after another.
* ``engine="ray"``: model-holding Ray actors (:mod:`xlre.extraction.ray_engine`).

Either way each part is written once, under a temporary name renamed when complete, and
recorded in the manifest. ``resume=True`` redoes only the parts with no finished output,
and refuses another model, other settings, or a finished part's input gone or changed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xlre.extraction.documents import ExtractError, InputReport, read_documents
from xlre.extraction.extractor import Extractor
from xlre.extraction.partdir import (
    Manifest,
    PartSettings,
    atomic_file,
    check_resume,
    clear_temporaries,
    extract_to,
    input_stat,
    model_fingerprint,
    part_name,
)
from xlre.extraction.ray_engine import PartJob, RayOptions, run_parts
from xlre.kg.reading import read_parts_manifest

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")
#: ``progress(stage, n)``: stage ``"documents"`` or ``"parts"``.
ProgressFn = Callable[[str, int], None]
#: Builds the Extractor for a device (``None``: choose); runs where the model is held.
ExtractorFactory = Callable[[str | None], Extractor]


def _check_inputs(inputs: list[str], out_dir: Path) -> None:
    if not inputs:
        raise ExtractError("no input files. Fix: give --input PATH (or a glob pattern)")
    if "-" in inputs:
        raise ExtractError(f"standard input cannot be split into parts in {out_dir}. Fix: "
                           "give input files, or --out FILE for one output file")
    names: dict[str, str] = {}
    for path in inputs:
        if not os.path.exists(path):
            raise ExtractError(f"{path}: no such file. Fix: check the path or the pattern")
        if not os.path.isfile(path):
            raise ExtractError(f"{path}: is a directory, not an input file. Fix: give its "
                               f"files, e.g. --input '{path}/*.jsonl'")
        name = part_name(path)
        if name in names:
            raise ExtractError(f"inputs {names[name]} and {path} would share the part name "
                               f"{name}. Fix: rename one of them")
        names[name] = path
    if out_dir.exists() and not out_dir.is_dir():
        raise ExtractError(f"{out_dir}: is a file, but a directory of parts is wanted (several "
                           "inputs, a glob, or a trailing /). Fix: give a directory for --out, "
                           "or remove the file")


def extract_parts(
    inputs: list[str],
    out_dir: str | Path,
    settings: PartSettings,
    *,
    resume: bool = False,
    engine: str = "local",
    ray_options: RayOptions | None = None,
    progress: ProgressFn | None = None,
    make_extractor: ExtractorFactory | None = None,
) -> dict[str, Any]:
    """Extract every input file into its own part in ``out_dir``; return the manifest's
    content plus ``parts_written_this_time``, ``parts_kept``, ``seconds`` and, for Ray,
    ``engine_info`` (actors, start-up seconds).

    ``make_extractor`` (default: ``settings.build_extractor``) builds the Extractor where
    the model is held (in this process, or in each Ray actor).
    """
    if engine not in ENGINES:
        raise ExtractError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    out_dir = Path(out_dir)
    _check_inputs(inputs, out_dir)
    if not (Path(settings.model) / "config.json").is_file():
        raise ExtractError(f"{settings.model}: no config.json, so no model directory. Fix: "
                           "give a directory written by xlre train")
    t0 = time.perf_counter()
    fingerprint = model_fingerprint(settings.model)
    existing = read_parts_manifest(out_dir) if out_dir.is_dir() else None
    if existing is None and resume:
        raise ExtractError(f"{out_dir}: nothing to resume (no manifest.json). Fix: drop --resume")
    if existing is not None and not resume:
        state = "finished" if existing.get("finished") else "unfinished"
        raise ExtractError(f"{out_dir}: holds the parts of an earlier extraction ({state}). "
                           "Fix: pass --resume to finish it with the same settings, or give a "
                           "new --out")
    finished: set[str] = set()
    if existing is not None:
        manifest = Manifest(out_dir, existing)
        finished = manifest.finished_parts()
        check_resume(existing, out_dir, settings, fingerprint, inputs, finished)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest = Manifest.new(out_dir, settings, fingerprint)
    if clear_temporaries(out_dir):
        logger.info("%s: removed the temporary files of an interrupted run", out_dir)
    manifest.plan(inputs, finished)
    jobs = [PartJob(part_name(p), p) for p in inputs if part_name(p) not in finished]
    logger.info("%s: %d parts to extract, %d finished before", out_dir, len(jobs), len(finished))
    manifest.write()
    factory = make_extractor or settings.build_extractor
    info: dict[str, Any] = {}
    written: list[str] = []
    try:
        if engine == "local":
            _run_local(jobs, out_dir, settings, manifest, factory, progress, written)
        else:
            info = run_parts(jobs, out_dir, settings, manifest, factory,
                             ray_options or RayOptions(), progress, written)
    finally:
        manifest.write(finished=len(manifest.finished_parts()) == len(manifest.data["parts"]))
    return {**manifest.data, "parts_written_this_time": written, "parts_kept": len(finished),
            "seconds": round(time.perf_counter() - t0, 2), "engine": engine,
            **({"engine_info": info} if info else {})}


def _run_local(jobs: list[PartJob], out_dir: Path, settings: PartSettings, manifest: Manifest,
               factory: ExtractorFactory, progress: ProgressFn | None,
               written: list[str]) -> None:
    """The parts one after another, with one Extractor in this process."""
    if not jobs:
        return
    extractor = factory(None)
    on_doc = (lambda: progress("documents", 1)) if progress else None
    for job in jobs:
        stat = input_stat(job.input)
        report = InputReport()
        docs = read_documents([job.input], settings.input_format, settings.lang,
                              settings.skip_bad, report)
        with atomic_file(out_dir / job.name) as sink:
            counts = extract_to(extractor, docs, sink, on_doc)
        manifest.finish_part(job.name, job.input, stat, counts, report.skipped, "local")
        written.append(job.name)
        if progress:
            progress("parts", 1)
