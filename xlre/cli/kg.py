"""``xlre export`` and ``xlre kg load|query``: the knowledge graph."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from xlre.cli.common import app, err_console, progress_bar


@app.command("export")
def export_cmd(
    triples: Annotated[list[str], typer.Option("--triples", help="JSONL triples from xlre extract (- for standard input); repeatable.")],
    fmt: Annotated[str, typer.Option("--format", help="nt, ttl, jsonld, neo4j (a directory of CSVs) or graphml.")],
    out: Annotated[Path, typer.Option(help="File to write (a directory for neo4j).")],
    base_iri: Annotated[str, typer.Option(help="Namespace for ids that are not Wikidata ids.")] = "https://xlre.example.org/",
    kb: Annotated[Path | None, typer.Option(help="KB directory: entity and relation labels from it.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad lines (counted by reason) instead of stopping.")] = False,
) -> None:
    """Aggregate triples into a knowledge graph (one edge per fact, with its evidence)."""
    from xlre.kg import export

    with progress_bar(None, {"triples": "triples read"}) as update:
        summary = export(triples, fmt, out, base_iri, kb, skip_bad,
                         progress=lambda n: update("triples", n))
    err_console.print_json(json.dumps(summary))


kg_app = typer.Typer(help="An embedded SPARQL store of extracted triples (pyoxigraph).",
                     no_args_is_help=True)
app.add_typer(kg_app, name="kg")


@kg_app.command("load")
def kg_load_cmd(
    triples: Annotated[list[str], typer.Option("--triples", help="JSONL triples (- for standard input); repeatable.")],
    store: Annotated[Path, typer.Option(help="Store directory (created if needed).")],
    base_iri: Annotated[str, typer.Option(help="Namespace for ids that are not Wikidata ids.")] = "https://xlre.example.org/",
    kb: Annotated[Path | None, typer.Option(help="KB directory: labels from it.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad lines (counted by reason).")] = False,
    replace: Annotated[bool, typer.Option(help="Replace the graph of a store that already holds one (a store holds one load's graph).")] = False,
) -> None:
    """Aggregate triples and load them into a persistent store (a new or empty one, or
    with --replace one whose graph they replace)."""
    from xlre.kg import load_store

    with progress_bar(None, {"triples": "triples read"}) as update:
        summary = load_store(triples, store, base_iri, kb, skip_bad,
                             progress=lambda n: update("triples", n), replace=replace)
    err_console.print_json(json.dumps(summary))


@kg_app.command("query")
def kg_query_cmd(
    sparql: Annotated[str, typer.Argument(help="A SPARQL query (SELECT, ASK, CONSTRUCT or DESCRIBE).")],
    store: Annotated[Path, typer.Option(help="Store directory made by xlre kg load.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Run a SPARQL query on the store; print a table (or JSON)."""
    from rich.table import Table

    from xlre.kg import query_store

    result = query_store(store, sparql)
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        return
    if "boolean" in result:
        sys.stdout.write(f"{str(result['boolean']).lower()}\n")
        return
    header = result.get("variables", ["subject", "predicate", "object"])
    table = Table(*header)
    for row in result.get("rows", result.get("triples", [])):
        table.add_row(*["" if v is None else str(v) for v in row])
    Console().print(table)

