"""``xlre kb build``: a KB directory from a Wikidata JSON dump (xlre.kb.wikidata).

The dump fixture is written here, in the dump's layout: a ``[`` line, one entity a
line ending with ``,``, a ``]`` line. It holds Chinese variants, deprecated and
qualifier-free statements, the 2014 ``numeric-id`` layout, PHP's ``[]`` for empty maps,
a ``mul``-only item, a lexeme, property entities and one malformed line.
"""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignment.errors import UserError
from xlre.cli import app
from xlre.kb import load_kb, wikidata
from xlre.kb.wikidata import (
    DEFAULT_TYPES,
    BuildSettings,
    WikidataDumpError,
    build_kb,
    parse_properties,
    read_type_table,
)

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "wikidata-sample" / "sample-all.json.bz2"
PROPS = ("P17", "P19", "P27", "P36", "P131", "P159")


def term(lang: str, value: str) -> dict:
    return {"language": lang, "value": value}


def labels(**by_lang: str) -> dict:
    return {k.replace("_", "-"): term(k.replace("_", "-"), v) for k, v in by_lang.items()}


def aliases(**by_lang: list[str]) -> dict:
    return {k.replace("_", "-"): [term(k.replace("_", "-"), v) for v in vs] for k, vs in by_lang.items()}


def item_value(qid: str, old: bool = False) -> dict:
    value = {"entity-type": "item", "numeric-id": int(qid[1:])}
    if not old:
        value["id"] = qid
    return {"value": value, "type": "wikibase-entityid"}


def statement(prop: str, qid: str, rank: str = "normal", old: bool = False) -> dict:
    return {"mainsnak": {"snaktype": "value", "property": prop, "datavalue": item_value(qid, old),
                         "datatype": "wikibase-item"}, "type": "statement", "rank": rank}


def claims(*stmts: dict) -> dict:
    out: dict[str, list] = {}
    for st in stmts:
        out.setdefault(st["mainsnak"]["property"], []).append(st)
    return out


def sitelinks(n: int) -> dict:
    return {f"wiki{i}": {"site": f"wiki{i}", "title": "T"} for i in range(n)}


ENTITIES = [
    {"type": "item", "id": "Q10", "modified": "2025-01-02T03:04:05Z",
     "labels": labels(en="Taipei", en_gb="Taipei", fr="Taipei", zh_hant="臺北市", zh_hans="台北市",
                      zh_tw="臺北市", de="Taipeh", zh_yue="台北"),
     "aliases": aliases(en=["Taipei City"], zh_hk=["北市"], zh_cn=["台北"]),
     "claims": claims(statement("P31", "Q515"), statement("P17", "Q20"),
                      statement("P17", "Q99", rank="deprecated"),
                      statement("P131", "Q20", rank="preferred"),
                      statement("P999", "Q20"),  # a property not chosen
                      {"mainsnak": {"snaktype": "somevalue", "property": "P36"}, "rank": "normal"}),
     "sitelinks": sitelinks(3)},
    {"type": "item", "id": "Q20", "modified": "2024-06-01T00:00:00Z",
     "labels": labels(en="Formosa", fr="Formose", zh="台湾", zh_cn="台湾", zh_hant="臺灣"),
     "aliases": [],
     "claims": claims(statement("P31", "Q11424", rank="deprecated"), statement("P31", "Q6256"),
                      statement("P36", "Q10"), statement("P17", "Q40")),
     "sitelinks": sitelinks(5)},
    # the 2014 layout: item values carry only numeric-id; PHP's [] for empty sitelinks
    {"type": "item", "id": "Q30", "labels": labels(en="Ada Lin", zh_tw="林愛達"),
     "aliases": {}, "claims": claims(statement("P31", "Q5", old=True),
                                      statement("P19", "Q10", old=True),
                                      statement("P27", "Q20", old=True),
                                      statement("P27", "Q20", old=True)),  # a duplicate fact
     "sitelinks": []},
    {"type": "item", "id": "Q40", "labels": labels(de="Nirgendwo"), "claims": {}, "sitelinks": {}},
    {"type": "item", "id": "Q50", "labels": {"mul": term("mul", "ACME")},
     "aliases": {"mul": [term("mul", "ACME Corp")]},
     "claims": claims(statement("P31", "Q11424"), statement("P31", "Q43229"),
                      statement("P159", "Q10"), statement("P159", "Q60")),
     "sitelinks": sitelinks(1)},
    {"type": "item", "id": "Q60", "labels": labels(en="Some Film"),
     "claims": claims(statement("P31", "Q11424"), statement("P17", "Q20")), "sitelinks": sitelinks(2)},
    {"type": "lexeme", "id": "L1", "lemmas": {"en": term("en", "run")}},
    {"type": "property", "id": "P17", "datatype": "wikibase-item",
     "labels": labels(en="country", fr="pays", zh_hant="國家", zh_hans="国家")},
    {"type": "property", "id": "P131", "datatype": "wikibase-item",
     "labels": labels(en="located in", zh="位于")},
    {"type": "property", "id": "P27", "datatype": "wikibase-item", "labels": labels(en="citizenship")},
    {"type": "property", "id": "P19", "datatype": "wikibase-item", "labels": []},
    {"type": "property", "id": "P159", "datatype": "wikibase-item",
     "labels": {"mul": term("mul", "HQ"), "en": term("en", "headquarters")}},
    {"type": "property", "id": "P999", "datatype": "wikibase-item", "labels": labels(en="unused")},
]
BAD_LINE = '{"type": "item", "id": "Q70", "labels": {"en": '  # cut short
BAD_AT = 5  # the bad line goes after the 5th entity: file line 7 (line 1 is "[")

EXPECTED_ENTITIES = [
    {"id": "Q10", "type": "LOC", "labels": {"en": ["Taipei", "Taipei City"], "fr": ["Taipei"],
                                            "zh": ["台北市", "臺北市", "台北", "北市"]}, "popularity": 3},
    {"id": "Q20", "type": "LOC", "labels": {"en": ["Formosa"], "fr": ["Formose"], "zh": ["台湾", "臺灣"]},
     "popularity": 5},
    {"id": "Q30", "type": "PER", "labels": {"en": ["Ada Lin"], "zh": ["林愛達"]}, "popularity": 0},
    {"id": "Q50", "type": "ORG", "labels": {"en": ["ACME", "ACME Corp"], "fr": ["ACME", "ACME Corp"],
                                            "zh": ["ACME", "ACME Corp"]}, "popularity": 1},
    {"id": "Q60", "labels": {"en": ["Some Film"]}, "popularity": 2},  # untyped: a film
]
EXPECTED_RELATIONS = [
    {"id": "P17", "labels": {"en": "country", "fr": "pays", "zh": "国家"}},
    {"id": "P19", "labels": {}},
    {"id": "P27", "labels": {"en": "citizenship"}},
    {"id": "P36", "labels": {}},
    {"id": "P131", "labels": {"en": "located in", "zh": "位于"}},
    {"id": "P159", "labels": {"en": "headquarters", "fr": "HQ", "zh": "HQ"}},
]
EXPECTED_TRIPLES = [
    "Q10\tP17\tQ20", "Q10\tP131\tQ20",
    "Q20\tP36\tQ10",  # Q20 P17 Q40: Q40 has no name in en/fr/zh, so it is not kept
    "Q30\tP19\tQ10", "Q30\tP27\tQ20",
    "Q50\tP159\tQ10", "Q50\tP159\tQ60",
    "Q60\tP17\tQ20",
]


def dump_text(entities: list[dict] = ENTITIES, bad: str | None = BAD_LINE) -> str:
    lines = [json.dumps(e, ensure_ascii=bool(i % 2)) for i, e in enumerate(entities)]
    if bad is not None:
        lines.insert(BAD_AT, bad)
    return "[\n" + ",\n".join(lines) + "\n]\n"


def write_dump(path: Path, text: str | None = None) -> Path:
    data = (dump_text() if text is None else text).encode("utf-8")
    if path.name.endswith(".bz2"):
        path.write_bytes(bz2.compress(data))
    elif path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def settings(**kw) -> BuildSettings:
    return BuildSettings(langs=kw.pop("langs", ("en", "fr", "zh")), properties=kw.pop("properties", PROPS), **kw)


def read_kb(out: Path) -> tuple[list[dict], list[dict], list[str]]:
    ents = [json.loads(x) for x in (out / "entities.jsonl").read_text(encoding="utf-8").splitlines()]
    rels = [json.loads(x) for x in (out / "relations.jsonl").read_text(encoding="utf-8").splitlines()]
    triples = (out / "triples.tsv").read_text(encoding="utf-8").splitlines()
    return ents, rels, triples


def kb_bytes(out: Path) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in ("entities.jsonl", "relations.jsonl", "triples.tsv")}


def stable(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k not in ("seconds", "resumes")}


@pytest.mark.parametrize("suffix", [".json", ".json.bz2", ".json.gz"])
def test_build_gives_the_exact_kb(tmp_path: Path, suffix: str) -> None:
    dump = write_dump(tmp_path / f"latest-all{suffix}")
    out = tmp_path / "kb"
    manifest = build_kb(dump, out, settings(), skip_bad=True)
    ents, rels, triples = read_kb(out)
    assert ents == EXPECTED_ENTITIES
    assert rels == EXPECTED_RELATIONS
    assert triples == EXPECTED_TRIPLES
    assert sorted(p.name for p in out.iterdir()) == ["entities.jsonl", "manifest.json",
                                                     "relations.jsonl", "triples.tsv"]
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == manifest
    counts = manifest["counts"]
    assert counts["entities"] == 5 and counts["triples"] == 8 and counts["relations"] == 6
    assert counts["items_seen"] == 6 and counts["properties_seen"] == 6
    assert counts["other_entities_seen"] == 1 and counts["dropped_no_name"] == 1
    # Q10's deprecated P17 and Q20's deprecated P31 (which would have typed it untyped first)
    assert counts["deprecated_statements_skipped"] == 2
    assert counts["dropped_facts_tail_not_kept"] == 1  # Q20 P17 Q40
    assert counts["relations_without_names"] == 2  # P19 (labels []) and P36 (not in the dump)
    assert counts["bad_lines"] == 1 and counts["entity_lines"] == len(ENTITIES) + 1
    assert manifest["bad_lines"] == {"invalid_json": {
        "count": 1, "first": f"{dump}:{BAD_AT + 2}",
        "problem": manifest["bad_lines"]["invalid_json"]["problem"]}}
    assert manifest["bad_lines"]["invalid_json"]["problem"].startswith("invalid JSON")
    assert manifest["types"] == {"(none)": 1, "LOC": 2, "ORG": 1, "PER": 1}
    assert manifest["aliases_by_language"] == {"en": 7, "fr": 4, "zh": 9}
    assert manifest["dump"]["date"] == "2025-01-02"
    assert manifest["dump"]["date_source"] == "latest modified"
    assert manifest["settings"]["properties"] == list(PROPS)
    # the KB loads, and its facts are the triples
    kb = load_kb(out)
    assert kb.relations_between("Q50", "Q60") == ("P159",)
    assert kb.prior("Q20") == 5
    assert kb.languages() == {"en", "fr", "zh"}


def test_date_comes_from_the_file_name_when_it_has_one(tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "wikidata-20241230-all.json.gz")
    manifest = build_kb(dump, tmp_path / "kb", settings(), skip_bad=True)
    assert (manifest["dump"]["date"], manifest["dump"]["date_source"]) == ("2024-12-30", "file name")
    assert manifest["dump"]["max_modified"] == "2025-01-02T03:04:05Z"


def test_bad_line_stops_the_build_then_skip_bad_resumes_it(tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "latest-all.json.bz2")
    out = tmp_path / "kb"
    with pytest.raises(WikidataDumpError) as info:
        build_kb(dump, out, settings(), checkpoint_lines=2)
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert message.startswith(f"{dump}:{BAD_AT + 2}: invalid JSON")
    assert "--skip-bad" in message and "\n" not in message
    assert info.value.reason == "invalid_json"
    assert not (out / "entities.jsonl").exists()  # nothing half-built in place
    resumed = build_kb(dump, out, settings(), skip_bad=True, resume=True)
    straight = build_kb(dump, tmp_path / "straight", settings(), skip_bad=True)
    assert kb_bytes(out) == kb_bytes(tmp_path / "straight")
    assert stable(resumed) == stable(straight) and resumed["resumes"] == 1


@pytest.mark.parametrize("bad, reason", [
    ('["Q1"]', "not_an_object"),
    ('{"type": "item", "labels": {}}', "missing_id"),
    ('{"type": "item", "id": "Q1x"}', "bad_id"),
    ('{"type": "item", "id": "Q71", "labels": {"en": "Bare"}}', "bad_structure"),
    ('{"type": "item", "id": "Q72", "labels": {"en": {"value": "x"}}, "claims": {"P17": {}}}',
     "bad_structure"),
])
def test_each_kind_of_bad_line_is_counted_by_reason(tmp_path: Path, bad: str, reason: str) -> None:
    dump = write_dump(tmp_path / "d.json", dump_text(bad=bad))
    manifest = build_kb(dump, tmp_path / "kb", settings(), skip_bad=True)
    assert list(manifest["bad_lines"]) == [reason]
    assert manifest["bad_lines"][reason]["first"] == f"{dump}:{BAD_AT + 2}"
    assert read_kb(tmp_path / "kb")[0] == EXPECTED_ENTITIES
    with pytest.raises(WikidataDumpError, match=rf"^{dump}:{BAD_AT + 2}: "):
        build_kb(dump, tmp_path / "kb2", settings())


class Interrupt(Exception):
    """Stands for a kill: raised from the progress callback."""


@pytest.mark.parametrize("workers, chunk_bytes", [(2, 1), (2, 300), (3, 2000)])
def test_workers_give_the_kb_of_one_process(tmp_path: Path, workers: int, chunk_bytes: int) -> None:
    """Pass 1 on worker processes, the dump cut into chunks of whole lines (as small as one
    line): the same files, manifest, bad-line report and progress calls as line by line."""
    dump = write_dump(tmp_path / "latest-all.json.bz2")
    serial_calls: list[tuple[str, int]] = []
    serial = build_kb(dump, tmp_path / "serial", settings(), skip_bad=True, workers=1,
                      progress_lines=3, progress=lambda s, n: serial_calls.append((s, n)))
    calls: list[tuple[str, int]] = []
    chunked = build_kb(dump, tmp_path / "chunked", settings(), skip_bad=True, workers=workers,
                       chunk_bytes=chunk_bytes, progress_lines=3,
                       progress=lambda s, n: calls.append((s, n)))
    assert kb_bytes(tmp_path / "chunked") == kb_bytes(tmp_path / "serial")
    assert stable(chunked) == stable(serial)
    assert chunked["bad_lines"]["invalid_json"]["first"] == f"{dump}:{BAD_AT + 2}"
    assert calls == serial_calls
    with pytest.raises(WikidataDumpError, match=rf"^{dump}:{BAD_AT + 2}: invalid JSON"):
        build_kb(dump, tmp_path / "stops", settings(), workers=workers, chunk_bytes=chunk_bytes)


def test_a_worker_that_dies_stops_the_build_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from xlre.kb.knowledge_base import KBError

    dump = write_dump(tmp_path / "latest-all.json")
    with monkeypatch.context() as m:  # inherited by the forked workers
        m.setattr(wikidata._Builder, "tally", lambda *_: os._exit(9))
        with pytest.raises(KBError, match=r"worker process died .*Fix: resume the build with --resume"):
            build_kb(dump, tmp_path / "kb", settings(), skip_bad=True, workers=2, chunk_bytes=300)
    build_kb(dump, tmp_path / "kb", settings(), skip_bad=True, resume=True, workers=2, chunk_bytes=300)
    build_kb(dump, tmp_path / "straight", settings(), skip_bad=True)
    assert kb_bytes(tmp_path / "kb") == kb_bytes(tmp_path / "straight")


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("stop_at", range(1, 15))
def test_interrupted_build_resumed_gives_the_same_kb(tmp_path: Path, stop_at: int, workers: int) -> None:
    dump = write_dump(tmp_path / "latest-all.json.bz2")
    straight = build_kb(dump, tmp_path / "straight", settings(), skip_bad=True)
    calls: list[tuple[str, int]] = []

    def progress(stage: str, n: int) -> None:
        calls.append((stage, n))
        if len(calls) == stop_at:
            raise Interrupt(stage)

    out = tmp_path / "kb"
    # with workers, chunks of about two lines: checkpoints fall after the chunk that
    # reaches a multiple of 3 lines
    kwargs = {"skip_bad": True, "checkpoint_lines": 3, "progress_lines": 2, "workers": workers,
              "chunk_bytes": 400}
    try:
        build_kb(dump, out, settings(), progress=progress, **kwargs)
        finished = True
    except Interrupt:
        finished = False
    stages = [s for s, _ in calls]
    if stop_at <= len(calls):
        assert not finished and not (out / "manifest.json").exists()
        resumed = build_kb(dump, out, settings(), resume=True, **kwargs)
        assert resumed["resumes"] == 1
    else:  # more calls asked than there are: the build ran through
        assert finished
        resumed = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert kb_bytes(out) == kb_bytes(tmp_path / "straight")
    assert stable(resumed) == stable(straight)
    # both passes report progress: 16 dump lines in 2s, then the 9 candidate facts in 2s
    if finished:
        assert stages == ["entities"] * 8 + ["facts"] * 5
        assert sum(n for s, n in calls if s == "facts") == 9


def test_resume_after_a_kill_in_the_middle_of_a_line(tmp_path: Path) -> None:
    """Bytes written after the last checkpoint (a half-written line) are dropped."""
    dump = write_dump(tmp_path / "latest-all.json")
    out = tmp_path / "kb"

    def progress(stage: str, n: int) -> None:
        if stage == "entities":
            raise Interrupt

    with pytest.raises(Interrupt):
        build_kb(dump, out, settings(), skip_bad=True, checkpoint_lines=2, progress_lines=3,
                 progress=progress)
    partial = out / ".build" / "entities.jsonl"
    partial.write_text(partial.read_text(encoding="utf-8") + '{"id": "Q9', encoding="utf-8")
    build_kb(dump, out, settings(), skip_bad=True, resume=True, checkpoint_lines=4)
    build_kb(dump, tmp_path / "straight", settings(), skip_bad=True)
    assert kb_bytes(out) == kb_bytes(tmp_path / "straight")


def test_resume_refuses_other_settings_and_a_full_directory(tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "latest-all.json")
    out = tmp_path / "kb"

    def progress(stage: str, n: int) -> None:
        raise Interrupt

    with pytest.raises(Interrupt):
        build_kb(dump, out, settings(), skip_bad=True, checkpoint_lines=2, progress_lines=2,
                 progress=progress)
    with pytest.raises(UserError, match="other settings"):
        build_kb(dump, out, settings(min_sitelinks=2), skip_bad=True, resume=True)
    with pytest.raises(UserError, match="--resume"):
        build_kb(dump, out, settings(), skip_bad=True)
    finished = build_kb(dump, out, settings(), skip_bad=True, resume=True)
    again = build_kb(dump, out, settings(), skip_bad=True, resume=True)  # already finished
    assert again == finished
    with pytest.raises(UserError, match="not empty"):
        build_kb(dump, out, settings(), skip_bad=True)


def test_filters_min_sitelinks_typed_only_and_a_type_table(tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "latest-all.json")
    manifest = build_kb(dump, tmp_path / "a", settings(min_sitelinks=2, typed_only=True), skip_bad=True)
    ents, _, triples = read_kb(tmp_path / "a")
    assert [e["id"] for e in ents] == ["Q10", "Q20"]  # Q30, Q50: < 2 sitelinks; Q60: untyped
    assert triples == ["Q10\tP17\tQ20", "Q10\tP131\tQ20", "Q20\tP36\tQ10"]
    assert manifest["counts"]["dropped_below_min_sitelinks"] == 3  # Q30, Q40, Q50
    assert manifest["counts"]["dropped_untyped"] == 1

    table = tmp_path / "types.tsv"
    table.write_text("# class\ttype\nQ11424\tWORK\nQ5\tPER\n", encoding="utf-8")
    types = read_type_table(table)
    assert types == {"Q11424": "WORK", "Q5": "PER"}
    build_kb(dump, tmp_path / "b", settings(types=tuple(types.items()), types_source=str(table)),
             skip_bad=True)
    by_id = {e["id"]: e.get("type") for e in read_kb(tmp_path / "b")[0]}
    # Q50's first P31 class is a film; Q20's film class is deprecated, so it stays untyped
    assert by_id == {"Q10": None, "Q20": None, "Q30": "PER", "Q50": "WORK", "Q60": "WORK"}
    assert DEFAULT_TYPES["Q5"] == "PER" and DEFAULT_TYPES["Q6256"] == "LOC"

    bad = tmp_path / "bad-types.tsv"
    bad.write_text("Q5 PER\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{bad}:1: expected QID<TAB>TYPE"):
        read_type_table(bad)


def test_all_properties_and_a_property_file(tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "latest-all.json")
    build_kb(dump, tmp_path / "all", settings(properties=None), skip_bad=True)
    _, rels, triples = read_kb(tmp_path / "all")
    # every property with a kept fact, in id order (no P31: no class is a kept entity)
    assert [r["id"] for r in rels] == ["P17", "P19", "P27", "P36", "P131", "P159", "P999"]
    assert "Q10\tP999\tQ20" in triples and "Q50\tP31\tQ43229" not in triples  # class not kept

    listing = tmp_path / "props.txt"
    listing.write_text("P36  # capital\n\nP17\nP36\n", encoding="utf-8")
    assert parse_properties(f"@{listing}") == ("P36", "P17")
    assert parse_properties("P17, P19") == ("P17", "P19")
    listing.write_text("P17\ncountry\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{listing}:2: 'country' is not a Wikidata property id"):
        parse_properties(f"@{listing}")


def test_cli_builds_and_reports_a_bad_line_in_one_line(tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "latest-all.json.gz")
    runner = CliRunner()
    args = ["kb", "build", "--wikidata", str(dump), "--langs", "en,fr,zh-Hant",
            "--properties", ",".join(PROPS)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "refused")])
    assert result.exit_code == 2, result.output
    assert f"{dump}:{BAD_AT + 2}: invalid JSON" in result.output
    assert "Traceback" not in result.output

    result = runner.invoke(app, [*args, "--out", str(tmp_path / "kb"), "--skip-bad"])
    assert result.exit_code == 0, result.output
    ents, rels, triples = read_kb(tmp_path / "kb")
    assert (ents, rels, triples) == (EXPECTED_ENTITIES, EXPECTED_RELATIONS, EXPECTED_TRIPLES)

    result = runner.invoke(app, ["kb", "build", "--wikidata", str(dump), "--out", str(tmp_path / "x"),
                                 "--properties", "P17,country"])
    assert result.exit_code == 2 and "'country' is not a Wikidata property id" in result.output


@pytest.mark.skipif(not SAMPLE.is_file(), reason="../shared/data/wikidata-sample is not here")
def test_real_sample_slice(tmp_path: Path) -> None:
    """The first 300 entities of the real sample: it builds without a bad line and loads."""
    head = tmp_path / "head-all.json"
    with bz2.open(SAMPLE, "rt", encoding="utf-8") as src, open(head, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i > 300:
                break
            dst.write(line)
        dst.write("]\n")
    manifest = build_kb(head, tmp_path / "kb", settings(properties=("P17", "P31", "P131", "P279")))
    counts = manifest["counts"]
    assert counts["entity_lines"] == 300 and counts["bad_lines"] == 0
    assert 0 < counts["entities"] <= 300 and counts["triples"] > 0
    kb = load_kb(tmp_path / "kb")  # every triple's ends are entities, every relation known
    assert kb.n_triples == counts["triples"]
    assert kb.languages() <= {"en", "fr", "zh"} and "zh" in kb.languages()
    q1 = kb.entities["Q1"]  # the universe: zh names come from its zh-hant, zh-cn, ... labels
    assert q1.labels["fr"][0] == "univers" and q1.labels["zh"] and q1.popularity > 0
    assert manifest["dump"]["date_source"] == "latest modified"


@pytest.mark.parametrize("properties", [PROPS, None])
def test_the_slim_parse_gives_the_kb_of_the_whole_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        properties: tuple[str, ...] | None) -> None:
    """Lines are parsed without their unread members (msgspec); switching that off (every
    line parsed whole by orjson) must give the same KB and manifest, on the fixture and on
    the real sample's first 300 entities."""
    dumps = [write_dump(tmp_path / "fixture-all.json")]
    if SAMPLE.is_file():
        dumps.append(tmp_path / "head-all.json")
        with bz2.open(SAMPLE, "rb") as src, open(dumps[-1], "wb") as dst:
            for i, line in enumerate(src):
                if i > 300:
                    break
                dst.write(line)
            dst.write(b"]\n")
    for dump in dumps:
        slim = build_kb(dump, tmp_path / f"slim-{dump.stem}", settings(properties=properties), skip_bad=True)
        with monkeypatch.context() as m:
            m.setattr(wikidata, "_slim_entity", lambda text, props: None)
            whole = build_kb(dump, tmp_path / f"whole-{dump.stem}", settings(properties=properties), skip_bad=True)
        assert kb_bytes(tmp_path / f"slim-{dump.stem}") == kb_bytes(tmp_path / f"whole-{dump.stem}")
        assert stable(slim)["counts"] == stable(whole)["counts"] and slim["bad_lines"] == whole["bad_lines"]
        assert slim["counts"]["entities"] > 0


def test_slim_parse_hands_odd_lines_to_the_whole_parse() -> None:
    assert wikidata._slim_entity(b'["Q1"]', None) is None  # not an object
    assert wikidata._slim_entity(b'{"id": "Q1", "x": "\xff"}', None) is None  # not UTF-8
    assert wikidata._slim_entity(b'{"id": "Q1", "x": [1,}', None) is None  # bad JSON in a skipped member
    line = json.dumps({"id": "Q1", "type": "item", "descriptions": {"en": term("en", "d")},
                       "sitelinks": [], "claims": {"P31": [], "P17": [], "P999": []}}).encode()
    obj = wikidata._slim_entity(line, frozenset({"P17"}))
    assert obj == {"id": "Q1", "type": "item", "sitelinks": [], "claims": {"P31": [], "P17": []}}


def test_sitelinks_are_the_linkers_prior(tmp_path: Path) -> None:
    """Issue 20 item 3: two items named London; the one with more sitelinks is linked,
    because kb build writes sitelinks as popularity and the linker ranks by it."""
    from alignment.tokenize import Tokenizer
    from xlre.kb import EntityLinker, Gazetteer, LinkStats

    londons = [{"type": "item", "id": qid, "labels": labels(en="London"),
                "claims": claims(statement("P31", "Q515")), "sitelinks": sitelinks(n)}
               for qid, n in (("Q92561", 4), ("Q84", 40))]
    text = "[\n" + ",\n".join(json.dumps(e) for e in londons) + "\n]\n"
    dump = write_dump(tmp_path / "dump.json", text)
    build_kb(dump, tmp_path / "kb", settings())
    kb = load_kb(tmp_path / "kb")
    assert kb.prior("Q84") == 40 and kb.prior("Q92561") == 4
    stats = LinkStats()
    ents = EntityLinker(kb, Gazetteer(kb, "en")).link(Tokenizer("en")("She moved to London."), stats)
    assert [(e.text, e.kb_id) for e in ents] == [("London", "Q84")]
    assert stats.resolved_by_prior == 1


def test_a_line_that_is_not_utf8_is_told_apart_from_bad_json(tmp_path: Path) -> None:
    data = dump_text().encode("utf-8").splitlines(keepends=True)
    # an entity line with one byte that no UTF-8 text holds, inside a label
    data[2] = data[2].replace(b'"value":', b'"value": "\xff", "x":', 1)
    dump = tmp_path / "latest-all.json"
    dump.write_bytes(b"".join(data))
    with pytest.raises(WikidataDumpError) as info:
        build_kb(dump, tmp_path / "kb", settings())
    assert info.value.reason == "invalid_utf8"
    assert str(info.value).startswith(f"{dump}:3: the line is not UTF-8")
