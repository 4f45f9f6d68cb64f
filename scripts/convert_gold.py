"""Convert real relation-extraction gold into the formats xlre scores, so the same
scoring runs on any split of these sets.

* ``rebel IN``: REBEL JSONL (``docid``, ``text``, ``triples`` with Wikidata ``uri`` for
  subject, predicate and object) -> ``--gold`` (``xlre score`` JSONL: ``id``, ``lang``,
  ``text``, ``triples`` of Wikidata ids) and ``--docs`` (``xlre extract`` JSONL input,
  the same ``id`` and ``lang``).
* ``duie IN --map duie-to-wikidata.tsv``: DuIE 2.0 JSONL (``text``, ``spo_list`` with
  Chinese predicate names and surface strings) -> the same two files. Predicates are
  mapped to Wikidata properties by the map (its ``inverse`` column swaps subject and
  object); arguments stay surface strings, which ``xlre score`` matches by normalised
  text. A document's id is ``STEM:LINE`` of the input file.
* ``relx-distant IN``: RELX-Distant JSON (one Wikidata relation between two marked
  entities per sentence) -> a marked-sentence file (``ID<TAB>"... <e1> x </e1> ..."``
  then ``P127(e1,e2)``) for ``xlre evaluate --marked SPLIT:LANG:PATH``.

``--relations P17,P19`` (or a file with one id a line, or a KB's ``relations.jsonl``)
keeps only those relations. Every triple left out is counted by reason, and the counts
are printed as one JSON object. A malformed line stops the conversion with the file, the
line and the fix.

Usage: python scripts/convert_gold.py rebel re-gold/rebel-en-dev.jsonl --gold G --docs D
       python scripts/convert_gold.py duie re-gold/duie-zh-dev.jsonl --map re-gold/duie-to-wikidata.tsv --gold G --docs D
       python scripts/convert_gold.py relx-distant relx/RELX_distant_fr.json --out F
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any


class GoldFormatError(ValueError):
    """A line of the input is not what its format says."""


def fail(path: Path, line_no: int | None, what: str, fix: str) -> GoldFormatError:
    where = f"{path}:{line_no}" if line_no else str(path)
    return GoldFormatError(f"{where}: {what}. Fix: {fix}")


def relation_filter(spec: str | None) -> set[str] | None:
    """The relation ids of ``--relations`` (ids, a file of ids, or a relations.jsonl)."""
    if not spec:
        return None
    path = Path(spec)
    if not path.is_file():
        return {r.strip() for r in spec.split(",") if r.strip()}
    ids = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            ids.add(json.loads(line)["id"] if line.startswith("{") else line)
    return ids


def json_lines(path: Path, fix: str):
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise fail(path, line_no, f"invalid JSON ({err.msg})", fix) from None
            if not isinstance(obj, dict):
                raise fail(path, line_no, "expected a JSON object", fix)
            yield line_no, obj


def convert_rebel(path: Path, keep: set[str] | None, lang: str = "en") -> tuple[list[dict], Counter]:
    docs, counts = [], Counter()
    seen: dict[str, int] = {}
    fix = 'write REBEL lines: {"docid", "text", "triples": [{"subject": {"uri"}, "predicate": {"uri"}, "object": {"uri"}}]}'
    for line_no, obj in json_lines(path, fix):
        try:
            doc_id, text = str(obj["docid"]), obj["text"]
            raw = [(t["subject"]["uri"], t["predicate"]["uri"], t["object"]["uri"]) for t in obj["triples"]]
        except (KeyError, TypeError) as err:
            raise fail(path, line_no, f"missing field {err}", fix) from None
        if doc_id in seen:
            raise fail(path, line_no, f"docid {doc_id!r} also on line {seen[doc_id]}",
                       "give each document one line")
        seen[doc_id] = line_no
        triples = []
        for s, r, o in raw:
            if keep is not None and r not in keep:
                counts["left_out_relation_not_kept"] += 1
                continue
            triples.append({"subject": s, "relation": r, "object": o})
        counts["triples"] += len(triples)
        docs.append({"id": doc_id, "lang": lang, "text": text, "triples": dedupe(triples, counts)})
    counts["documents"] = len(docs)
    return docs, counts


def dedupe(triples: list[dict], counts: Counter) -> list[dict]:
    out, seen = [], set()
    for t in triples:
        key = (t["subject"], t["relation"], t["object"])
        if key in seen:
            counts["left_out_duplicate"] += 1
            counts["triples"] -= 1
            continue
        seen.add(key)
        out.append(t)
    return out


def read_duie_map(path: Path) -> dict[str, tuple[str, bool]]:
    mapping = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[2] not in ("0", "1"):
            raise fail(path, line_no, "expected DUIE_PREDICATE<TAB>PROPERTY<TAB>0|1",
                       "write one predicate a line with its Wikidata property and inverse flag")
        mapping[parts[0]] = (parts[1], parts[2] == "1")
    return mapping


def convert_duie(path: Path, mapping: dict[str, tuple[str, bool]], keep: set[str] | None,
                 lang: str = "zh") -> tuple[list[dict], Counter]:
    docs, counts = [], Counter()
    fix = 'write DuIE lines: {"text", "spo_list": [{"subject", "predicate", "object": {"@value"}}]}'
    for line_no, obj in json_lines(path, fix):
        try:
            text, spo = obj["text"], obj["spo_list"]
            raw = [(t["subject"], t["predicate"], t["object"]["@value"]) for t in spo]
        except (KeyError, TypeError) as err:
            raise fail(path, line_no, f"missing field {err}", fix) from None
        triples = []
        for s, pred, o in raw:
            if pred not in mapping:
                counts["left_out_predicate_not_mapped"] += 1
                continue
            rel, inverse = mapping[pred]
            if keep is not None and rel not in keep:
                counts["left_out_relation_not_kept"] += 1
                continue
            if inverse:
                s, o = o, s
            triples.append({"subject": s, "relation": rel, "object": o})
        counts["triples"] += len(triples)
        docs.append({"id": f"{path.stem}:{line_no}", "lang": lang, "text": text,
                     "triples": dedupe(triples, counts)})
    counts["documents"] = len(docs)
    return docs, counts


def convert_relx_distant(path: Path, keep: set[str] | None) -> tuple[list[str], Counter]:
    fix = 'give a JSON list of {"sentence", "entity1_indices", "entity2_indices", "relation"}'
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise fail(path, err.lineno, f"invalid JSON ({err.msg})", fix) from None
    if not isinstance(records, list):
        raise fail(path, None, "expected a JSON list", fix)
    out, counts = [], Counter()
    for k, rec in enumerate(records):
        try:
            text, rel = rec["sentence"], rec["relation"]
            (a1, b1), (a2, b2) = rec["entity1_indices"], rec["entity2_indices"]
        except (KeyError, TypeError, ValueError) as err:
            raise fail(path, None, f"record {k}: missing or bad field {err}", fix) from None
        if not (0 <= a1 < b1 <= len(text) and 0 <= a2 < b2 <= len(text)) or (a1 < b2 and a2 < b1):
            raise fail(path, None, f"record {k}: entity offsets outside the sentence or overlapping",
                       "give each entity [start, end) offsets into its sentence")
        if keep is not None and rel not in keep:
            counts["left_out_relation_not_kept"] += 1
            continue
        marks = sorted([(a1, b1, "e1"), (a2, b2, "e2")])
        pieces, at = [], 0
        for a, b, name in marks:
            pieces += [text[at:a], f"<{name}> {text[a:b]} </{name}>"]
            at = b
        pieces.append(text[at:])
        out.append(f'{path.stem}-{k}\t"{"".join(pieces)}"\n{rel}(e1,e2)\n\n')
        counts["sentences"] += 1
    return out, counts


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("format", choices=("rebel", "duie", "relx-distant"))
    parser.add_argument("input", type=Path)
    parser.add_argument("--gold", type=Path, help="rebel/duie: gold JSONL for xlre score")
    parser.add_argument("--docs", type=Path, help="rebel/duie: document JSONL for xlre extract")
    parser.add_argument("--out", type=Path, help="relx-distant: marked-sentence file")
    parser.add_argument("--map", type=Path, help="duie: duie-to-wikidata.tsv")
    parser.add_argument("--lang", help="the documents' language (default: en for rebel, zh for duie)")
    parser.add_argument("--relations", help="keep only these relation ids (comma list or file)")
    args = parser.parse_args(argv)
    try:
        keep = relation_filter(args.relations)
        if args.format == "relx-distant":
            if not args.out:
                parser.error("relx-distant needs --out")
            lines, counts = convert_relx_distant(args.input, keep)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text("".join(lines), encoding="utf-8")
        else:
            if not (args.gold and args.docs):
                parser.error(f"{args.format} needs --gold and --docs")
            if args.format == "rebel":
                docs, counts = convert_rebel(args.input, keep, args.lang or "en")
            else:
                if not args.map:
                    parser.error("duie needs --map duie-to-wikidata.tsv")
                docs, counts = convert_duie(args.input, read_duie_map(args.map), keep, args.lang or "zh")
            write_jsonl(args.gold, docs)
            write_jsonl(args.docs, [{"id": d["id"], "lang": d["lang"], "text": d["text"]} for d in docs])
    except (GoldFormatError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(dict(sorted(counts.items()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
