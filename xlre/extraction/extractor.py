"""Triple extraction from raw text in any language with a trained model.

Consumes documents (text, optional id and language); produces :class:`xlre.records.Triple`
records::

    extractor = Extractor.from_pretrained("models/demo", kb="corpora/demo-en-fr/kb")
    for triple in extractor.extract(["Lyon est une ville de France."], lang="fr"):
        print(triple.to_json())

Per document: its language (its own, else ``lang=``, else identified, with a warning for
one the model was not trained on: :mod:`xlre.extraction.langid`) -> sentences (spaCy's
rule-based sentencizer for the language; ``xx`` when it is unknown, or detected and
without a spaCy pipeline) -> words with character offsets (the tokenizer training used) ->
subwords; sentences longer than the model's window are embedded in overlapping windows,
never cut. Entities come from the model's tagging head; every ordered pair of entities
in a sentence is scored (in the pass that tagged them with span pooling, in a second
pass with one marked copy per pair with typed markers). A relation whose probability
reaches the threshold gives a triple; "no relation above the threshold" is NA and gives
nothing. Work is batched by length across documents; triples come out in document
order. With ``kb=``, predicted entities whose span matches a KB alias mention (the
annotation runs' gazetteer and linker) get its KB id.

``relation_label`` is the relation's name in the document's language (base code, so
``zh-Hans`` text gets the ``zh`` name), else its English name, else the relation id. The
names come from the model (stored at training from its KB); with ``kb=`` the KB's names
override the model's, language by language.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from alignment.languages import by_base_language
from alignment.records import TokenizedText
from alignment.tokenize import Tokenizer, TokenizerError
from xlre.data import (
    EncodedWindow,
    MarkerScheme,
    Window,
    encode_window,
    plan_windows,
    word_pieces,
)
from xlre.evaluation.metrics import bio_to_spans
from xlre.extraction.documents import (
    MAX_CHARS,
    UNKNOWN_LANG,
    Document,
    ExtractError,
    document_lang,
    split_sentences,
)
from xlre.extraction.langid import DocumentLanguages
from xlre.kb import EntityLinker, Gazetteer, load_kb
from xlre.modeling import ModelDirError, load_model_dir
from xlre.modeling.optimize import optimize_for_cpu
from xlre.records import Argument, Evidence, Triple

logger = logging.getLogger(__name__)


@dataclass
class _Sentence:
    doc_no: int
    start: int  # character offset in the document
    tok: TokenizedText
    lang: str
    pieces: list[list[int]] = field(default_factory=list)
    entities: list[tuple[int, int, str]] = field(default_factory=list)  # word spans
    kb_ids: list[str | None] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)



def same_argument(a: Argument, b: Argument) -> bool:
    """Two mentions name one entity: both linked to the same KB id, or, where either is
    unlinked, the same text (casefolded). Extraction never pairs them: (美国, P530, 美国)
    is no fact."""
    if a.kb_id is not None and b.kb_id is not None:
        return a.kb_id == b.kb_id
    return a.text.casefold() == b.text.casefold()

class Extractor:
    """Extracts triples with an :class:`xlre.modeling.XlreModel` (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_id: str,
        threshold: float | None = None,
        batch_size: int = 32,
        kb: Any = None,
        device: str | torch.device | None = None,
        detect_language: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ExtractError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.config = model.config
        self.threshold = self.config.relation_threshold if threshold is None else threshold
        if not 0 < self.threshold < 1:
            raise ExtractError(f"threshold must lie in (0, 1), got {self.threshold}")
        self.batch_size = batch_size
        self.labels = self.config.labels
        self.bio = self.labels.bio
        self.scheme = MarkerScheme.for_tokenizer(tokenizer, self.labels,
                                                 self.config.relation_repr)
        self.max_len = self.config.max_seq_length
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model.to(self.device)
        self.kb = kb
        self._linkers: dict[str, Any] = {}
        self._tokenizers: dict[str, Tokenizer] = {}
        self._pipeline_langs: dict[str, str] = {}
        #: Documents' languages: resolved, detected when ``detect_language``, counted.
        self.languages = DocumentLanguages(getattr(self.config, "languages", None) or (),
                                           detect_language)
        # Relation names per base language: the model's own (from its training KB),
        # overridden language by language by the KB's.
        model_names = getattr(self.config, "relation_names", None) or {}
        self.relation_names: dict[str, dict[str, str]] = {
            rel: by_base_language(model_names.get(rel, {})) for rel in self.labels.relations}
        if kb is not None:
            for rel in self.labels.relations:
                if rel in kb.relations:
                    self.relation_names[rel].update(by_base_language(kb.relations[rel].labels))

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        threshold: float | None = None,
        batch_size: int = 32,
        kb: str | Path | Any | None = None,
        device: str | None = None,
        detect_language: bool = True,
        optimize: str | None = None,
    ) -> Extractor:
        """Load a model directory written by ``xlre train`` (and a KB directory, if given).

        ``detect_language``: identify the language of documents that name none (else
        they are tokenized language-neutrally). ``optimize``: a CPU route of
        :mod:`xlre.modeling.optimize` (``int8``), applied after loading."""
        try:
            model, tokenizer = load_model_dir(model_dir)
        except ModelDirError as exc:
            raise ExtractError(str(exc)) from None
        if not (model.config.entity_head and model.config.relation_head):
            raise ExtractError(f"{model_dir}: the model was trained without its entity or "
                               "relation head, so it cannot extract triples")
        if kb is not None and not hasattr(kb, "entities"):
            kb = load_kb(kb)
        if optimize is not None:
            if device not in (None, "cpu"):
                raise ExtractError(f"--optimize {optimize} runs on CPU, not {device}; drop one of them")
            model, device = optimize_for_cpu(model.eval(), optimize, model_dir, tokenizer), "cpu"
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(model, tokenizer, str(model_dir), threshold, batch_size, kb, device,
                   detect_language)

    # ------------------------------------------------------------------ public
    def extract(self, texts: Iterable[str | Document], lang: str | None = None,
                chunk_docs: int = 256) -> Iterator[Triple]:
        """Triples of ``texts`` (strings or :class:`Document`), in document order.

        ``lang`` (a BCP 47 tag) applies to documents that do not name their own; the others
        get theirs detected (``self.languages.report`` counts them). Plain strings get the
        ids ``"0"``, ``"1"``, ...
        """
        default = document_lang(lang)
        chunk: list[Document] = []
        for n, item in enumerate(texts):
            doc = item if isinstance(item, Document) else Document(str(n), item, None)
            if not isinstance(doc.text, str):
                raise ExtractError(f"document {doc.doc_id}: text must be a string, got "
                                   f"{type(doc.text).__name__}")
            if len(doc.text) > MAX_CHARS:
                raise ExtractError(
                    f"document {doc.doc_id}: {len(doc.text):,} characters is over the limit "
                    f"of {MAX_CHARS:,}; split it into several documents"
                )
            chunk.append(self.languages.resolve(doc, default))
            if len(chunk) >= chunk_docs:
                yield from self._extract_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._extract_chunk(chunk)

    # ------------------------------------------------------------------ stages
    def _tokenizer(self, lang: str) -> Tokenizer:
        if lang not in self._tokenizers:
            try:
                self._tokenizers[lang] = Tokenizer(lang)
            except TokenizerError as exc:
                raise ExtractError(str(exc)) from None
        return self._tokenizers[lang]

    def _pipeline_lang(self, doc: Document) -> str:
        """The language to split and tokenize ``doc`` by: its own; ``xx`` when it has none,
        or when it was detected and spaCy has no pipeline for it (a given one must have)."""
        if doc.lang is None:
            return "xx"
        if not doc.detected:
            return doc.lang
        if doc.lang not in self._pipeline_langs:
            try:
                split_sentences("", doc.lang)
                self._tokenizer(doc.lang)
                self._pipeline_langs[doc.lang] = doc.lang
            except ExtractError:
                logger.info("detected language %r has no spaCy tokenizer; its documents are "
                            "split language-neutrally (xx)", doc.lang)
                self._pipeline_langs[doc.lang] = "xx"
        return self._pipeline_langs[doc.lang]

    def _sentences(self, docs: list[Document]) -> list[_Sentence]:
        sents: list[_Sentence] = []
        for doc_no, doc in enumerate(docs):
            lang = self._pipeline_lang(doc)
            for start, text in split_sentences(doc.text, lang):
                tok = self._tokenizer(lang)(text)
                if tok.tokens:
                    sents.append(_Sentence(doc_no, start, tok, doc.lang or UNKNOWN_LANG))
        if not sents:
            return sents
        extra = self.scheme.extra_tokens if self.scheme else 0
        all_pieces = word_pieces(self.tokenizer, [list(s.tok.tokens) for s in sents])
        for s, pieces in zip(sents, all_pieces, strict=True):
            s.pieces = pieces
            windows = plan_windows([len(p) for p in pieces], self.max_len - 2 - extra)
            if windows is None:
                longest = max(s.tok.tokens, key=len)
                raise ExtractError(
                    f"document {docs[s.doc_no].doc_id}: the word {longest[:40]!r} alone is "
                    f"longer than the model's window of {self.max_len} subwords; remove it"
                )
            s.windows = windows
        return sents

    def _encode(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        length = max(len(x) for x in seqs)
        ids = torch.full((len(seqs), length), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for i, x in enumerate(seqs):
            ids[i, : len(x)] = torch.tensor(x)
            mask[i, : len(x)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _window(self, s: _Sentence, win: Window,
                marked: tuple[int, int] | None = None) -> EncodedWindow:
        """A window of ``s`` as subword ids, with the scheme's markers around ``marked``."""
        markers = []
        if marked is not None and self.scheme is not None:
            markers = self.scheme.markers(s.entities[marked[0]], s.entities[marked[1]])
        return encode_window(s.pieces, win, self.tokenizer.cls_token_id,
                             self.tokenizer.sep_token_id, markers)

    @torch.no_grad()
    def _extract_chunk(self, docs: list[Document]) -> Iterator[Triple]:
        sents = self._sentences(docs)
        # One item per (sentence, window), batched by length.
        items = [(k, w) for k, s in enumerate(sents) for w in range(len(s.windows))]
        items.sort(key=lambda kw: -sum(len(p) for p in sents[kw[0]].pieces[
            sents[kw[0]].windows[kw[1]].ctx_lo:sents[kw[0]].windows[kw[1]].ctx_hi]))
        scored: dict[int, dict[tuple[int, int], list[float]]] = {k: {} for k in range(len(sents))}
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            built = [self._window(sents[k], sents[k].windows[w]) for k, w in batch]
            ids, mask = self._encode([b.ids for b in built])
            hidden = self.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            tags = self.model.entity_classifier(hidden).argmax(-1).cpu()
            for i, (k, w) in enumerate(batch):
                s, win = sents[k], sents[k].windows[w]
                first = built[i].first
                words = [x for x in range(win.lab_lo, win.lab_hi) if x in first]
                seq_tags = [self.bio[int(tags[i, first[x]])] for x in words]
                for a, b, typ in bio_to_spans(seq_tags):
                    s.entities.append((words[a], words[b - 1] + 1, typ))
            if self.scheme is None:
                self._score_pooled(sents, batch, built, hidden, scored)
        for s in sents:
            s.entities.sort()
        if self.scheme is not None:
            self._score_marked(sents, scored)
        else:
            self._score_long_pooled(sents, scored)
        self._link(sents, docs)
        for k, s in enumerate(sents):
            yield from self._triples(s, docs[s.doc_no], scored[k])

    def _pairs_in(self, s: _Sentence, win: Window) -> list[tuple[int, int]]:
        inside = [i for i, (a, b, _) in enumerate(s.entities)
                  if win.ctx_lo <= a and b <= win.ctx_hi]
        return [(h, t) for h in inside for t in inside if h != t]

    def _score_pooled(self, sents, batch, built, hidden, scored) -> None:
        # Entities of a window are only known once its whole sentence is tagged; a sentence
        # in one window (the common case) is complete here. Longer sentences are scored
        # after all their windows ran: their entities are final only then.
        for i, (k, _) in enumerate(batch):
            s = sents[k]
            if len(s.windows) > 1:
                continue
            self._score_window_pooled(s, s.windows[0], built[i], hidden[i], scored[k])

    def _score_window_pooled(self, s, win, built, hidden_row, out) -> None:
        first, end = built.first, built.end
        pairs = [p for p in self._pairs_in(s, win) if p not in out]
        if not pairs:
            return
        def span(idx: int) -> tuple[int, int]:
            a, b, _ = s.entities[idx]
            starts = [first[x] for x in range(a, b) if x in first]
            ends = [end[x] for x in range(a, b) if x in end]
            return starts[0], ends[-1]
        head = torch.tensor([span(h) for h, _ in pairs], device=self.device)
        tail = torch.tensor([span(t) for _, t in pairs], device=self.device)
        seq = torch.zeros(len(pairs), dtype=torch.long, device=self.device)
        x = self.model.pair_vectors(hidden_row[None], seq, head, tail)
        probs = torch.sigmoid(self.model.relation_scores(x).float()).cpu().tolist()
        for p, row in zip(pairs, probs, strict=True):
            out[p] = row

    @torch.no_grad()
    def _score_long_pooled(self, sents, scored) -> None:
        for k, s in enumerate(sents):
            if len(s.windows) <= 1:
                continue
            for win in s.windows:
                if not self._pairs_in(s, win):
                    continue
                built = self._window(s, win)
                ids, mask = self._encode([built.ids])
                hidden = self.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                self._score_window_pooled(s, win, built, hidden[0], scored[k])

    @torch.no_grad()
    def _score_marked(self, sents, scored) -> None:
        # One job per marked sequence: an ordered pair (markers) or both directions of an
        # unordered pair (punct), in the first window that holds it.
        jobs = []
        for k, s in enumerate(sents):
            done: set[tuple[int, int]] = set()
            for win in s.windows:
                fresh = [p for p in self._pairs_in(s, win) if p not in done]
                done.update(fresh)
                jobs.extend((k, win, group) for group in self.scheme.groups(fresh))
        jobs.sort(key=lambda j: -(j[1].ctx_hi - j[1].ctx_lo))
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start:start + self.batch_size]
            built = [self._window(sents[k], win, group[0]) for k, win, group in batch]
            ids, mask = self._encode([b.ids for b in built])
            hidden = self.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            seq, head, tail, keys = [], [], [], []
            for i, (b, (k, _, group)) in enumerate(zip(built, batch, strict=True)):
                ents = sents[k].entities
                for h, t in group:
                    seq.append(i)
                    head.append([b.opened[ents[h][0]], b.opened[ents[h][0]] + 1])
                    tail.append([b.opened[ents[t][0]], b.opened[ents[t][0]] + 1])
                    keys.append((k, (h, t)))
            x = self.model.pair_vectors(
                hidden, torch.tensor(seq, device=self.device),
                torch.tensor(head, device=self.device), torch.tensor(tail, device=self.device))
            probs = torch.sigmoid(self.model.relation_scores(x).float()).cpu().tolist()
            for (k, pair), row in zip(keys, probs, strict=True):
                scored[k][pair] = row

    def _link(self, sents: list[_Sentence], docs: list[Document]) -> None:
        for s in sents:
            s.kb_ids = [None] * len(s.entities)
        if self.kb is None:
            return
        for s in sents:
            if s.lang == UNKNOWN_LANG and docs[s.doc_no].detected:
                continue  # no language identified: no gazetteer to link with
            if s.lang == UNKNOWN_LANG:
                raise ExtractError(
                    f"document {docs[s.doc_no].doc_id}: KB linking needs the text's language; "
                    "pass --lang (or lang=) or give each document a lang field"
                )
            if s.lang not in self._linkers:
                self._linkers[s.lang] = EntityLinker(self.kb, Gazetteer(self.kb, s.lang))
            linked = self._linkers[s.lang].link(s.tok)
            for i, (a, b, _) in enumerate(s.entities):
                over = [e for e in linked if e.span.tok_start < b and a < e.span.tok_end]
                exact = [e for e in over if (e.span.tok_start, e.span.tok_end) == (a, b)]
                pick = exact or (over if len(over) == 1 else [])
                if pick:
                    s.kb_ids[i] = pick[0].kb_id

    def _triples(self, s: _Sentence, doc: Document,
                 scored: dict[tuple[int, int], list[float]]) -> Iterator[Triple]:
        evidence = Evidence(doc.doc_id, s.tok.text, s.lang, self.model_id, s.start, doc.group)
        args = []
        for i, (a, b, typ) in enumerate(s.entities):
            cs, ce = s.tok.char_starts[a], s.tok.char_ends[b - 1]
            args.append(Argument(s.tok.text[cs:ce], s.start + cs, s.start + ce,
                                 s.kb_ids[i], typ))
        for (h, t), probs in sorted(scored.items()):
            if same_argument(args[h], args[t]):
                continue  # two mentions of one entity: a fact never relates it to itself
            for r, p in enumerate(probs):
                if p >= self.threshold:
                    rel = self.labels.relations[r]
                    yield Triple(args[h], rel, args[t], round(float(p), 6), evidence,
                                 self._relation_label(rel, s.lang))

    def _relation_label(self, rel: str, lang: str) -> str:
        """The name of ``rel`` in ``lang``, else in English, else ``rel`` itself."""
        names = self.relation_names.get(rel) or {}
        return names.get(lang) or names.get("en") or rel


