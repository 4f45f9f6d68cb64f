"""The projection annotation runs use is the one ``xlre eval-projection`` measures."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from tests.helpers.handkb import write_kb
from xlre.annotate import LINKS_FILE, AnnotateConfig, annotate, iter_records
from xlre.cli import app
from xlre.evaluation.projection import project_gold
from xlre.kb import load_kb

# Gold in both languages; the KB (tests.helpers.handkb) knows every marked entity, and
# its French aliases differ from the English names for Germany and Georgia.
GOLD = [
    ("<e1> {a} </e1> is the capital of <e2> {b} </e2> .",
     "<e1> {a} </e1> est la capitale de la <e2> {fb} </e2> ."),
    ("<e1> Anna Weber </e1> was born in <e2> Berlin </e2> .",
     "<e1> Anna Weber </e1> est née à <e2> Berlin </e2> ."),
    ("<e1> Tbilisi </e1> is a city in <e2> Georgia </e2> .",
     "<e1> Tbilissi </e1> est une ville de <e2> Géorgie </e2> ."),
]
MARKER = re.compile(r"</?e[12]> ?")


def _write(tmp_path: Path, n: int = 60) -> tuple[Path, Path, Path]:
    """The same pairs as a corpus (``id<TAB>en<TAB>fr``) and as marked gold files."""
    rng = random.Random(3)
    corpus, en_gold, fr_gold = [], [], []
    for k in range(n):
        en, fr = GOLD[k % len(GOLD)]
        a, b, fb = rng.choice([("Paris", "France", "France"), ("Berlin", "Germany", "Allemagne")])
        en, fr = en.format(a=a, b=b), fr.format(a=a, fb=fb)
        corpus.append(f"p{k}\t{MARKER.sub('', en)}\t{MARKER.sub('', fr)}")
        en_gold += [f'p{k}\t"{en}"', "rel(e1,e2)", ""]
        fr_gold += [f'p{k}\t"{fr}"', "rel(e1,e2)", ""]
    paths = tmp_path / "corpus.tsv", tmp_path / "gold_en.txt", tmp_path / "gold_fr.txt"
    for path, lines in zip(paths, (corpus, en_gold, fr_gold), strict=True):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def test_eval_projection_finds_the_target_spans_of_a_run(tmp_path):
    kb_dir = write_kb(tmp_path / "kb")
    corpus, src_gold, tgt_gold = _write(tmp_path)
    run = tmp_path / "run"
    # eflomal samples, seeded from /dev/urandom: on 60 pairs alone it sometimes links
    # only two thirds of the entities. Ten more copies to learn from make it steady
    # (120 of 120 projected in 50 of 50 tries, against 11 of 15 without).
    extra = tmp_path / "extra.tsv"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    extra.write_text("".join(f"x{k}-{line}\n" for k in range(10) for line in lines), encoding="utf-8")
    manifest = annotate(AnnotateConfig(corpus=str(corpus), src_lang="en", tgt_lang="fr", kb=str(kb_dir),
                            out=str(run), extra_corpora=(str(extra),)))
    run_src: dict[str, list[tuple[int, int]]] = {}
    run_tgt: dict[str, set[tuple[int, int]]] = {}
    for rec in iter_records(run):
        spans = [(e["char_start"], e["char_end"]) for e in rec["entities"]]
        if rec["side"] == "src":
            run_src[rec["pair_id"]] = spans
        else:
            run_tgt[rec["pair_id"]] = set(spans)

    # Through the run's own word links, the gold entities land where the run put them.
    done = project_gold(src_gold, tgt_gold, "en", "fr", None, kb=load_kb(kb_dir),
                        links_file=run / LINKS_FILE)
    assert done.ids == [f"p{k}" for k in range(60)]
    exact = projected = 0
    for sid, projections in zip(done.ids, done.projections, strict=True):
        src = done.src[sid]
        assert run_src[sid] == [src.e1, src.e2], "the run links exactly the gold entities"
        got = {(p.span.char_start, p.span.char_end) for p in projections if p.span is not None}
        assert got == run_tgt[sid], sid
        projected += len(got)
        gold = (done.tgt[sid].e1, done.tgt[sid].e2)
        exact += sum(p.span is not None and (p.span.char_start, p.span.char_end) == g
                     for p, g in zip(projections, gold, strict=True))
    assert projected >= 0.75 * 120, "too few projections for the comparison to mean much"
    # ... for the same reasons: each outcome (projected, snapped to an alias or an
    # identical name, ...) as often as the run counted it.
    outcomes = Counter(p.outcome for ps in done.projections for p in ps)
    assert outcomes == manifest["counts"]["projection"]
    assert outcomes["snapped"] > 0, outcomes

    # The command scores those very spans.
    result = CliRunner().invoke(app, [
        "eval-projection", "--src", str(src_gold), "--tgt", str(tgt_gold), "--src-lang", "en",
        "--tgt-lang", "fr", "--links", str(run / LINKS_FILE), "--kb", str(kb_dir)])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["entity_exact_recall"] == round(exact / 120, 4)
    assert scores["entity_exact_precision"] == round(exact / projected, 4)


def test_links_file_must_match_the_records(tmp_path):
    kb_dir = write_kb(tmp_path / "kb")
    _, src_gold, tgt_gold = _write(tmp_path, n=6)
    links = tmp_path / "short.links"
    links.write_text("0-0\n1-1\n", encoding="utf-8")
    result = CliRunner().invoke(app, [
        "eval-projection", "--src", str(src_gold), "--tgt", str(tgt_gold), "--src-lang", "en",
        "--tgt-lang", "fr", "--links", str(links), "--kb", str(kb_dir)])
    assert result.exit_code == 2
    assert "has 2 lines but 6 records are paired" in result.output
