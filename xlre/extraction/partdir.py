"""The layout of a directory of extracted parts: part names, the manifest, atomic writes.

``xlre extract --input 'docs/*.jsonl.gz' --out OUT/`` writes one JSONL part per input file
into ``OUT/`` and ``OUT/manifest.json``. This module holds what both engines (local and
Ray, :mod:`xlre.extraction.parts`) share:

* **Part names** come from the input's path as given (the path that document ids carry):
  its characters outside ``[A-Za-z0-9._-]`` become ``_``, then a hash of the whole path
  is added, so ``a/docs.txt`` and ``b/docs.txt`` get ``a_docs.txt-<hash>.jsonl`` and
  ``b_docs.txt-<hash>.jsonl``, the same on every run.
* **Atomic parts.** A part is written under a temporary name in ``OUT/`` and renamed
  when complete (:func:`write_part`), so a killed or retried part never leaves half a
  part, nor a doubled one, under its final name.
* **The manifest** (``format: xlre-triples-parts``) lists every part with its input,
  the input's size and modification time, ``finished``, and its counts (documents,
  triples, skipped lines by reason, documents per language given and detected); plus
  the model, its fingerprint, the settings, the input list and the totals. It is
  rewritten (atomically) as parts finish and marked ``finished`` when all are: the
  readers of :mod:`xlre.kg.reading` accept the directory only then. A part is finished
  when the manifest says so and its file is there.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from xlre.extraction.documents import Document, ExtractError
from xlre.extraction.extractor import Extractor
from xlre.kg.reading import PARTS_FORMAT, PARTS_MANIFEST

logger = logging.getLogger(__name__)

PART_SUFFIX = ".jsonl"
_GLOB_CHARS = re.compile(r"[*?\[]")
_SLUG_MAX = 80


def part_name(path: str) -> str:
    """The part file name of input ``path`` (as given): stable and unique per path."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", path).strip("._-")[:_SLUG_MAX] or "input"
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{slug}-{digest}{PART_SUFFIX}"


def expand_inputs(patterns: Iterable[str]) -> tuple[list[str], bool]:
    """Input paths from paths and glob patterns (``docs/*.jsonl.gz``, ``**`` recursive),
    each pattern's matches sorted; and whether any pattern was a glob.

    A path that exists is taken as it is, even with glob characters in it. A pattern
    that matches no file, and a path given twice, are errors naming it and the fix."""
    out: list[str] = []
    globbed = False
    for pattern in patterns:
        if pattern != "-" and _GLOB_CHARS.search(pattern) and not os.path.exists(pattern):
            globbed = True
            matches = sorted(m for m in glob.glob(pattern, recursive=True) if os.path.isfile(m))
            if not matches:
                raise ExtractError(f"--input {pattern!r}: no file matches it. Fix: check the "
                                   "pattern (quote it so that xlre, not the shell, expands it)")
            out.extend(matches)
        else:
            out.append(pattern)
    seen: set[str] = set()
    for path in out:
        if path in seen:
            raise ExtractError(f"input {path} is given twice (patterns may overlap). Fix: give "
                               "each input file once")
        seen.add(path)
    return out, globbed


def is_parts_dir(out: str | None, n_inputs: int, globbed: bool) -> bool:
    """Whether ``--out`` is a directory of parts (else one file, or standard output):
    it ends with ``/``, is an existing directory, or the inputs are several or a glob."""
    if out is None:
        return False
    return out.endswith(("/", os.sep)) or os.path.isdir(out) or globbed or n_inputs > 1


@dataclass(frozen=True)
class PartSettings:
    """What an extraction into parts runs with; all but ``batch_size`` must be the same
    when it is resumed (they change the triples)."""

    model: str
    lang: str | None = None
    kb: str | None = None
    threshold: float | None = None
    batch_size: int = 32
    optimize: str | None = None
    input_format: str = "auto"
    skip_bad: bool = False

    def fixed(self) -> dict[str, Any]:
        """The settings a resume must match."""
        return {k: v for k, v in asdict(self).items() if k != "batch_size"}

    def build_extractor(self, device: str | None = None) -> Extractor:
        """The Extractor these settings describe (``device``: ``None`` chooses)."""
        return Extractor.from_pretrained(self.model, threshold=self.threshold,
                                         batch_size=self.batch_size, kb=self.kb,
                                         device=device, optimize=self.optimize)


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 over the model directory's ``config.json`` and weight files: a resume with a
    retrained model under the same path is refused."""
    model_dir = Path(model_dir)
    h = hashlib.sha256()
    files = [model_dir / "config.json", *sorted(model_dir.glob("*.safetensors"))]
    for path in files:
        if not path.is_file():
            continue
        h.update(path.name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@dataclass
class PartCounts:
    """What one part produced: documents, triples, skipped lines, languages."""

    documents: int = 0
    triples: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    given: dict[str, int] = field(default_factory=dict)
    detected: dict[str, int] = field(default_factory=dict)
    not_trained_on: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "triples": self.triples,
                "skipped": dict(sorted(self.skipped.items())),
                "languages": {"given": dict(sorted(self.given.items())),
                              "detected": dict(sorted(self.detected.items())),
                              "not_trained_on": dict(sorted(self.not_trained_on.items()))},
                "seconds": round(self.seconds, 3)}


def extract_to(extractor: Extractor, docs: Iterable[Document], sink: TextIO,
               on_doc: Callable[[], None] | None = None) -> PartCounts:
    """Extract ``docs`` and write their triples to ``sink``, one JSON line each; return
    the counts (documents per language: this call's share of the extractor's report)."""
    report = extractor.languages.report
    before = (Counter(report.given), Counter(report.detected), Counter(report.not_trained_on))
    counts = PartCounts()
    t0 = time.perf_counter()

    def counted() -> Iterable[Document]:
        for doc in docs:
            counts.documents += 1
            yield doc
            if on_doc is not None:
                on_doc()

    for triple in extractor.extract(counted()):
        sink.write(json.dumps(triple.to_json(), ensure_ascii=False) + "\n")
        counts.triples += 1
    counts.given = dict(report.given - before[0])
    counts.detected = dict(report.detected - before[1])
    counts.not_trained_on = dict(report.not_trained_on - before[2])
    counts.seconds = time.perf_counter() - t0
    return counts


@contextlib.contextmanager
def atomic_file(path: Path, binary: bool = False):
    """Open a temporary file next to ``path``; rename it to ``path`` if the block ends
    without an error, else remove it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def write_part(out_dir: Path, name: str, data: bytes) -> None:
    """Write a part's bytes under its name, atomically (a retried part replaces, never
    appends)."""
    with atomic_file(out_dir / name, binary=True) as fh:
        fh.write(data)


def clear_temporaries(out_dir: Path) -> int:
    """Remove the temporary files a killed run left in ``out_dir``; return how many."""
    n = 0
    for path in out_dir.glob(".*.tmp"):
        path.unlink(missing_ok=True)
        n += 1
    return n


# --------------------------------------------------------------------------- manifest
def input_stat(path: str) -> dict[str, int]:
    st = os.stat(path)
    return {"input_bytes": st.st_size, "input_mtime_ns": st.st_mtime_ns}


class Manifest:
    """``OUT/manifest.json`` of a directory of parts, kept in memory and rewritten
    atomically (at most once a second while parts finish, and at the end)."""

    def __init__(self, out_dir: Path, data: dict[str, Any]) -> None:
        self.out_dir = out_dir
        self.data = data
        self._written = 0.0

    @classmethod
    def new(cls, out_dir: Path, settings: PartSettings, fingerprint: str) -> Manifest:
        return cls(out_dir, {"format": PARTS_FORMAT, "version": 1, "finished": False,
                             "model": settings.model, "model_sha256": fingerprint,
                             "settings": settings.fixed(), "inputs": [], "parts": {},
                             "counts": {}})

    def finished_parts(self) -> set[str]:
        return {name for name, part in self.data["parts"].items()
                if part.get("finished") and (self.out_dir / name).is_file()}

    def plan(self, inputs: list[str], finished: set[str]) -> None:
        """Record this run's inputs; parts not finished are (re)planned as unfinished."""
        self.data["inputs"] = list(inputs)
        self.data["finished"] = False
        parts = self.data["parts"]
        wanted = {part_name(path) for path in inputs}
        for name in [n for n in parts if n not in wanted and n not in finished]:
            del parts[name]  # an unfinished part of an input this run does not name
        for path in inputs:
            name = part_name(path)
            if name not in finished:
                parts[name] = {"input": path, "finished": False}

    def finish_part(self, name: str, path: str, stat: dict[str, int], counts: PartCounts,
                    skipped: dict[str, int], engine: str) -> None:
        """Record part ``name`` as finished: its input ``path`` and ``stat``, ``counts``,
        the input lines ``skipped`` by reason, and the engine that wrote it."""
        counts.skipped = dict(skipped)
        self.data["parts"][name] = {"input": path, **stat, "finished": True,
                                    "engine": engine, **counts.as_dict()}
        logger.info("part %s: %d documents, %d triples", name, counts.documents, counts.triples)
        if time.monotonic() - self._written >= 1.0:
            self.write()

    def totals(self) -> dict[str, Any]:
        total: dict[str, Any] = {"parts": 0, "documents": 0, "triples": 0}
        skipped: Counter[str] = Counter()
        langs: dict[str, Counter[str]] = {"given": Counter(), "detected": Counter(),
                                          "not_trained_on": Counter()}
        for part in self.data["parts"].values():
            if not part.get("finished"):
                continue
            total["parts"] += 1
            total["documents"] += part["documents"]
            total["triples"] += part["triples"]
            skipped.update(part["skipped"])
            for key, counter in langs.items():
                counter.update(part["languages"][key])
        total["skipped"] = dict(sorted(skipped.items()))
        total["languages"] = {k: dict(sorted(v.items())) for k, v in langs.items()}
        return total

    def write(self, finished: bool = False) -> None:
        self.data["finished"] = finished
        self.data["counts"] = self.totals()
        with atomic_file(self.out_dir / PARTS_MANIFEST) as fh:
            json.dump(self.data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        self._written = time.monotonic()


def check_resume(manifest: dict[str, Any], out_dir: Path, settings: PartSettings,
                 fingerprint: str, inputs: list[str], finished: set[str]) -> None:
    """Refuse (:class:`ExtractError`, with the fix) to resume with another model, other
    settings, without an input of a finished part, or with such an input changed."""
    where = out_dir / PARTS_MANIFEST
    fresh = f"or extract into a new --out (or remove {out_dir} to start over)"
    if manifest["model"] != settings.model:
        raise ExtractError(f"{where}: the parts were extracted with --model {manifest['model']}, "
                           f"not {settings.model}. Fix: resume with --model {manifest['model']}, {fresh}")
    if manifest.get("model_sha256") != fingerprint:
        raise ExtractError(f"{where}: the model in {settings.model} has changed since the parts "
                           f"were extracted (its weights or config differ). Fix: resume with the "
                           f"model the parts were made with, {fresh}")
    old = manifest.get("settings", {})
    new = settings.fixed()
    def shown(flag: str, value: Any) -> str:
        if value is None or value is False:
            return f"no {flag}"
        return flag if value is True else f"{flag} {value}"

    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            flag = "--" + key.replace("_", "-")
            raise ExtractError(f"{where}: the parts were extracted with {shown(flag, old.get(key))}, "
                               f"this run has {shown(flag, new.get(key))}. Fix: resume with "
                               f"{shown(flag, old.get(key))}, {fresh}")
    given = set(inputs)
    for name in sorted(finished):
        part = manifest["parts"][name]
        if part["input"] not in given:
            raise ExtractError(f"{where}: finished part {name} was extracted from {part['input']}, "
                               "which this run does not name. Fix: give the same --input as the "
                               f"first run, {fresh}")
        try:
            stat = input_stat(part["input"])
        except FileNotFoundError:
            raise ExtractError(f"{part['input']}: the input of finished part {name} is gone. "
                               f"Fix: put it back, {fresh}") from None
        if stat != {k: part.get(k) for k in stat}:
            raise ExtractError(f"{part['input']}: changed since its part {name} was extracted "
                               f"(size or modification time). Fix: remove {out_dir / name} to "
                               f"have it redone on --resume, {fresh}")
