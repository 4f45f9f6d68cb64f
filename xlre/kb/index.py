"""The KB on disk: a compact index that every worker opens by path instead of copying.

A KB directory in the text format (:mod:`xlre.kb.knowledge_base`) stays the exchange
format. :func:`build_index` writes, once, an index directory next to it (a cache: it
records the size and modification time of the KB's three files, and is rebuilt by
:func:`ensure_index` when they change):

* ``index.json``: the version, the KB's fingerprint and summary, the relations, the
  types and the language tags;
* ``entities.marisa``: the entity ids in a marisa-trie, whose key ids number the
  entities; ``prior.npy``, ``type.npy`` and ``language.npy`` give each entity's linking
  prior, type code and whether it is a language (:meth:`KnowledgeBase.is_language`);
* ``pairs.npy`` (sorted ``head << 32 | tail`` keys), ``pair_starts.npy`` and
  ``pair_rels.npy``: the facts, each pair's relations in KB order;
* ``names-N.marisa``: each entity's aliases in language tag N (for projection's name
  check);
* ``gaz-LANG-CASE-MINCHARS-ZHSCRIPT/``: one gazetteer's alias keys (a marisa-trie), their
  entries (JSON, one blob with offsets) and single-word keys, for one language and
  setting. Built from :func:`~xlre.kb.gazetteer.alias_table`, the rule the in-memory
  gazetteer uses, so both give the same mentions.

Processes open the files by memory mapping (marisa-trie's ``mmap`` and numpy's
``mmap_mode``), so N annotation workers share one copy in the page cache, and
:class:`KBIndex` and :class:`IndexedGazetteer` pickle as their path: a forked worker or
a Ray task reopens the files rather than receiving the KB.

Matching needs no Aho-Corasick automaton: a mention starts at a token start, so at each
token start a trie prefix search lists the keys that begin there, and those that end
at a token end are the matches, the same set the automaton filtered to whole tokens.

Building loads the text KB into memory once (:func:`~xlre.kb.knowledge_base.load_kb`),
so it needs the memory of one in-memory KB; opening the index needs little.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import secrets
import shutil
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import marisa_trie
import numpy as np

from alignment.records import TokenizedText
from xlre.kb.gazetteer import (
    Gazetteer,
    Mention,
    accepted,
    alias_table,
    check_case,
    fold_for,
    fold_text,
    longest_first,
    stop_words,
)
from xlre.kb.knowledge_base import (
    KB_FILES,
    KBError,
    KBRelation,
    KnowledgeBase,
    load_kb,
)

logger = logging.getLogger(__name__)

INDEX_VERSION = 3  # 2: the language rule of KnowledgeBase.is_language changed; 3: initials kept (US, WHO)
INDEX_FILE = "index.json"
GAZETTEER_META = "gazetteer.json"

#: (language, min_chars, case, zh_script): the settings a gazetteer is built for.
GazetteerSpec = tuple[str, int, str, str]


def kb_fingerprint(kb_dir: Path | str) -> dict[str, dict[str, int]]:
    """Size and modification time of the KB's three files: what an index was built from."""
    kb_dir = Path(kb_dir)
    out = {}
    for name in KB_FILES:
        st = (kb_dir / name).stat()
        out[name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return out


def _gazetteer_dir(spec: GazetteerSpec) -> str:
    lang, min_chars, case, zh_script = spec
    return f"gaz-{lang}-{case}-{min_chars}-{zh_script}"


def _stop_digest(lang: str) -> str:
    """A digest of spaCy's stop words for ``lang``: a spaCy with other stop words would
    drop other aliases, so a gazetteer built under it is stale."""
    return hashlib.sha256("\n".join(sorted(stop_words(lang))).encode()).hexdigest()[:16]


def _write_atomic_dir(final: Path, write: Callable[[Path], None]) -> None:
    """Write a directory under a temporary name of this process's own, then rename it to
    ``final``; a directory already there (another process's, built from the same input)
    is kept and ours dropped."""
    tmp = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        try:
            tmp.rename(final)
        except OSError:
            if not (final / INDEX_FILE).exists() and not (final / GAZETTEER_META).exists():
                raise
            logger.info("%s was written by another process meanwhile; keeping it", final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# --------------------------------------------------------------------------- files
def _save(path: Path, array: np.ndarray) -> None:
    """``array`` as raw native-order bytes (read back by :func:`_view`)."""
    with open(path, "wb") as fh:
        fh.write(np.ascontiguousarray(array).tobytes())


def _view(path: Path, fmt: str) -> memoryview:
    """The file at ``path`` memory-mapped read-only, as a memoryview of ``fmt`` items:
    indexing it gives Python ints, and :func:`bisect.bisect_left` searches it in C."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return memoryview(b"").cast(fmt)
        return memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)).cast(fmt)


# --------------------------------------------------------------------------- building
def _write_base(kb: KnowledgeBase, out: Path) -> None:
    ids = marisa_trie.Trie(kb.entities.keys())
    n = len(ids)
    order = np.empty(n, dtype=np.int64)  # key id -> position in kb.entities
    entities = list(kb.entities.values())
    for pos, ent in enumerate(entities):
        order[ids[ent.id]] = pos
    types = sorted({e.type for e in entities if e.type is not None})
    type_code = {t: k + 1 for k, t in enumerate(types)}  # 0: no type
    prior = np.fromiter((kb.prior(entities[p].id) for p in order), dtype=np.int64, count=n)
    etype = np.fromiter((type_code.get(entities[p].type, 0) for p in order),  # type: ignore[arg-type]
                        dtype=np.uint16, count=n)
    language = np.fromiter((kb.is_language(entities[p].id) for p in order), dtype=np.uint8, count=n)
    ids.save(str(out / "entities.marisa"))
    _save(out / "prior.bin", prior)
    _save(out / "type.bin", etype)
    _save(out / "language.bin", language)

    relation_ids = list(kb.relations)
    rel_code = {r: k for k, r in enumerate(relation_ids)}
    keys = np.fromiter(((ids[h] << 32) | ids[t] for h, t in kb.facts), dtype=np.uint64,
                       count=len(kb.facts))
    sort = np.argsort(keys, kind="stable")
    rel_lists = list(kb.facts.values())
    starts = np.zeros(len(keys) + 1, dtype=np.int64)
    flat: list[int] = []
    for k, i in enumerate(sort):
        flat.extend(rel_code[r] for r in rel_lists[i])
        starts[k + 1] = len(flat)
    _save(out / "pairs.bin", keys[sort])
    _save(out / "pair_starts.bin", starts)
    _save(out / "pair_rels.bin", np.asarray(flat, dtype=np.uint32))

    tags = sorted(kb.languages())
    for k, tag in enumerate(tags):
        names = marisa_trie.BytesTrie(
            (e.id, json.dumps(e.labels[tag], ensure_ascii=False).encode())
            for e in entities if e.labels.get(tag)
        )
        names.save(str(out / f"names-{k}.marisa"))
    assert kb.path is not None
    meta = {
        "version": INDEX_VERSION,
        "kb": str(Path(kb.path).resolve()),
        "fingerprint": kb_fingerprint(kb.path),
        "summary": kb.summary(),
        "entities": n,
        "relations": [{"id": r.id, "labels": r.labels} for r in kb.relations.values()],
        "types": types,
        "languages": tags,
    }
    (out / INDEX_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _write_gazetteer(kb: KnowledgeBase, spec: GazetteerSpec, out: Path) -> None:
    lang, min_chars, case, zh_script = spec
    table = alias_table(kb, lang, min_chars, case, zh_script)
    trie = marisa_trie.Trie(table.entries.keys())
    blobs: list[bytes] = [b""] * len(trie)
    for key, entries in table.entries.items():
        blobs[trie[key]] = json.dumps(entries, ensure_ascii=False, separators=(",", ":")).encode()
    offsets = np.zeros(len(blobs) + 1, dtype=np.uint64)
    np.cumsum([len(b) for b in blobs], out=offsets[1:])
    with open(out / "payload.bin", "wb") as fh:
        for blob in blobs:
            fh.write(blob)
    trie.save(str(out / "keys.marisa"))
    _save(out / "offsets.bin", offsets)
    marisa_trie.Trie(table.single_words).save(str(out / "single_words.marisa"))
    meta = {
        "version": INDEX_VERSION, "lang": lang, "min_chars": min_chars, "case": case,
        "zh_script": zh_script, "stop_words": _stop_digest(lang),
        "aliases": table.n_aliases, "keys": len(trie), "dropped": dict(table.dropped),
        "max_key_chars": max((len(k) for k in table.entries), default=0),
    }
    (out / GAZETTEER_META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def _check_spec(spec: GazetteerSpec) -> GazetteerSpec:
    lang, min_chars, case, zh_script = spec
    return (lang, int(min_chars), check_case(case), zh_script)


def build_index(kb_dir: Path | str, out: Path | str, gazetteers: Iterable[GazetteerSpec] = (),
                kb: KnowledgeBase | None = None) -> KBIndex:
    """Write the index of the KB in ``kb_dir`` to ``out`` (replacing a stale one), with a
    gazetteer for each of ``gazetteers``; returns it opened. ``kb``: the KB, when it is
    already loaded."""
    out = Path(out)
    start = time.perf_counter()
    kb = kb if kb is not None else load_kb(kb_dir)
    if out.exists():
        if not (out / INDEX_FILE).is_file():
            raise KBError(out, None, "exists and is not a KB index",
                          "pass an empty or new directory as the index")
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic_dir(out, lambda tmp: _write_base(kb, tmp))
    index = KBIndex(out)
    for spec in gazetteers:
        index.add_gazetteer(spec, kb)
    logger.info("built KB index %s in %.1fs", out, time.perf_counter() - start)
    return index


def ensure_index(kb_dir: Path | str, index_dir: Path | str,
                 gazetteers: Sequence[GazetteerSpec] = ()) -> KBIndex:
    """The index of ``kb_dir`` at ``index_dir``, with ``gazetteers``: opened as it is when
    it was built from the KB's present files, else built (again)."""
    index_dir = Path(index_dir)
    kb: KnowledgeBase | None = None
    index: KBIndex | None = None
    if (index_dir / INDEX_FILE).is_file() and _built_version(index_dir / INDEX_FILE) != INDEX_VERSION:
        logger.info("KB index %s was built by another xlre (format %r, this one reads %d): "
                    "rebuilding", index_dir, _built_version(index_dir / INDEX_FILE), INDEX_VERSION)
    elif (index_dir / INDEX_FILE).is_file():
        index = KBIndex(index_dir)
        if index.meta["fingerprint"] != kb_fingerprint(kb_dir):
            logger.info("KB index %s is stale (the KB's files changed): rebuilding", index_dir)
            index = None
    if index is None:
        kb = load_kb(kb_dir)
        index = build_index(kb_dir, index_dir, (), kb)
    for spec in gazetteers:
        if not index.has_gazetteer(spec):
            kb = kb if kb is not None else load_kb(kb_dir)
            index.add_gazetteer(spec, kb)
    return index


# --------------------------------------------------------------------------- reading
def _built_version(path: Path) -> object:
    """The format version in an ``index.json`` (None: unreadable, rebuilt as stale)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("version")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def _mmap_trie(cls: type, path: Path) -> Any:
    trie = cls()
    trie.mmap(str(path))
    return trie


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise KBError(path, None, f"unreadable KB index file ({err})",
                      "delete the index directory; it is rebuilt from the KB") from None
    if meta.get("version") != INDEX_VERSION:
        raise KBError(path, None, f"KB index version {meta.get('version')!r}, this xlre reads "
                      f"{INDEX_VERSION}", "delete the index directory; it is rebuilt from the KB")
    return meta


class KBIndex:
    """A KB index opened by memory mapping; answers what linking and labelling ask of a
    :class:`~xlre.kb.knowledge_base.KnowledgeBase` (module docstring)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.meta = _read_meta(self.path / INDEX_FILE)
        self._ids = _mmap_trie(marisa_trie.Trie, self.path / "entities.marisa")
        self._prior = _view(self.path / "prior.bin", "q")
        self._type = _view(self.path / "type.bin", "H")
        self._language = _view(self.path / "language.bin", "B")
        self._pairs = _view(self.path / "pairs.bin", "Q")
        self._pair_starts = _view(self.path / "pair_starts.bin", "q")
        self._pair_rels = _view(self.path / "pair_rels.bin", "I")
        self._types: list[str | None] = [None, *self.meta["types"]]
        self.relations = {r["id"]: KBRelation(r["id"], r["labels"]) for r in self.meta["relations"]}
        self._relation_ids = list(self.relations)
        self._tags: list[str] = self.meta["languages"]
        self._names: dict[str, Any] = {}

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (KBIndex, (str(self.path),))  # workers reopen the files, not a copy

    # -- entities
    def _idx(self, ent_id: str) -> int | None:
        return self._ids.get(ent_id)

    def __contains__(self, ent_id: str) -> bool:
        return ent_id in self._ids

    def entity_type(self, ent_id: str) -> str | None:
        idx = self._idx(ent_id)
        if idx is None:
            raise KeyError(ent_id)
        return self._types[self._type[idx]]

    def prior(self, ent_id: str) -> int:
        idx = self._idx(ent_id)
        return 0 if idx is None else self._prior[idx]

    def is_language(self, ent_id: str) -> bool:
        idx = self._idx(ent_id)
        return idx is not None and bool(self._language[idx])

    def languages(self) -> set[str]:
        return set(self._tags)

    def names(self, ent_id: str, lang: str) -> tuple[str, ...]:
        trie = self._names.get(lang)
        if trie is None:
            if lang not in self._tags:
                return ()
            trie = self._names[lang] = _mmap_trie(
                marisa_trie.BytesTrie, self.path / f"names-{self._tags.index(lang)}.marisa")
        found = trie.get(ent_id)
        return tuple(json.loads(found[0])) if found else ()

    # -- facts
    def _pair(self, head: str, tail: str) -> int | None:
        h, t = self._idx(head), self._idx(tail)
        if h is None or t is None:
            return None
        key = (h << 32) | t
        k = bisect_left(self._pairs, key)
        return k if k < len(self._pairs) and self._pairs[k] == key else None

    def relations_between(self, head: str, tail: str) -> tuple[str, ...]:
        k = self._pair(head, tail)
        if k is None:
            return ()
        rels = self._pair_rels[self._pair_starts[k]:self._pair_starts[k + 1]]
        return tuple(self._relation_ids[r] for r in rels)

    def connected(self, a: str, b: str) -> bool:
        return self._pair(a, b) is not None or self._pair(b, a) is not None

    def summary(self) -> dict[str, object]:
        return dict(self.meta["summary"])

    # -- gazetteers
    def has_gazetteer(self, spec: GazetteerSpec) -> bool:
        meta_path = self.path / _gazetteer_dir(_check_spec(spec)) / GAZETTEER_META
        if not meta_path.is_file():
            return False
        return _read_meta(meta_path)["stop_words"] == _stop_digest(spec[0])

    def add_gazetteer(self, spec: GazetteerSpec, kb: KnowledgeBase) -> None:
        """Build the gazetteer of ``spec`` from ``kb`` (the KB this index was built from)."""
        spec = _check_spec(spec)
        final = self.path / _gazetteer_dir(spec)
        if final.exists():  # stale: spaCy's stop words changed
            shutil.rmtree(final)
        start = time.perf_counter()
        _write_atomic_dir(final, lambda tmp: _write_gazetteer(kb, spec, tmp))
        logger.info("built gazetteer %s in %.1fs", final, time.perf_counter() - start)

    def gazetteer(self, lang: str, min_chars: int = 2, case: str = "smart",
                  zh_script: str = "fold") -> IndexedGazetteer:
        spec = _check_spec((lang, min_chars, case, zh_script))
        if not self.has_gazetteer(spec):
            raise KBError(self.path, None, f"the KB index has no gazetteer for {spec}",
                          f"build it: xlre kb index {self.meta['kb']} --out {self.path} --langs {lang}")
        return IndexedGazetteer(self.path / _gazetteer_dir(spec))


class IndexedGazetteer:
    """A gazetteer read from a KB index: the same :meth:`find` as
    :class:`~xlre.kb.gazetteer.Gazetteer`, by trie prefix search at token starts."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        meta = _read_meta(self.path / GAZETTEER_META)
        self.lang: str = meta["lang"]
        self.case: str = meta["case"]
        self.zh_script: str = meta["zh_script"]
        self.fold = fold_for(self.lang, self.zh_script)
        self.n_aliases: int = meta["aliases"]
        self.dropped: Counter[str] = Counter(meta["dropped"])
        self._max = int(meta["max_key_chars"])
        self._keys = _mmap_trie(marisa_trie.Trie, self.path / "keys.marisa")
        self._offsets = _view(self.path / "offsets.bin", "Q")
        self._payload = _view(self.path / "payload.bin", "B")
        #: Single-word keys (:mod:`xlre.kb.casing`); a trie answers ``in`` like a set.
        self.single_words = _mmap_trie(marisa_trie.Trie, self.path / "single_words.marisa")
        self._empty = len(self._keys) == 0

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (IndexedGazetteer, (str(self.path),))

    def entries(self, key_id: int) -> list[Any]:
        """The key's entries, as :func:`~xlre.kb.gazetteer.accepted` reads them (JSON
        lists in place of tuples: only iterated, on the matching hot path)."""
        blob = self._payload[self._offsets[key_id]:self._offsets[key_id + 1]]
        return json.loads(bytes(blob))

    def find(self, tok: TokenizedText) -> list[Mention]:
        """Longest non-overlapping alias matches of ``tok`` that cover whole tokens."""
        if self._empty or not tok.tokens:
            return []
        text = tok.text
        folded = fold_text(text, self.fold)
        ends = {e: k for k, e in enumerate(tok.char_ends)}
        found = []
        for k, start in enumerate(tok.char_starts):
            for key, key_id in self._keys.iter_prefixes_with_ids(folded[start:start + self._max]):
                end = start + len(key)
                if end not in ends:
                    continue  # ends inside a token: no match
                surface = text[start:end]
                cands = accepted(self.entries(key_id), self.fold(surface))
                if cands:
                    found.append(Mention(k, ends[end] + 1, start, end, surface, cands))
        return longest_first(found)


def make_gazetteer(kb: KnowledgeBase | KBIndex, lang: str, min_chars: int = 2,
                   case: str = "smart", zh_script: str = "fold") -> Any:
    """The gazetteer for ``lang`` over ``kb``: read from the index when ``kb`` is one,
    else built in memory."""
    if isinstance(kb, KBIndex):
        return kb.gazetteer(lang, min_chars, case, zh_script)
    return Gazetteer(kb, lang, min_chars, case, zh_script)
