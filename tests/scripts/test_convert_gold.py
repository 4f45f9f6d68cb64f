"""scripts/convert_gold.py on hand-written lines in the REBEL, DuIE and RELX-Distant layouts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from xlre.data.marked import read_marked

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("convert_gold", ROOT / "scripts" / "convert_gold.py")
assert _spec and _spec.loader
cg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cg)


def _uri(u: str) -> dict:
    return {"uri": u}


def test_rebel_keeps_chosen_relations_and_writes_matching_docs(tmp_path: Path) -> None:
    src = tmp_path / "rebel.jsonl"
    rows = [{"docid": "7", "text": "Lyon is in France.", "triples": [
        {"subject": _uri("Q456"), "predicate": _uri("P17"), "object": _uri("Q142")},
        {"subject": _uri("Q456"), "predicate": _uri("P17"), "object": _uri("Q142")},
        {"subject": _uri("Q456"), "predicate": _uri("P999"), "object": _uri("Q1")}]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    gold, docs = tmp_path / "g.jsonl", tmp_path / "d.jsonl"
    assert cg.main(["rebel", str(src), "--gold", str(gold), "--docs", str(docs), "--relations", "P17"]) == 0
    g = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines()]
    assert g == [{"id": "7", "lang": "en", "text": "Lyon is in France.",
                  "triples": [{"subject": "Q456", "relation": "P17", "object": "Q142"}]}]
    assert json.loads(docs.read_text(encoding="utf-8")) == {"id": "7", "lang": "en", "text": "Lyon is in France."}
    _, counts = cg.convert_rebel(src, {"P17"})
    assert counts == {"triples": 1, "left_out_duplicate": 1, "left_out_relation_not_kept": 1, "documents": 1}


def test_duie_maps_predicates_and_swaps_inverse_ones(tmp_path: Path) -> None:
    mp = tmp_path / "map.tsv"
    mp.write_text("# header\n作者\tP50\t0\n父亲\tP40\t1\n", encoding="utf-8")
    src = tmp_path / "duie-dev.jsonl"
    rows = [{"text": "《书》是甲写的，乙的父亲是丙", "spo_list": [
        {"subject": "书", "predicate": "作者", "object": {"@value": "甲"}},
        {"subject": "乙", "predicate": "父亲", "object": {"@value": "丙"}},
        {"subject": "书", "predicate": "出版社", "object": {"@value": "丁"}}]}]
    src.write_text(json.dumps(rows[0], ensure_ascii=False) + "\n", encoding="utf-8")
    docs, counts = cg.convert_duie(src, cg.read_duie_map(mp), None)
    assert docs[0]["id"] == "duie-dev:1" and docs[0]["lang"] == "zh"
    assert docs[0]["triples"] == [{"subject": "书", "relation": "P50", "object": "甲"},
                                  {"subject": "丙", "relation": "P40", "object": "乙"}]
    assert counts["left_out_predicate_not_mapped"] == 1


def test_relx_distant_becomes_marked_sentences_xlre_reads(tmp_path: Path) -> None:
    src = tmp_path / "relx.json"
    text = "Le cheval Incitatus de Caligula."
    src.write_text(json.dumps([{"sentence": text, "entity1_indices": [23, 31],
                                "entity2_indices": [10, 19], "relation": "P127"}]), encoding="utf-8")
    out = tmp_path / "relx.txt"
    assert cg.main(["relx-distant", str(src), "--out", str(out)]) == 0
    (rec,) = list(read_marked(out))
    assert rec.text == text and rec.label == "P127(e1,e2)"
    assert rec.entity_text("e1") == "Caligula" and rec.entity_text("e2") == "Incitatus"


def test_a_malformed_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "rebel.jsonl"
    src.write_text('{"docid": "1", "text": "x", "triples": []}\n{"docid": "2"}\n', encoding="utf-8")
    rc = cg.main(["rebel", str(src), "--gold", str(tmp_path / "g"), "--docs", str(tmp_path / "d")])
    assert rc == 2 and "rebel.jsonl:2: missing field" in capsys.readouterr().err
