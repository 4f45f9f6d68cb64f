"""``xlre align`` and ``xlre align-eval``: word alignment and its score."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

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


@app.command("align")
def align_cmd(
    corpus: Annotated[Path, typer.Option(help="Parallel corpus: TSV, Moses `src ||| tgt`, or the source file of two line-aligned files (.gz is read too).")],
    src_lang: Annotated[str, typer.Option(help="Source language code, e.g. en.")],
    tgt_lang: Annotated[str, typer.Option(help="Target language code, e.g. fr.")],
    out: Annotated[Path, typer.Option(help="Output: 0-indexed Pharaoh links, one line per input pair.")],
    tgt_file: TgtFileOpt = None,
    fmt: FormatOpt = "auto",
    aligner: AlignerOpt = "eflomal",
    model: ModelOpt = "xlm-roberta-base",
    layer: LayerOpt = None,
    method: Annotated[str, typer.Option(help="simalign: argmax, itermax, match, or softmax (awesome-align's: both directions' softmax probability at least --threshold; best with an encoder from `xlre align-tune`).")] = "argmax",
    threshold: Annotated[float, typer.Option(help="simalign --method softmax: the probability both directions must reach.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(help="simalign: sentence pairs per forward pass.")] = 32,
    device: Annotated[str | None, typer.Option(help="simalign: torch device (default: cuda if available, else cpu).")] = None,
    confident: ConfidentOpt = 0.8,
    symmetrize: SymmetrizeOpt = "intersect",
    extra_corpus: ExtraCorpusOpt = None,
    priors: Annotated[Path | None, typer.Option(help="eflomal: start from these priors (from --save-priors).")] = None,
    save_priors: Annotated[Path | None, typer.Option(help="eflomal: save the priors learnt on this run here.")] = None,
    stem_prefix: StemPrefixOpt = 4,
    samplers: Annotated[int, typer.Option(help="eflomal: independent Gibbs samplers whose counts are combined; more is slower and a little better (README).")] = 3,
    scores_out: Annotated[Path | None, typer.Option(help="Also write per-link scores, one line per pair, in link order.")] = None,
    pretokenized: Annotated[bool, typer.Option(help="The main corpus is already tokenized: split it on whitespace only. Extra corpora are raw text for the language's tokenizer (jieba for zh) unless given with --extra-pretokenized.")] = False,
    extra_pretokenized: Annotated[list[str] | None, typer.Option(help="eflomal: extra training text that is already tokenized (split on whitespace), PATH or SRC_PATH::TGT_PATH; repeatable.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad lines (counted by reason) instead of stopping; their output line is empty.")] = False,
    zh_script: Annotated[str, typer.Option(help="Chinese scripts: fold (segment and train eflomal on text folded from traditional to simplified; links and offsets are the original's) or keep.")] = "fold",
    workers: Annotated[int | None, typer.Option(help="Processes that tokenize (default: all cores; 1: none, this process). Corpora under 8,000 pairs are tokenized here; tokens and links are the same for any number.")] = None,
) -> None:
    """Word-align a parallel corpus and write Pharaoh links.

    Tokenisation: --pretokenized applies to the main corpus only. Each --extra-corpus is
    raw text, tokenised by the language's tokenizer (jieba for Chinese); each
    --extra-pretokenized corpus is split on whitespace.
    """
    from alignment.aligners import ALIGNERS, build_aligner
    from alignment.aligners.eflomal import eflomal_parts
    from alignment.corpus import ParallelCorpus, parse_corpus_spec
    from alignment.pipeline import align_corpus
    from alignment.script import SCRIPT_POLICIES, make_tokenizer

    if aligner not in ALIGNERS:
        raise fail(f"unknown aligner {aligner!r}; choose eflomal, simalign or combined")
    if aligner == "simalign" and (extra_corpus or extra_pretokenized or priors or save_priors):
        raise fail("--extra-corpus, --extra-pretokenized, --priors and --save-priors apply to "
                   "--aligner eflomal (or combined) only")
    if samplers < 1:
        raise fail(f"--samplers must be at least 1, got {samplers}")
    if workers is not None and workers < 1:
        raise fail(f"--workers must be at least 1, got {workers}")
    if zh_script not in SCRIPT_POLICIES:
        raise fail(f"unknown --zh-script {zh_script!r}; choose {' or '.join(SCRIPT_POLICIES)}")
    src_tok = make_tokenizer(src_lang, pretokenized, zh_script)
    tgt_tok = make_tokenizer(tgt_lang, pretokenized, zh_script)
    reader = ParallelCorpus(corpus, src_lang, tgt_lang, tgt_path=tgt_file, fmt=fmt, skip_bad=skip_bad,  # type: ignore[arg-type]
                            pretokenized=pretokenized)
    # --pretokenized is the main corpus's layout only; each extra corpus has its own.
    extras = []
    for spec, pretok in [(s, False) for s in extra_corpus or []] + [
            (s, True) for s in extra_pretokenized or []]:
        path, tgt_path = parse_corpus_spec(spec)
        extras.append(ParallelCorpus(path, src_lang, tgt_lang, tgt_path=tgt_path,
                                     skip_bad=skip_bad, pretokenized=pretok))
    word_aligner = build_aligner(
        aligner, symmetrize=symmetrize, priors=priors, stem_prefix=stem_prefix, model=model,
        layer=layer, method=method, batch_size=batch_size, device=device, confident=confident,
        threshold=threshold)
    for part in eflomal_parts(word_aligner):
        part.fold_scripts = zh_script == "fold"  # its training text (EflomalAligner)
        part.n_samplers = samplers
    total = len(reader)
    stages = {"extra": "reading extra corpora", "tokenize": "tokenizing", "align": f"aligning ({aligner})"}
    with progress_bar(total, stages, dict.fromkeys(stages, "pairs")) as update:
        summary = align_corpus(
            reader, word_aligner, out, src_tok, tgt_tok,
            scores_path=scores_out, extra_corpora=extras, progress=update, workers=workers,
        )
    if save_priors is not None:
        if not hasattr(word_aligner, "save_priors"):
            raise fail("--save-priors applies to --aligner eflomal only")
        word_aligner.save_priors(save_priors)  # type: ignore[attr-defined]
    report = summary.as_dict()
    report["out"] = str(out)
    if save_priors is not None:
        report["priors_saved"] = str(save_priors)
    err_console.print_json(json.dumps(report))


@app.command("align-tune")
def align_tune_cmd(
    corpus: Annotated[Path, typer.Option(help="Parallel corpus to learn from: TSV, Moses `src ||| tgt`, or the source file of two line-aligned files (.gz is read too).")],
    src_lang: Annotated[str, typer.Option(help="Source language code, e.g. zh.")],
    tgt_lang: Annotated[str, typer.Option(help="Target language code, e.g. en.")],
    out: Annotated[Path, typer.Option(help="New directory for the fine-tuned encoder (pass it to `xlre align --model`).")],
    tgt_file: TgtFileOpt = None,
    fmt: FormatOpt = "auto",
    model: ModelOpt = "xlm-roberta-base",
    layer: LayerOpt = None,
    epochs: Annotated[int, typer.Option(help="Passes over the corpus.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Sentence pairs per optimiser step.")] = 8,
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW, linear decay).")] = 2e-5,
    guide: Annotated[str, typer.Option(help="Links the model teaches itself: argmax (mutual best) or softmax (awesome-align's, at --threshold; it collapsed multilingual-e5-small, whose softmax starts flat).")] = "argmax",
    threshold: Annotated[float, typer.Option(help="--guide softmax: probability both directions must reach.")] = 1e-3,
    max_pairs: Annotated[int | None, typer.Option(help="Learn from the first N pairs only (default: all).")] = None,
    pretokenized: Annotated[bool, typer.Option(help="The corpus is already tokenized: split it on whitespace only.")] = False,
    zh_script: Annotated[str, typer.Option(help="Chinese scripts: fold (segment on text folded to simplified) or keep.")] = "fold",
    skip_bad: Annotated[bool, typer.Option(help="Skip bad lines (counted by reason) instead of stopping.")] = False,
) -> None:
    """Fine-tune the neural aligner's encoder on parallel text (awesome-align's self-training).

    No gold alignments are needed. The new encoder goes to --out; align with it by
    `xlre align --aligner combined --model OUT --method softmax --threshold 0.1`.
    CPU cost and effect: BENCHMARKS.md.
    """
    from alignment.corpus import BadLine, ParallelCorpus
    from alignment.finetune import TuneConfig, fine_tune
    from alignment.script import make_tokenizer

    config = TuneConfig(layer=layer, epochs=epochs, batch_size=batch_size, lr=lr,
                        guide=guide, threshold=threshold)
    config.validate()
    src_tok = make_tokenizer(src_lang, pretokenized, zh_script)
    tgt_tok = make_tokenizer(tgt_lang, pretokenized, zh_script)
    reader = ParallelCorpus(corpus, src_lang, tgt_lang, tgt_path=tgt_file, fmt=fmt,  # type: ignore[arg-type]
                            skip_bad=skip_bad, pretokenized=pretokenized)
    pairs = []
    for item in reader:
        if max_pairs is not None and len(pairs) >= max_pairs:
            break
        if not isinstance(item, BadLine):
            pairs.append(item)
    stages = {"src": f"tokenizing {src_lang}", "tgt": f"tokenizing {tgt_lang}",
              "tune": f"fine-tuning ({epochs} epoch{'s' if epochs > 1 else ''})"}
    with progress_bar(len(pairs), stages, dict.fromkeys(stages, "pairs")) as update:
        sides: dict[str, list[tuple[str, ...]]] = {"src": [], "tgt": []}
        for side, tok in (("src", src_tok), ("tgt", tgt_tok)):
            texts = (p.src_text if side == "src" else p.tgt_text for p in pairs)
            for t in tok.pipe(texts):
                sides[side].append(t.tokens)
                update(side, 1)
        summary = fine_tune(model, sides["src"], sides["tgt"], out, config,
                            progress=lambda n: update("tune", n / epochs))
    report = summary.as_dict() | {"skipped": reader.report.as_dict(), "out": str(out)}
    err_console.print_json(json.dumps(report))


@app.command("align-eval")
def align_eval_cmd(
    gold: Annotated[Path, typer.Option(help="Gold Pharaoh links: `i-j` sure, `ipj` possible.")],
    pred: Annotated[Path, typer.Option(help="Predicted Pharaoh links (0-indexed), one line per pair.")],
    gold_one_indexed: Annotated[bool, typer.Option(help="The gold file counts tokens from 1.")] = False,
) -> None:
    """Score predicted links against gold: AER, precision, recall (Och & Ney)."""
    from alignment.corpus import count_lines
    from alignment.metrics import alignment_error_rate
    from alignment.pharaoh import read_pharaoh

    n_gold, n_pred = count_lines(gold), count_lines(pred)
    if n_gold != n_pred:
        raise fail(
            f"{gold} has {n_gold} lines but {pred} has {n_pred}: the files must have one "
            "line per sentence pair, in the same order"
        )
    scores = alignment_error_rate(
        read_pharaoh(gold, one_indexed=gold_one_indexed),
        (g.possible for g in read_pharaoh(pred)),
    )
    sys.stdout.write(json.dumps(scores.as_dict()) + "\n")

