"""Build a KB directory from a Wikidata JSON dump (``xlre kb build``).

Consumes Wikidata's ``latest-all.json`` (or ``.json.bz2``, ``.json.gz``): a JSON array
written one entity a line, each line ending with ``,``, the first line ``[`` and the last
``]``. Produces a KB directory in xlre's text format (:mod:`xlre.kb.knowledge_base`):
``entities.jsonl``, ``relations.jsonl``, ``triples.tsv``, plus ``manifest.json`` (the
counts, the dump, its date and the settings).

What is kept:

- **Entities**: items (``Q`` ids) with at least ``min_sitelinks`` sitelinks and at least
  one name in a chosen language. ``popularity`` is the item's sitelink count.
- **Names**: per chosen language, the labels and then the aliases of every Wikidata
  language code whose base code (:func:`alignment.languages.normalize_lang`) is that
  language: ``zh``, ``zh-hans``, ``zh-hant``, ``zh-cn``, ``zh-tw``, ``zh-hk``, ``zh-sg``,
  ... all go to ``zh`` (``en-gb`` to ``en``; ``zh-yue`` is Cantonese, ``yue``, not
  ``zh``). Codes are taken in the order of :func:`alignment.languages.by_base_language`:
  the base code itself, then codes in the language's usual script (``zh-hans``,
  ``zh-cn``), then the others (``zh-hant``, ``zh-tw``), alphabetically within each; the
  text is kept as written (the gazetteer folds scripts when it matches). An item with
  no name in a language but a ``mul`` label ("valid in all languages") gets its ``mul``
  label and aliases there.
- **Types**: the first direct ``P31`` (instance of) class found in the type table
  (preferred statements first, then normal ones, in the dump's order; ``P279``
  subclasses are not followed). :data:`DEFAULT_TYPES` is the built-in table (PER, LOC,
  ORG); a TSV file ``QID<TAB>TYPE`` replaces it. An item whose classes are not in the
  table is kept without a ``type``, or dropped with ``typed_only``.
- **Facts**: main snaks of the chosen properties (all properties when none are chosen)
  whose value is an item, skipping statements of rank ``deprecated``, between two kept
  entities. Values in the 2014 layout (``numeric-id`` without ``id``) count too.
- **Relations**: every chosen property (or, with none chosen, every property with a
  kept fact), named per chosen language from the property entities (``P`` ids) of the
  dump; a property the dump does not describe gets empty ``labels``.

It runs in constant memory, in two passes: pass 1 streams the dump once, writing the
kept entities and the candidate facts of kept entities to a spool file; pass 2 reads the
spool and keeps the facts whose tail was kept (a bitmap over Q numbers, 1 bit an id:
about 17 MB for today's ids). bz2 is decompressed in parallel by ``indexed_bzip2`` when
it is installed (else by the standard library, one core), gzip by ISA-L (``isal``) when
it is installed (else zlib). Pass 1 parses the lines on worker processes
(:func:`default_worker_count`): the main process cuts the decompressed dump into chunks of
whole lines and writes the workers' entities, facts and counts back in the dump's order,
so the KB is byte for byte the one a single process builds. Each line is decoded by
msgspec into only the members the build reads (:func:`_slim_entity`).

Every output is written in ``OUT/.build/`` and renamed into place at the end, the
manifest last. Pass 1 writes a checkpoint every ``checkpoint_lines`` lines (the
decompressed byte offset, the line, the sizes of the partial files and the counts);
``resume=True`` truncates the partial files to the last checkpoint and goes on from its
offset, so a killed build resumed gives the same output as one run straight through.

A malformed line (not JSON, not an entity object, a bad id or a member of the wrong
shape) stops the build with ``FILE:LINE``, the problem and the fix; with ``skip_bad``
it is counted by reason (and the first such line per reason reported) and skipped.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import gzip
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson

from alignment.errors import SettingError
from alignment.languages import LanguageError, normalize_lang, parse_lang
from alignment.parallel_tokenize import default_workers
from xlre.kb.knowledge_base import ENTITIES_FILE, RELATIONS_FILE, TRIPLES_FILE, KBError

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
WORK_DIR = ".build"
CHECKPOINT_FILE = "checkpoint.json"
SPOOL_FILE = "candidate-facts.tsv"
_CHECKPOINT_VERSION = 1

#: P31 class -> coarse type: the built-in type table (a ``--types`` TSV replaces it).
DEFAULT_TYPES: dict[str, str] = {
    # people
    "Q5": "PER",  # human
    # places
    "Q6256": "LOC",  # country
    "Q3624078": "LOC",  # sovereign state
    "Q3024240": "LOC",  # historical country
    "Q1763527": "LOC",  # constituent country
    "Q7275": "LOC",  # state
    "Q107390": "LOC",  # federated state
    "Q35657": "LOC",  # state of the United States
    "Q1221156": "LOC",  # state of Germany
    "Q10864048": "LOC",  # first-level administrative country subdivision
    "Q34876": "LOC",  # province
    "Q28575": "LOC",  # county
    "Q779415": "LOC",  # special administrative region of China
    "Q82794": "LOC",  # region
    "Q1620908": "LOC",  # historical region
    "Q5107": "LOC",  # continent
    "Q515": "LOC",  # city
    "Q1549591": "LOC",  # big city
    "Q1637706": "LOC",  # city with millions of inhabitants
    "Q200250": "LOC",  # metropolis
    "Q5119": "LOC",  # capital city
    "Q1093829": "LOC",  # city of the United States
    "Q486972": "LOC",  # human settlement
    "Q3957": "LOC",  # town
    "Q532": "LOC",  # village
    "Q15284": "LOC",  # municipality
    "Q484170": "LOC",  # commune of France
    "Q747074": "LOC",  # comune of Italy
    "Q23442": "LOC",  # island
    "Q8502": "LOC",  # mountain
    "Q46831": "LOC",  # mountain range
    "Q4022": "LOC",  # river
    "Q23397": "LOC",  # lake
    "Q165": "LOC",  # sea
    "Q9430": "LOC",  # ocean
    # organisations
    "Q43229": "ORG",  # organization
    "Q4830453": "ORG",  # business
    "Q783794": "ORG",  # company
    "Q891723": "ORG",  # public company
    "Q6881511": "ORG",  # enterprise
    "Q161726": "ORG",  # multinational corporation
    "Q163740": "ORG",  # nonprofit organization
    "Q484652": "ORG",  # international organization
    "Q245065": "ORG",  # intergovernmental organization
    "Q327333": "ORG",  # government agency
    "Q2659904": "ORG",  # government organization
    "Q7278": "ORG",  # political party
    "Q7210356": "ORG",  # political organization
    "Q3918": "ORG",  # university
    "Q875538": "ORG",  # public university
    "Q902104": "ORG",  # private university
    "Q2385804": "ORG",  # educational institution
    "Q4671277": "ORG",  # academic institution
    "Q31855": "ORG",  # research institute
    "Q1664720": "ORG",  # institute
    "Q1331793": "ORG",  # media company
    "Q215380": "ORG",  # musical group
    "Q476028": "ORG",  # association football club
    "Q847017": "ORG",  # sports club
    "Q12973014": "ORG",  # sports team
}

#: ``progress(stage, n)``: ``n`` more dump lines read (stage ``"entities"``) or
#: candidate facts checked (stage ``"facts"``).
Progress = Callable[[str, int], None]

_QID = re.compile(r"Q[1-9][0-9]*")
_PID = re.compile(r"P[1-9][0-9]*")
_MUL = "mul"
_STAGE_PASS1, _STAGE_PASS2, _STAGE_FINISH = "entities", "facts", "finish"


class WikidataDumpError(KBError):
    """A line of a Wikidata dump is malformed; the message names the file, the line and
    the fix."""


@dataclass(frozen=True)
class BuildSettings:
    """What :func:`build_kb` keeps (the manifest records it; a resumed build must match).

    ``langs``: base language codes; ``properties``: property ids (None: all);
    ``types``: P31 class -> type; ``types_source``: where the table came from;
    ``limit``: read only the first N entity lines (None: all).
    """

    langs: tuple[str, ...]
    properties: tuple[str, ...] | None = None
    types: tuple[tuple[str, str], ...] = tuple(DEFAULT_TYPES.items())
    types_source: str = "built-in"
    min_sitelinks: int = 0
    typed_only: bool = False
    limit: int | None = None

    def __post_init__(self) -> None:
        if not self.langs:
            raise SettingError("no language chosen. Fix: pass --langs, e.g. --langs en,fr,zh")
        if self.min_sitelinks < 0:
            raise SettingError(f"--min-sitelinks must be >= 0, got {self.min_sitelinks}. "
                               "Fix: pass 0 to keep every item")
        if self.limit is not None and self.limit < 1:
            raise SettingError(f"--limit must be >= 1, got {self.limit}. Fix: leave it out to "
                               "read the whole dump")

    def fingerprint(self) -> dict[str, Any]:
        """The settings as JSON (the type table as its SHA-256)."""
        table = json.dumps(sorted(self.types)).encode()
        return {
            "langs": list(self.langs),
            "properties": None if self.properties is None else list(self.properties),
            "types": {"source": self.types_source, "classes": len(self.types),
                      "sha256": hashlib.sha256(table).hexdigest()},
            "min_sitelinks": self.min_sitelinks,
            "typed_only": self.typed_only,
            "limit": self.limit,
        }


def parse_langs(spec: str) -> tuple[str, ...]:
    """``"en,fr,zh-Hans"`` -> ``("en", "fr", "zh")`` (base codes, duplicates dropped)."""
    out: list[str] = []
    for tag in (t.strip() for t in spec.split(",")):
        if tag:
            base = normalize_lang(tag)
            if base not in out:
                out.append(base)
    if not out:
        raise SettingError(f"--langs {spec!r} names no language. Fix: pass e.g. --langs en,fr,zh")
    return tuple(out)


def parse_properties(spec: str) -> tuple[str, ...]:
    """``"P17,P19"``, or ``"@FILE"`` (one id a line, ``#`` comments), -> property ids."""
    if spec.startswith("@"):
        path = Path(spec[1:])
        ids: list[tuple[str, int | None]] = []
        with open(path, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                text = line.split("#", 1)[0].strip()
                if text:
                    ids.append((text, line_no))
        where = str(path)
    else:
        ids = [(t.strip(), None) for t in spec.split(",") if t.strip()]
        where = "--properties"
    out: list[str] = []
    for ident, line_no in ids:
        if not _PID.fullmatch(ident):
            raise KBError(where, line_no, f"{ident!r} is not a Wikidata property id",
                          "give ids such as P17 or P569, comma-separated or one a line in @FILE")
        if ident not in out:
            out.append(ident)
    if not out:
        raise KBError(where, None, "no property ids given",
                      "give ids such as P17,P19, or leave --properties out to keep every property")
    return tuple(out)


def read_type_table(path: Path | str) -> dict[str, str]:
    """A type table: TSV ``QID<TAB>TYPE`` lines (``#`` comments and blank lines skipped)."""
    path = Path(path)
    table: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            fields = [f.strip() for f in text.split("\t")]
            if len(fields) != 2 or not _QID.fullmatch(fields[0]) or not fields[1]:
                raise KBError(path, line_no, f"expected QID<TAB>TYPE, found {line.rstrip()!r}",
                              "write one class a line, e.g. Q5<TAB>PER")
            if fields[0] in table and table[fields[0]] != fields[1]:
                raise KBError(path, line_no, f"{fields[0]} is mapped twice "
                              f"({table[fields[0]]} and {fields[1]})", "keep one of the lines")
            table[fields[0]] = fields[1]
    if not table:
        raise KBError(path, None, "the type table is empty", "write one class a line, e.g. Q5<TAB>PER")
    return table


def dump_date(path: Path | str, max_modified: str | None) -> tuple[str | None, str | None]:
    """The dump's date (``YYYY-MM-DD``) and where it came from: a ``YYYYMMDD`` in the file
    name (``wikidata-20250101-all.json.bz2``), else the latest ``modified`` seen."""
    match = re.search(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)", Path(path).name)
    if match:
        return "-".join(match.groups()), "file name"
    if max_modified:
        return max_modified[:10], "latest modified"
    return None, None


def open_dump(path: Path | str, threads: int | None = None) -> IO[bytes]:
    """Open a dump for reading bytes: ``.bz2`` (in parallel through ``indexed_bzip2`` when
    installed), ``.gz`` (through ISA-L's ``isal.igzip`` when installed) or plain JSON.
    The stream is seekable (by decompressed offset)."""
    path = Path(path)
    if not path.is_file():
        raise KBError(path, None, "no such dump file" if not path.exists() else "is not a file",
                      "pass --wikidata PATH/latest-all.json.bz2 (or .json.gz, .json)")
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if path.suffix == ".bz2":
        if magic != b"BZh":
            raise KBError(path, None, "is not a bzip2 file",
                          "download the dump again, or rename it to match its compression")
        try:
            import indexed_bzip2
        except ImportError:
            logger.warning("indexed_bzip2 is not installed: decompressing %s on one core", path)
            return bz2.open(path, "rb")  # type: ignore[return-value]
        return indexed_bzip2.open(str(path), parallelization=threads or os.cpu_count() or 1)
    if path.suffix == ".gz":
        if magic[:2] != b"\x1f\x8b":
            raise KBError(path, None, "is not a gzip file",
                          "download the dump again, or rename it to match its compression")
        try:
            from isal import igzip  # ISA-L's inflate: about twice zlib's speed, seekable too
        except ImportError:
            logger.warning("isal is not installed: decompressing %s with zlib", path)
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return igzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


class _BadLine(Exception):
    """Internal: one dump line is malformed (caught per line; never leaves this module)."""

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason
        self.problem = problem


def _member(obj: dict, key: str, kind: type, what: str) -> Any:
    """``obj[key]`` checked to be a ``kind``; missing or ``[]`` (PHP's empty map) give an
    empty ``kind``."""
    value = obj.get(key)
    if value is None or (value == [] and kind is dict):
        return kind()
    if not isinstance(value, kind):
        raise _BadLine("bad_structure", f"{what} is a {type(value).__name__}, "
                       f"expected a {'JSON object' if kind is dict else 'JSON array'}")
    return value


def _text(term: Any, what: str) -> str:
    if not isinstance(term, dict) or not isinstance(term.get("value"), str):
        raise _BadLine("bad_structure", f'{what} has no "value" string')
    return term["value"].strip()


def _item_id(value: Any) -> str | None:
    """The Q id of an entity-id datavalue's ``value``; None when it is not an item."""
    if not isinstance(value, dict):
        raise _BadLine("bad_structure", "an entity-id datavalue is not a JSON object")
    ident = value.get("id")
    if isinstance(ident, str):
        if not ident.startswith("Q"):
            return None  # a property, lexeme, form, sense or schema
        if not _QID.fullmatch(ident):
            raise _BadLine("bad_structure", f"item value {ident!r} is not a Q id")
        return ident
    if value.get("entity-type") != "item":
        return None
    number = value.get("numeric-id")  # the 2014 layout
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise _BadLine("bad_structure", "an item value has neither an id nor a numeric-id")
    return f"Q{number}"


_ABSENT = msgspec.Raw()  # a member the line does not have (no JSON value is empty)


class _Top(msgspec.Struct):
    """The members of a dump entity that a build reads, each kept as its raw JSON text;
    every other member (descriptions, most of all) is skipped without being built."""

    id: msgspec.Raw = _ABSENT
    type: msgspec.Raw = _ABSENT
    modified: msgspec.Raw = _ABSENT
    labels: msgspec.Raw = _ABSENT
    aliases: msgspec.Raw = _ABSENT
    sitelinks: msgspec.Raw = _ABSENT
    claims: msgspec.Raw = _ABSENT


class _Skip(msgspec.Struct):
    """A JSON object whose members are not read (a sitelink: only their count matters)."""


_TOP = msgspec.json.Decoder(_Top)
_SITELINKS = msgspec.json.Decoder(dict[str, _Skip])
_CLAIMS = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _loads(raw: msgspec.Raw) -> Any:
    return orjson.loads(memoryview(raw))


def _slim_entity(text: bytes, properties: frozenset[str] | None) -> dict[str, Any] | None:
    """The entity of one dump line as the dict ``orjson.loads`` would give, less what the
    build never reads: the unread members, and the claims of properties other than P31 and
    ``properties`` (all kept when None). Each sitelink's value is a placeholder, since only
    their number is used. None when the line is not a JSON object of valid UTF-8, or when a
    member is not of its usual shape: the caller then parses the line whole, so a bad line
    is diagnosed as before.

    About twice as fast as ``orjson.loads`` on real entities: msgspec checks the skipped
    members' syntax without building them (it is as strict as orjson there, except that a
    number beyond the float range passes in a skipped member).
    """
    try:
        text.decode("utf-8")  # msgspec does not check the UTF-8 of skipped strings
        top = _TOP.decode(text)
    except (UnicodeDecodeError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    obj: dict[str, Any] = {}
    for key in ("id", "type", "modified", "labels", "aliases"):
        raw = getattr(top, key)
        if raw:
            obj[key] = _loads(raw)
    if top.sitelinks:
        try:
            obj["sitelinks"] = _SITELINKS.decode(top.sitelinks)
        except msgspec.ValidationError:  # [] (PHP's empty map), null, or odd values
            obj["sitelinks"] = _loads(top.sitelinks)
    if top.claims:
        try:
            claims = _CLAIMS.decode(top.claims)
        except msgspec.ValidationError:  # not an object: the builder says what it is
            obj["claims"] = _loads(top.claims)
        else:
            obj["claims"] = {prop: _loads(raw) for prop, raw in claims.items()
                             if properties is None or prop in properties or prop == "P31"}
    return obj


@dataclass
class _Tally:
    """What one chunk of dump lines adds to a build (pass 1 on a worker)."""

    lines: int
    entity_lines: int
    entities: str
    facts: str
    counts: dict[str, int]
    typed: dict[str, int]
    aliases: dict[str, int]
    bad: dict[str, dict[str, Any]]
    max_modified: str | None
    relation_labels: dict[str, dict[str, str]]


def _whole_line_chunks(src: IO[bytes], size: int) -> Iterator[bytes]:
    """``src`` read in blocks of about ``size`` bytes, each cut after its last newline."""
    carry = b""
    while True:
        block = src.read(size)
        if not block:
            if carry:
                yield carry
            return
        if carry:
            block = carry + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:  # one line longer than a block
            carry = block
            continue
        carry = block[cut:]
        yield block[:cut] if carry else block


#: The builder of a pass-1 worker process (set by its initializer).
_WORKER_BUILDER: _Builder | None = None


def _init_chunk_worker(dump: Path, settings: BuildSettings, skip_bad: bool) -> None:
    global _WORKER_BUILDER
    _WORKER_BUILDER = _Builder(dump, Path(), settings, skip_bad, threads=None, workers=1,
                               checkpoint_lines=1, progress_lines=1, progress=None)


def _chunk_tally(chunk: bytes, first_line: int) -> _Tally:
    assert _WORKER_BUILDER is not None, "the pass-1 worker was not initialised"
    return _WORKER_BUILDER.tally(chunk, first_line)


@contextlib.contextmanager
def _chunk_pool(builder: _Builder) -> Iterator[ProcessPoolExecutor]:
    """The pass-1 worker processes, forked at once (on Linux, where the parent's imports
    are inherited); pending chunks are cancelled if the build fails."""
    for lang in builder.langs:  # compiles the language-tag parser once, for every fork
        builder._tag(lang)
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    pool = ProcessPoolExecutor(builder.workers, mp_context=ctx, initializer=_init_chunk_worker,
                               initargs=(builder.dump, builder.settings, builder.skip_bad))
    pool.submit(int)  # with fork, the first task starts every worker: here, before the dump's threads
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


class _Builder:
    """The state of one build: the settings, the counts, and the pass-1 position."""

    def __init__(self, dump: Path, out: Path, settings: BuildSettings, skip_bad: bool, *,
                 threads: int | None, workers: int, checkpoint_lines: int, progress_lines: int,
                 progress: Progress | None, chunk_bytes: int = 1 << 22) -> None:
        self.dump, self.out, self.settings = dump, out, settings
        self.work = out / WORK_DIR
        self.skip_bad, self.threads, self.workers = skip_bad, threads, workers
        self.chunk_bytes = chunk_bytes
        self.checkpoint_lines, self.progress_lines = checkpoint_lines, progress_lines
        self.progress = progress
        self.langs = settings.langs
        self.lang_set = frozenset(settings.langs)
        self.properties = None if settings.properties is None else frozenset(settings.properties)
        self.types = dict(settings.types)
        self._tags: dict[str, tuple[str, tuple[int, str]] | None] = {}
        # state that the checkpoint saves
        self.stage = _STAGE_PASS1
        self.offset = 0
        self.line_no = 0
        self.entity_lines = 0
        self.entities_bytes = 0
        self.spool_bytes = 0
        self.counts: dict[str, int] = {}
        self.typed: dict[str, int] = {}
        self.aliases: dict[str, int] = {}
        self.bad: dict[str, dict[str, Any]] = {}
        self.max_modified: str | None = None
        self.relation_labels: dict[str, dict[str, str]] = {}
        self.resumes = 0

    # -- names -------------------------------------------------------------------------

    def _tag(self, tag: str) -> tuple[str, tuple[int, str]] | None:
        """(base language, sort key) of a Wikidata language code, if it is a chosen one."""
        if tag in self._tags:
            return self._tags[tag]
        result = None
        try:
            parsed = parse_lang(tag)
        except LanguageError:
            parsed = None
        if parsed is not None and parsed.lang in self.lang_set:
            base = parsed.lang
            if tag.strip().lower() == base:
                rank = 0
            elif parsed.script is not None and parsed.script == parse_lang(base).script:
                rank = 1
            else:
                rank = 2
            result = (base, (rank, tag.lower()))
        self._tags[tag] = result
        return result

    def _names(self, obj: dict) -> dict[str, list[str]]:
        """Labels then aliases per chosen language, variants merged (module docstring)."""
        labels = _member(obj, "labels", dict, '"labels"')
        aliases = _member(obj, "aliases", dict, '"aliases"')
        found: dict[str, list[tuple[tuple[int, str], int, list[str]]]] = {}
        for kind, table in ((0, labels), (1, aliases)):
            for tag, terms in table.items():
                hit = self._tag(tag)
                if hit is None:
                    continue
                if kind == 0:
                    values = [_text(terms, f"label {tag!r}")]
                else:
                    if not isinstance(terms, list):
                        raise _BadLine("bad_structure", f"aliases {tag!r} is not a JSON array")
                    values = [_text(t, f"an alias {tag!r}") for t in terms]
                found.setdefault(hit[0], []).append((hit[1], kind, values))
        names: dict[str, list[str]] = {}
        mul: list[str] | None = None
        for lang in self.langs:
            groups = sorted(found.get(lang, ()), key=lambda g: (g[1], g[0]))
            values = [v for _, _, vs in groups for v in vs]
            if not any(values):
                if mul is None:
                    mul = []
                    if _MUL in labels:
                        mul.append(_text(labels[_MUL], "label 'mul'"))
                    mul_aliases = aliases.get(_MUL, [])
                    if not isinstance(mul_aliases, list):
                        raise _BadLine("bad_structure", "aliases 'mul' is not a JSON array")
                    mul.extend(_text(t, "an alias 'mul'") for t in mul_aliases)
                values = mul
            kept = list(dict.fromkeys(v for v in values if v))
            if kept:
                names[lang] = kept
        return names

    def _relation_names(self, obj: dict) -> dict[str, str]:
        labels = _member(obj, "labels", dict, '"labels"')
        best: dict[str, tuple[tuple[int, str], str]] = {}
        for tag, term in labels.items():
            hit = self._tag(tag)
            if hit is None:
                continue
            text = _text(term, f"label {tag!r}")
            if text and (hit[0] not in best or hit[1] < best[hit[0]][0]):
                best[hit[0]] = (hit[1], text)
        mul = _text(labels[_MUL], "label 'mul'") if _MUL in labels else ""
        out = {}
        for lang in self.langs:
            name = best[lang][1] if lang in best else mul
            if name:
                out[lang] = name
        return out

    # -- statements --------------------------------------------------------------------

    def _statements(self, claims: dict, prop: str) -> Iterable[tuple[str, str]]:
        """(rank, item id) of the item-valued, non-deprecated main snaks of ``prop``."""
        statements = claims.get(prop)
        if statements is None:
            return
        if not isinstance(statements, list):
            raise _BadLine("bad_structure", f"claims {prop!r} is not a JSON array")
        for st in statements:
            if not isinstance(st, dict):
                raise _BadLine("bad_structure", f"a statement of {prop} is not a JSON object")
            rank = st.get("rank", "normal")
            if rank == "deprecated":
                self._count("deprecated_statements_skipped")
                continue
            snak = st.get("mainsnak")
            if not isinstance(snak, dict):
                raise _BadLine("bad_structure", f'a statement of {prop} has no "mainsnak" object')
            if snak.get("snaktype") != "value":
                continue  # somevalue / novalue
            datavalue = snak.get("datavalue")
            if not isinstance(datavalue, dict):
                raise _BadLine("bad_structure", f'a value snak of {prop} has no "datavalue" object')
            if datavalue.get("type") != "wikibase-entityid":
                continue
            item = _item_id(datavalue.get("value"))
            if item is not None:
                yield rank, item

    def _type(self, claims: dict) -> str | None:
        values = list(self._statements(claims, "P31"))
        for _rank, item in sorted(values, key=lambda v: v[0] != "preferred"):  # stable
            if item in self.types:
                return self.types[item]
        return None

    def _facts(self, head: str, claims: dict) -> list[str]:
        props = claims.keys() if self.properties is None else (
            p for p in claims if p in self.properties)
        facts: dict[str, None] = {}
        for prop in props:
            if not _PID.fullmatch(prop):
                raise _BadLine("bad_structure", f"claims key {prop!r} is not a property id")
            for _, tail in self._statements(claims, prop):
                facts[f"{head}\t{prop}\t{tail}\n"] = None
        return list(facts)

    # -- pass 1 ------------------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def _entity(self, obj: Any) -> tuple[str, list[str]] | None:
        """The entity line and candidate facts of one dump entity (None: not kept)."""
        if not isinstance(obj, dict):
            raise _BadLine("not_an_object", f"the line is a JSON {type(obj).__name__}, not an entity object")
        ident, kind = obj.get("id"), obj.get("type")
        if not isinstance(ident, str) or not isinstance(kind, str):
            raise _BadLine("missing_id", 'the entity has no "id" or "type" string')
        modified = obj.get("modified")
        if isinstance(modified, str) and (self.max_modified is None or modified > self.max_modified):
            self.max_modified = modified
        if kind == "property":
            if not _PID.fullmatch(ident):
                raise _BadLine("bad_id", f"property id {ident!r} is not P followed by digits")
            self._count("properties_seen")
            if self.properties is None or ident in self.properties:
                self.relation_labels[ident] = self._relation_names(obj)
            return None
        if kind != "item":
            self._count("other_entities_seen")  # lexemes, media info, schemas
            return None
        if not _QID.fullmatch(ident):
            raise _BadLine("bad_id", f"item id {ident!r} is not Q followed by digits")
        self._count("items_seen")
        # Cheapest test first: the members of an item dropped early are not checked.
        sitelinks = len(_member(obj, "sitelinks", dict, '"sitelinks"'))
        if sitelinks < self.settings.min_sitelinks:
            self._count("dropped_below_min_sitelinks")
            return None
        names = self._names(obj)
        if not names:
            self._count("dropped_no_name")
            return None
        claims = _member(obj, "claims", dict, '"claims"')
        etype = self._type(claims)
        if etype is None and self.settings.typed_only:
            self._count("dropped_untyped")
            return None
        facts = self._facts(ident, claims)
        record: dict[str, Any] = {"id": ident}
        if etype is not None:
            record["type"] = etype
        record["labels"] = names
        record["popularity"] = sitelinks
        self._count("entities")
        self.typed[etype or "(none)"] = self.typed.get(etype or "(none)", 0) + 1
        for lang, values in names.items():
            self.aliases[lang] = self.aliases.get(lang, 0) + len(values)
        self._count("candidate_facts", len(facts))
        return json.dumps(record, ensure_ascii=False) + "\n", facts

    @staticmethod
    def _parse(text: bytes) -> Any:
        """The whole line parsed, or the reason it cannot be."""
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as err:
            try:  # orjson reports bad UTF-8 as bad JSON; tell the two apart
                text.decode("utf-8")
            except UnicodeDecodeError:
                raise _BadLine("invalid_utf8", "the line is not UTF-8") from None
            raise _BadLine("invalid_json", f"invalid JSON ({err.msg} at column {err.colno})") from None

    def _line(self, raw: bytes, line_no: int) -> tuple[str, list[str]] | None:
        text = raw.strip()
        if text.endswith(b","):
            text = text[:-1].rstrip()
        if text in (b"[", b"]", b""):
            return None
        self.entity_lines += 1
        try:
            obj = _slim_entity(text, self.properties)
            if obj is None:
                obj = self._parse(text)
            return self._entity(obj)
        except _BadLine as bad:
            if not self.skip_bad:
                raise WikidataDumpError(
                    self.dump, line_no, bad.problem,
                    "repair or download the dump again, or rerun with --skip-bad --resume to "
                    "count and skip such lines (the build goes on from its last checkpoint)",
                    reason=bad.reason) from None
            entry = self.bad.setdefault(bad.reason, {"count": 0, "first": f"{self.dump}:{line_no}",
                                                     "problem": bad.problem})
            entry["count"] += 1
            logger.debug("%s:%d: skipped (%s): %s", self.dump, line_no, bad.reason, bad.problem)
            return None

    def pass1(self) -> None:
        entities_path, spool_path = self.work / ENTITIES_FILE, self.work / SPOOL_FILE
        for path, size in ((entities_path, self.entities_bytes), (spool_path, self.spool_bytes)):
            with open(path, "ab") as fh:  # creates it; drops what followed the checkpoint
                fh.truncate(size)
        start, start_line = time.perf_counter(), self.line_no
        parallel = self.workers > 1 and self.settings.limit is None
        logger.info("pass 1: reading %s from line %d (byte %d) on %s", self.dump, self.line_no + 1,
                    self.offset, f"{self.workers} workers" if parallel else "one process")
        # The workers are forked before the dump is opened, so before its decompression threads run.
        with (_chunk_pool(self) if parallel else contextlib.nullcontext()) as pool, \
                open_dump(self.dump, self.threads) as src, \
                open(entities_path, "a", encoding="utf-8") as ents, \
                open(spool_path, "a", encoding="utf-8") as spool:
            if self.offset:
                src.seek(self.offset)
            if pool is None:
                since_progress = self._pass1_lines(src, ents, spool)
            else:
                since_progress = self._pass1_chunks(pool, src, ents, spool)
            self.stage = _STAGE_PASS2
            self._checkpoint(ents, spool)
            self._progress(_STAGE_PASS1, since_progress)
        seconds = time.perf_counter() - start
        logger.info("pass 1: %d lines in %.1fs (%.0f lines/s); %d entities kept",
                    self.line_no - start_line, seconds, (self.line_no - start_line) / max(seconds, 1e-9),
                    self.counts.get("entities", 0))

    def _pass1_lines(self, src: IO[bytes], ents: IO[str], spool: IO[str]) -> int:
        """Pass 1 line by line in this process; returns the lines not yet reported."""
        limit = self.settings.limit
        since_progress = 0
        for raw in src:
            if limit is not None and self.entity_lines >= limit:
                break
            self.line_no += 1
            self.offset += len(raw)
            kept = self._line(raw, self.line_no)
            if kept is not None:
                ents.write(kept[0])
                spool.writelines(kept[1])
            since_progress += 1
            if self.line_no % self.checkpoint_lines == 0:
                self._checkpoint(ents, spool)
            if since_progress >= self.progress_lines:
                self._progress(_STAGE_PASS1, since_progress)
                since_progress = 0
        return since_progress

    def _pass1_chunks(self, pool: ProcessPoolExecutor, src: IO[bytes], ents: IO[str],
                      spool: IO[str]) -> int:
        """Pass 1 on worker processes: the dump is cut into chunks of whole lines, each
        worker parses its chunks, and their entities, facts and counts are taken back in
        the dump's order, so the files are those of :meth:`_pass1_lines`. A checkpoint
        falls after the chunk in which a multiple of ``checkpoint_lines`` is reached.
        Returns the lines not yet reported."""
        pending: collections.deque[tuple[int, Future[_Tally]]] = collections.deque()
        in_flight = 2 * self.workers  # bounds memory: chunks read ahead of the writer
        since_progress = 0
        next_line = self.line_no

        def take() -> None:
            nonlocal since_progress
            size, result = pending.popleft()
            try:
                tally = result.result()  # a worker's WikidataDumpError is raised here
            except BrokenProcessPool:
                raise KBError(self.dump, None, "a kb build worker process died (out of memory, or killed)",
                              "resume the build with --resume, with fewer --workers if memory is short"
                              ) from None
            ents.write(tally.entities)
            spool.write(tally.facts)
            before = self.line_no
            self._absorb(tally)
            self.offset += size
            if self.line_no // self.checkpoint_lines > before // self.checkpoint_lines:
                self._checkpoint(ents, spool)
            since_progress += tally.lines
            while since_progress >= self.progress_lines:  # the calls _pass1_lines makes
                self._progress(_STAGE_PASS1, self.progress_lines)
                since_progress -= self.progress_lines

        for chunk in _whole_line_chunks(src, self.chunk_bytes):
            lines = chunk.count(b"\n") + (not chunk.endswith(b"\n"))
            pending.append((len(chunk), pool.submit(_chunk_tally, chunk, next_line)))
            next_line += lines
            if len(pending) >= in_flight:
                take()
        while pending:
            take()
        return since_progress

    def tally(self, chunk: bytes, first_line: int) -> _Tally:
        """Pass 1 over one chunk of whole lines (a worker's part), with counts of its own:
        this builder's counts are reset first."""
        self.entity_lines, self.max_modified = 0, None
        self.counts, self.typed, self.aliases, self.bad, self.relation_labels = {}, {}, {}, {}, {}
        lines = chunk.split(b"\n")
        if not lines[-1]:  # a chunk ends with a newline, but for the dump's last line
            lines.pop()
        entities: list[str] = []
        facts: list[str] = []
        for line_no, raw in enumerate(lines, first_line + 1):
            kept = self._line(raw, line_no)
            if kept is not None:
                entities.append(kept[0])
                facts.extend(kept[1])
        return _Tally(len(lines), self.entity_lines, "".join(entities), "".join(facts), self.counts,
                      self.typed, self.aliases, self.bad, self.max_modified, self.relation_labels)

    def _absorb(self, tally: _Tally) -> None:
        """Add a chunk's tally, as if its lines had been read here."""
        self.line_no += tally.lines
        self.entity_lines += tally.entity_lines
        for mine, theirs in ((self.counts, tally.counts), (self.typed, tally.typed),
                             (self.aliases, tally.aliases)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        for reason, entry in tally.bad.items():  # the first line of each reason is kept
            if reason in self.bad:
                self.bad[reason]["count"] += entry["count"]
            else:
                self.bad[reason] = entry
        if tally.max_modified is not None and (self.max_modified is None
                                               or tally.max_modified > self.max_modified):
            self.max_modified = tally.max_modified
        self.relation_labels.update(tally.relation_labels)

    def _progress(self, stage: str, n: int) -> None:
        if self.progress is not None and n:
            self.progress(stage, n)

    # -- pass 2 ------------------------------------------------------------------------

    def pass2(self) -> None:
        """Keep the candidate facts whose tail was kept; write triples and relations."""
        bitmap = bytearray()
        with open(self.work / ENTITIES_FILE, encoding="utf-8") as fh:
            for line in fh:
                number = int(orjson.loads(line)["id"][1:])
                if (number >> 3) >= len(bitmap):
                    bitmap.extend(bytes((number >> 3) + 1 - len(bitmap) + (1 << 16)))
                bitmap[number >> 3] |= 1 << (number & 7)
        kept = dropped = 0
        used: set[str] = set()
        since_progress = 0
        tmp = self.work / TRIPLES_FILE
        with (open(self.work / SPOOL_FILE, encoding="utf-8") as spool,
              open(tmp, "w", encoding="utf-8") as triples):
            for line in spool:
                tail = line[line.rindex("\t") + 2:-1]
                number = int(tail)
                if (number >> 3) < len(bitmap) and bitmap[number >> 3] & (1 << (number & 7)):
                    triples.write(line)
                    kept += 1
                    if self.properties is None:
                        used.add(line.split("\t", 2)[1])
                else:
                    dropped += 1
                since_progress += 1
                if since_progress >= self.progress_lines:
                    self._progress(_STAGE_PASS2, since_progress)
                    since_progress = 0
            self._progress(_STAGE_PASS2, since_progress)
        self.counts["triples"] = kept
        self.counts["dropped_facts_tail_not_kept"] = dropped
        chosen = (self.settings.properties if self.settings.properties is not None
                  else sorted(used, key=lambda p: int(p[1:])))
        unnamed = 0
        with open(self.work / RELATIONS_FILE, "w", encoding="utf-8") as fh:
            for prop in chosen:
                labels = self.relation_labels.get(prop, {})
                unnamed += not labels
                fh.write(json.dumps({"id": prop, "labels": labels}, ensure_ascii=False) + "\n")
        self.counts["relations"] = len(chosen)
        self.counts["relations_without_names"] = unnamed
        self.stage = _STAGE_FINISH
        self._checkpoint(None, None)

    # -- checkpoints -------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        return {"name": self.dump.name, "bytes": self.dump.stat().st_size}

    def _checkpoint(self, ents: IO[str] | None, spool: IO[str] | None) -> None:
        for fh in (ents, spool):
            if fh is not None:
                fh.flush()
                os.fsync(fh.fileno())
        if ents is not None and spool is not None:
            self.entities_bytes, self.spool_bytes = ents.tell(), spool.tell()
        state = {
            "version": _CHECKPOINT_VERSION, "settings": self.settings.fingerprint(),
            "dump": self._identity(), "stage": self.stage, "offset": self.offset,
            "line_no": self.line_no, "entity_lines": self.entity_lines,
            "entities_bytes": self.entities_bytes, "spool_bytes": self.spool_bytes,
            "counts": self.counts, "typed": self.typed, "aliases": self.aliases,
            "bad": self.bad, "max_modified": self.max_modified,
            "relation_labels": self.relation_labels, "resumes": self.resumes,
        }
        _write_atomic(self.work / CHECKPOINT_FILE, json.dumps(state, ensure_ascii=False))

    def restore(self, state: dict[str, Any]) -> None:
        where = self.work / CHECKPOINT_FILE
        if state.get("version") != _CHECKPOINT_VERSION:
            raise KBError(where, None, "the checkpoint was written by another version of xlre",
                          f"start again into an empty directory, or delete {self.work}")
        if state["settings"] != self.settings.fingerprint():
            raise SettingError(
                f"{self.out}: the interrupted build there used other settings "
                f"({json.dumps(state['settings'])}). Fix: resume it with the same --langs, "
                "--properties, --types, --min-sitelinks, --typed-only and --limit, or build "
                "into a new directory")
        if state["dump"] != self._identity():
            raise SettingError(
                f"{self.out}: the interrupted build there read another dump "
                f"({state['dump']['name']}, {state['dump']['bytes']} bytes). Fix: resume it "
                "with the same --wikidata file, or build into a new directory")
        for key in ("stage", "offset", "line_no", "entity_lines", "entities_bytes", "spool_bytes",
                    "counts", "typed", "aliases", "bad", "max_modified", "relation_labels"):
            setattr(self, key, state[key])
        self.resumes = state["resumes"] + 1

    # -- finish ------------------------------------------------------------------------

    def manifest(self, seconds: float) -> dict[str, Any]:
        date, source = dump_date(self.dump, self.max_modified)
        counts = dict(sorted(self.counts.items()))
        counts["lines"] = self.line_no
        counts["entity_lines"] = self.entity_lines
        counts["bad_lines"] = sum(b["count"] for b in self.bad.values())
        return {
            "dump": {"file": str(self.dump), **self._identity(), "date": date,
                     "date_source": source, "max_modified": self.max_modified},
            "settings": self.settings.fingerprint(),
            "counts": counts,
            "types": dict(sorted(self.typed.items())),
            "aliases_by_language": {lang: self.aliases.get(lang, 0) for lang in self.langs},
            "bad_lines": self.bad,
            "resumes": self.resumes,
            "seconds": round(seconds, 3),
        }

    def finish(self, seconds: float) -> dict[str, Any]:
        for name in (ENTITIES_FILE, RELATIONS_FILE, TRIPLES_FILE):
            if (self.work / name).exists():  # a finish cut short may have moved some
                os.replace(self.work / name, self.out / name)
        manifest = self.manifest(seconds)
        _write_atomic(self.out / MANIFEST_FILE, json.dumps(manifest, indent=2, ensure_ascii=False))
        shutil.rmtree(self.work)
        return manifest


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def default_worker_count(dump: Path | str) -> int:
    """Pass-1 workers when none are asked for: every core, but half of them for a
    ``.bz2`` dump, whose decompression threads need the others (on 2 cores a bz2 build is
    bound by decompression, and a second parsing process only competes with it: 2.8 s
    against 3.0 s on the shared sample); 1 inside a daemon process, which may not fork."""
    if multiprocessing.current_process().daemon:
        return 1
    cores = default_workers()
    return max(1, cores // 2) if Path(dump).suffix == ".bz2" else cores


def build_kb(
    dump: Path | str,
    out: Path | str,
    settings: BuildSettings,
    *,
    skip_bad: bool = False,
    resume: bool = False,
    threads: int | None = None,
    workers: int | None = None,
    checkpoint_lines: int = 200_000,
    progress_lines: int = 10_000,
    progress: Progress | None = None,
    chunk_bytes: int = 1 << 22,
) -> dict[str, Any]:
    """Build a KB directory ``out`` from the Wikidata dump ``dump`` (module docstring).

    ``resume``: continue the interrupted build in ``out`` (from its last checkpoint); a
    finished one is left as it is. Without it ``out`` must be new or empty.
    ``threads``: bz2 decompression threads (default: every core). ``workers``: processes
    that parse the dump's lines in pass 1, in chunks of about ``chunk_bytes`` (default:
    :func:`default_worker_count`; 1, or a ``limit`` in the settings: line by line in this
    process). The KB is the same for any number. Returns the manifest.
    """
    dump, out = Path(dump), Path(out)
    if checkpoint_lines < 1 or progress_lines < 1 or chunk_bytes < 1:
        raise SettingError("checkpoint_lines, progress_lines and chunk_bytes must be >= 1. "
                           "Fix: pass a positive number")
    if workers is None:
        workers = default_worker_count(dump)
    elif workers < 1:
        raise SettingError(f"kb build needs at least 1 worker, got {workers}. Fix: pass "
                           "--workers 1 or more (default: every core)")
    start = time.perf_counter()
    builder = _Builder(dump, out, settings, skip_bad, threads=threads, workers=workers,
                       checkpoint_lines=checkpoint_lines, progress_lines=progress_lines,
                       progress=progress, chunk_bytes=chunk_bytes)
    checkpoint = builder.work / CHECKPOINT_FILE
    if out.exists() and not out.is_dir():
        raise KBError(out, None, "is a file", "pass --out a directory (new or empty)")
    if resume and (out / MANIFEST_FILE).is_file() and not builder.work.exists():
        logger.info("%s: the build is already finished; nothing to resume", out)
        with open(out / MANIFEST_FILE, encoding="utf-8") as fh:
            return json.load(fh)
    if resume and checkpoint.is_file():
        with open(checkpoint, encoding="utf-8") as fh:
            builder.restore(json.load(fh))
        logger.info("resuming %s at stage %s, line %d", out, builder.stage, builder.line_no)
    elif out.exists() and any(p.name != WORK_DIR for p in out.iterdir()):
        raise KBError(out, None, "the output directory is not empty",
                      "build into a new or empty directory"
                      + ("" if resume else ", or pass --resume to continue an interrupted build there"))
    elif out.exists() and builder.work.exists() and not resume:
        raise KBError(out, None, "holds an interrupted build",
                      "pass --resume to continue it, or build into a new directory")
    else:  # a new build, or one interrupted before its first checkpoint
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(builder.work)
        builder.work.mkdir(parents=True)
        builder._checkpoint(None, None)
    if builder.stage == _STAGE_PASS1:
        builder.pass1()
    if builder.stage == _STAGE_PASS2:
        builder.pass2()
    manifest = builder.finish(time.perf_counter() - start)
    logger.info("built KB %s in %.1fs: %s", out, manifest["seconds"], manifest["counts"])
    return manifest
