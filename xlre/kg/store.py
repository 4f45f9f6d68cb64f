"""An embedded, persistent SPARQL store of extracted triples (pyoxigraph; no server).

``load_store`` aggregates triples exactly as the N-Triples export does
(:mod:`xlre.kg.export`: one edge per fact, reified confidence and evidence) and bulk-loads
them into a store directory; ``query_store`` runs SPARQL on it.

**A store holds the graph of one load.** Statement and evidence IRIs are deterministic and
a statement's confidence combines all of its evidence, so adding a second batch on top
would give statements two confidences and two evidence lists numbered alike. Loading
into a store that holds triples is therefore refused, unless ``replace``: then the new
graph is built and checked first, and only then replaces the store's content. To grow a
graph, load every batch at once (``--triples`` repeats, or a directory of parts).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from alignment.errors import UserError
from xlre.kg.aggregate import DEFAULT_BASE_IRI
from xlre.kg.export import export
from xlre.kg.reading import ExportError

logger = logging.getLogger(__name__)


class StoreError(UserError, ValueError):
    """The store cannot be opened or the query cannot run; the message says why."""


def _quads_in(store_dir: Path) -> int:
    if not store_dir.exists():
        return 0
    if not store_dir.is_dir():
        raise StoreError(f"{store_dir}: is a file, not a store directory. Fix: give a "
                         "directory path for --store")
    if not any(store_dir.iterdir()):
        return 0
    try:
        store = ox.Store.read_only(str(store_dir))
    except OSError as exc:
        raise StoreError(f"{store_dir}: not a store xlre can open ({exc}). Fix: give an "
                         "empty or new directory for --store") from None
    try:
        return len(store)
    finally:
        del store


def load_store(paths: Iterable[str | Path], store_dir: str | Path,
               base_iri: str = DEFAULT_BASE_IRI, kb: Any = None, skip_bad: bool = False,
               progress: Any = None, replace: bool = False) -> dict[str, Any]:
    """Load the graph of the triples in ``paths`` into the store in ``store_dir``
    (created if needed). A store that already holds triples is refused unless
    ``replace``, which swaps its content for the new graph (module docstring)."""
    start = time.perf_counter()
    store_dir = Path(store_dir)
    before = _quads_in(store_dir)
    if before and not replace:
        raise StoreError(
            f"{store_dir}: the store already holds {before} triples, and a second load "
            "would double statements' confidence and evidence. Fix: pass --replace to "
            "replace its graph (give every batch's triples at once), or load into a new "
            "--store")
    with tempfile.TemporaryDirectory(prefix="xlre-store-") as tmp:
        nt = Path(tmp) / "graph.nt"
        counts = export(paths, "nt", nt, base_iri, kb, skip_bad, progress)
        store = ox.Store(str(store_dir))
        try:
            if before:
                store.clear()
            store.bulk_load(path=str(nt), format=ox.RdfFormat.N_TRIPLES)
            store.flush()
            size = len(store)
        finally:
            del store
    counts.update({"store": str(store_dir), "quads_in_store": size, "quads_replaced": before,
                   "seconds": round(time.perf_counter() - start, 2)})
    counts.pop("out", None)
    counts.pop("format", None)
    return counts


def _term(value: Any) -> Any:
    if value is None:
        return None
    return getattr(value, "value", str(value))


def query_store(store_dir: str | Path, sparql: str) -> dict[str, Any]:
    """Run ``sparql`` on the store: ``{"variables", "rows"}`` for SELECT, ``{"boolean"}``
    for ASK, ``{"triples"}`` for CONSTRUCT and DESCRIBE (terms as plain strings)."""
    path = Path(store_dir)
    if not path.is_dir():
        raise StoreError(f"{path}: no store here; create it with xlre kg load --store {path}")
    try:
        store = ox.Store.read_only(str(path))
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the store ({exc})") from None
    try:
        result = store.query(sparql)
    except SyntaxError as exc:
        raise StoreError(f"the SPARQL query does not parse: {exc}") from None
    if isinstance(result, ox.QueryBoolean):
        return {"boolean": bool(result)}
    if isinstance(result, ox.QuerySolutions):
        names = [str(v)[1:] for v in result.variables]
        rows = [[_term(sol[v]) for v in result.variables] for sol in result]
        return {"variables": names, "rows": rows}
    return {"triples": [[_term(t.subject), _term(t.predicate), _term(t.object)]
                        for t in result]}


__all__ = ["ExportError", "StoreError", "load_store", "query_store"]
