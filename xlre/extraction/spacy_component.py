"""A spaCy pipeline component that puts xlre triples on the Doc.

    import spacy
    nlp = spacy.blank("fr")            # or any pipeline
    nlp.add_pipe("xlre_relations", config={"model": "models/demo"})
    doc = nlp("Lyon est une ville de France.")
    doc._.xlre_triples                 # list[xlre.records.Triple], offsets into doc.text
    doc.spans["xlre_entities"]         # the triples' arguments as spaCy spans

The factory is registered through the ``spacy_factories`` entry point, so
``add_pipe("xlre_relations")`` works without importing xlre first. The component runs
the model on ``doc.text`` with the Doc's language (``nlp.lang``; with ``xx`` each Doc's
language is detected).
"""

from __future__ import annotations

import logging
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from xlre.extraction.documents import Document

logger = logging.getLogger(__name__)

TRIPLES_ATTR = "xlre_triples"
SPANS_KEY = "xlre_entities"

if not Doc.has_extension(TRIPLES_ATTR):
    Doc.set_extension(TRIPLES_ATTR, default=None)


class RelationComponent:
    """Runs an :class:`xlre.extraction.Extractor` over each Doc."""

    def __init__(self, nlp: Language, name: str, model: str, threshold: float | None,
                 batch_size: int, kb: str | None) -> None:
        if not model:
            raise ValueError(
                'the xlre_relations component needs a model directory: '
                'nlp.add_pipe("xlre_relations", config={"model": "DIR"})'
            )
        self.name = name
        self.lang = None if nlp.lang == "xx" else nlp.lang
        from xlre.extraction.extractor import Extractor  # torch: only when the component is made

        self.extractor = Extractor.from_pretrained(model, threshold=threshold,
                                                   batch_size=batch_size, kb=kb)

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, docs: Any, batch_size: int = 64) -> Any:
        batch: list[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._annotate(batch)
                batch = []
        if batch:
            yield from self._annotate(batch)

    def _annotate(self, docs: list[Doc]) -> list[Doc]:
        inputs = [Document(str(i), d.text, self.lang) for i, d in enumerate(docs)]
        found: dict[int, list[Any]] = {i: [] for i in range(len(docs))}
        for triple in self.extractor.extract(inputs):
            found[int(triple.evidence.doc_id)].append(triple)
        for i, doc in enumerate(docs):
            doc._.set(TRIPLES_ATTR, found[i])
            spans, seen = [], set()
            for t in found[i]:
                for arg in (t.subject, t.object):
                    key = (arg.char_start, arg.char_end)
                    if key in seen:
                        continue
                    seen.add(key)
                    span = doc.char_span(arg.char_start, arg.char_end, label=arg.label or "ENT",
                                         kb_id=arg.kb_id or "", alignment_mode="expand")
                    if span is not None:
                        spans.append(span)
            doc.spans[SPANS_KEY] = sorted(spans, key=lambda s: (s.start, s.end))
        return docs


@Language.factory(
    "xlre_relations",
    default_config={"model": "", "threshold": None, "batch_size": 32, "kb": None},
)
def make_component(nlp: Language, name: str, model: str, threshold: float | None,
                   batch_size: int, kb: str | None) -> RelationComponent:
    """spaCy factory of the ``xlre_relations`` component."""
    return RelationComponent(nlp, name, model, threshold, batch_size, kb)
