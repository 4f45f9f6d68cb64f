"""The KB on disk (xlre.kb.index): the same links as the in-memory KB, shared by path."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from alignment.script import make_tokenizer
from alignment.tokenize import Tokenizer
from xlre.annotate import AnnotateConfig, annotate
from xlre.kb import EntityLinker, Gazetteer, KBError, load_kb
from xlre.kb.index import KBIndex, build_index, ensure_index

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "corpora" / "demo-en-fr"
DATA = ROOT.parent / "shared" / "data"
NEWS = DATA / "parallel" / "news-en-zh.tsv.gz"
KB_V2 = DATA / "kb-wikidata-v2"


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> KBIndex:
    out = tmp_path_factory.mktemp("index") / "demo"
    return build_index(DEMO / "kb", out, [("en", 2, "smart", "fold"), ("fr", 2, "smart", "fold")])


def _demo_sentences(col: int) -> list[str]:
    lines = (DEMO / "parallel.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[col] for line in lines]


def assert_same_links(kb, index: KBIndex, lang: str, texts: list[str], zh_script: str = "fold") -> int:
    """Mentions, links and gazetteer counts of the index equal the in-memory ones."""
    toks = list(make_tokenizer(lang, zh_script=zh_script).pipe(texts))
    mem, disk = Gazetteer(kb, lang), index.gazetteer(lang)
    assert [disk.find(t) for t in toks] == [mem.find(t) for t in toks]
    assert (disk.dropped, disk.n_aliases) == (mem.dropped, mem.n_aliases)
    assert set(disk.single_words.keys()) == mem.single_words
    linked_mem = [EntityLinker(kb, mem).link(t) for t in toks]
    assert [EntityLinker(index, disk).link(t) for t in toks] == linked_mem
    return sum(map(len, linked_mem))


@pytest.mark.parametrize(("lang", "col"), [("en", 1), ("fr", 2)])
def test_index_links_the_demo_corpus_as_the_in_memory_kb(demo_index: KBIndex, lang: str, col: int) -> None:
    kb = load_kb(DEMO / "kb")
    assert assert_same_links(kb, demo_index, lang, _demo_sentences(col)) > 1000


def test_index_answers_every_fact_prior_type_and_name_as_the_kb(demo_index: KBIndex) -> None:
    kb = load_kb(DEMO / "kb")
    ids = list(kb.entities)
    for a in ids:
        assert demo_index.prior(a) == kb.prior(a)
        assert demo_index.entity_type(a) == kb.entity_type(a)
        assert demo_index.is_language(a) == kb.is_language(a)
        for lang in kb.languages():
            assert demo_index.names(a, lang) == kb.names(a, lang)
        for b in ids:
            assert demo_index.relations_between(a, b) == kb.relations_between(a, b)
            assert demo_index.connected(a, b) == kb.connected(a, b)
    assert demo_index.relations_between("Q_nowhere", ids[0]) == ()
    assert demo_index.summary() == kb.summary()
    assert demo_index.relations == kb.relations


def test_index_pickles_as_its_path(demo_index: KBIndex) -> None:
    """A worker (forked, or a Ray task) reopens the files; it is not sent the KB."""
    gaz = demo_index.gazetteer("en")
    blob = pickle.dumps((demo_index, gaz))
    assert len(blob) < 1000
    index2, gaz2 = pickle.loads(blob)
    tok = Tokenizer("en")("Lyon is in France.")
    assert gaz2.find(tok) == gaz.find(tok) != []
    assert index2.summary() == demo_index.summary()


def _copy_kb(tmp_path: Path) -> Path:
    kb_dir = tmp_path / "kb"
    shutil.copytree(DEMO / "kb", kb_dir)
    return kb_dir


def test_a_changed_kb_rebuilds_its_index(tmp_path: Path) -> None:
    kb_dir = _copy_kb(tmp_path)
    specs = [("en", 2, "smart", "fold")]
    index = ensure_index(kb_dir, tmp_path / "index", specs)
    kb = load_kb(kb_dir)
    a, b = list(kb.entities)[:2]
    before = index.relations_between(a, b)
    rel = next(r for r in kb.relations if r not in before)
    with open(kb_dir / "triples.tsv", "a", encoding="utf-8") as fh:
        fh.write(f"{a}\t{rel}\t{b}\n")
    os.utime(kb_dir / "triples.tsv", ns=(1, 1))  # a new fingerprint even within one tick
    rebuilt = ensure_index(kb_dir, tmp_path / "index", specs)
    assert rebuilt.relations_between(a, b) == (*before, rel)
    assert rebuilt.has_gazetteer(specs[0])


def test_an_index_of_an_older_format_is_rebuilt(tmp_path: Path) -> None:
    kb_dir = _copy_kb(tmp_path)
    specs = [("en", 2, "smart", "fold")]
    ensure_index(kb_dir, tmp_path / "index", specs)
    meta_path = tmp_path / "index" / "index.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta_path.write_text(json.dumps(meta | {"version": 1}), encoding="utf-8")
    with pytest.raises(KBError, match="KB index version 1"):
        KBIndex(tmp_path / "index")
    rebuilt = ensure_index(kb_dir, tmp_path / "index", specs)
    assert rebuilt.meta["version"] == meta["version"] and rebuilt.has_gazetteer(specs[0])


def test_a_missing_gazetteer_and_a_foreign_directory_are_refused(tmp_path: Path, demo_index: KBIndex) -> None:
    with pytest.raises(KBError, match=r"no gazetteer .*xlre kb index"):
        demo_index.gazetteer("en", case="exact")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(KBError, match="not a KB index"):
        build_index(DEMO / "kb", tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").exists()


def _shards(run: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((run / "shards").glob("*.jsonl"))]


def _source_records(run: Path) -> list[dict]:
    records = [json.loads(line) for text in _shards(run) for line in text.splitlines()]
    source = [r for r in records if r["side"] == "src"]
    assert source and len(source) == len(records) // 2
    return source


@pytest.mark.parametrize("workers", [1, 2])
def test_an_annotation_run_over_the_index_writes_the_same_shards(tmp_path: Path, workers: int) -> None:
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("".join(line + "\n" for line in
                              (DEMO / "parallel.tsv").read_text(encoding="utf-8").splitlines()[:600]),
                      encoding="utf-8")
    common = dict(corpus=str(corpus), src_lang="en", tgt_lang="fr", kb=str(DEMO / "kb"),
                  shard_size=150, workers=workers)
    mem = annotate(AnnotateConfig(out=str(tmp_path / "mem"), **common))
    disk = annotate(AnnotateConfig(out=str(tmp_path / "disk"), kb_index=str(tmp_path / "index"), **common))
    assert (tmp_path / "index" / "gaz-fr-smart-2-fold").is_dir()  # the target's anchors too
    # Linking decides the source side alone. The target side also depends on eflomal, which
    # seeds from /dev/urandom, so two runs may project differently (CI saw it once).
    assert mem["counts"]["relations"]["en"] == disk["counts"]["relations"]["en"]
    assert _source_records(tmp_path / "disk") == _source_records(tmp_path / "mem")
    assert len(_shards(tmp_path / "mem")) == 4


@pytest.mark.skipif(not (NEWS.is_file() and KB_V2.is_dir()), reason="../shared/data news-en-zh or kb-wikidata-v2 is not here")
def test_index_links_news_en_zh_as_the_in_memory_kb(tmp_path: Path) -> None:
    kb = load_kb(KB_V2)
    index = build_index(KB_V2, tmp_path / "index", [("en", 2, "smart", "fold"), ("zh", 2, "smart", "fold")], kb)
    with gzip.open(NEWS, "rt", encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for _, line in zip(range(1500), fh, strict=False)]
    assert assert_same_links(kb, index, "en", [r[0] for r in rows]) > 1000
    pytest.importorskip("jieba")
    assert assert_same_links(kb, index, "zh", [r[1] for r in rows]) > 1000
    meta = json.loads((tmp_path / "index" / "index.json").read_text(encoding="utf-8"))
    assert meta["summary"]["entities"] == len(kb.entities)


def test_cli_kb_index_writes_the_index_and_refuses_a_foreign_directory(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xlre.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["kb", "index", str(DEMO / "kb"), "--out", str(tmp_path / "idx"),
                              "--langs", "en,fr"])
    assert res.exit_code == 0, res.output
    assert KBIndex(tmp_path / "idx").gazetteer("fr").n_aliases > 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x", encoding="utf-8")
    res = runner.invoke(app, ["kb", "index", str(DEMO / "kb"), "--out", str(tmp_path / "other")])
    assert res.exit_code == 2
    assert "is not a KB index" in res.output and "Traceback" not in res.output
