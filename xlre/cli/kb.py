"""``xlre kb build``: a KB directory from a Wikidata JSON dump."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from xlre.cli.common import app, err_console, progress_bar

kb_app = typer.Typer(help="Knowledge bases: build one from a Wikidata dump; index one for shared workers.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")


@kb_app.command("build")
def kb_build_cmd(
    wikidata: Annotated[Path, typer.Option(help="Wikidata JSON dump: latest-all.json, .json.bz2 or .json.gz.")],
    out: Annotated[Path, typer.Option(help="KB directory to write (new or empty; with --resume, the interrupted one).")],
    langs: Annotated[str, typer.Option(help="Languages whose names to keep, comma-separated; variants merge into the base code (zh-hant, zh-tw -> zh).")] = "en",
    properties: Annotated[str | None, typer.Option(help="Properties whose facts to keep: P17,P19,... or @FILE (one id a line); default: all.")] = None,
    types: Annotated[Path | None, typer.Option(help="Type table, TSV QID<TAB>TYPE of P31 classes; default: the built-in PER/LOC/ORG table.")] = None,
    typed_only: Annotated[bool, typer.Option(help="Drop items whose P31 classes are not in the type table (default: keep them without a type).")] = False,
    min_sitelinks: Annotated[int, typer.Option(help="Keep only items with at least this many sitelinks.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Read only the first N entities of the dump (for a trial).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted build in --out from its last checkpoint.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed dump lines (counted by reason) instead of stopping.")] = False,
    threads: Annotated[int | None, typer.Option(help="bz2 decompression threads (default: every core).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes that parse the dump's lines (default: every core, half of them for .bz2; the KB is the same for any number).")] = None,
) -> None:
    """Build a KB directory (entities, relations, triples, manifest) from a Wikidata dump."""
    from xlre.kb.wikidata import (
        DEFAULT_TYPES,
        BuildSettings,
        build_kb,
        parse_langs,
        parse_properties,
        read_type_table,
    )

    settings = BuildSettings(
        langs=parse_langs(langs),
        properties=None if properties is None else parse_properties(properties),
        types=tuple((read_type_table(types) if types is not None else DEFAULT_TYPES).items()),
        types_source="built-in" if types is None else str(types),
        min_sitelinks=min_sitelinks,
        typed_only=typed_only,
        limit=limit,
    )
    with progress_bar(None, {"entities": "dump lines read", "facts": "facts checked"},
                      {"entities": "lines", "facts": "facts"}) as update:
        manifest = build_kb(wikidata, out, settings, skip_bad=skip_bad, resume=resume,
                            threads=threads, workers=workers, progress=update)
    err_console.print_json(json.dumps(manifest, ensure_ascii=False))


@kb_app.command("index")
def kb_index_cmd(
    kb: Annotated[Path, typer.Argument(help="KB directory: entities.jsonl, relations.jsonl, triples.tsv.")],
    out: Annotated[Path, typer.Option(help="Index directory to write (replaced when it holds an index).")],
    langs: Annotated[str, typer.Option(help="Languages to build alias gazetteers for, comma-separated (e.g. en,zh).")] = "en",
    case: Annotated[str, typer.Option(help="Alias case policy the gazetteers match by: smart, exact or ignore.")] = "smart",
    min_alias_chars: Annotated[int, typer.Option(help="Shortest alias kept, in characters.")] = 2,
    zh_script: Annotated[str, typer.Option(help="Chinese scripts: fold or keep.")] = "fold",
) -> None:
    """Write the KB's on-disk index, which annotation workers open by path and share
    (`xlre annotate --kb-index DIR`)."""
    from xlre.kb.index import build_index

    specs = [(lang.strip(), min_alias_chars, case, zh_script) for lang in langs.split(",") if lang.strip()]
    with err_console.status(f"indexing {kb}"):
        index = build_index(kb, out, specs)
    report = {"index": str(out), "summary": index.summary(),
              "gazetteers": {spec[0]: index.gazetteer(*spec).n_aliases for spec in specs}}
    err_console.print_json(json.dumps(report, ensure_ascii=False))
