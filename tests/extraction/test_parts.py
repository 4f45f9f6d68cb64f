"""Extraction into a directory of parts: one part per input, a manifest, --resume, the
Ray engine (the same parts as the local one; a killed actor's part is redone, never
doubled), and export / kg load reading the directory as one file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.extraction import parts_faults
from tests.extraction.test_extract import SETTINGS
from tests.helpers.handmade import PAIRS, write_run
from tests.helpers.tiny_models import EN_FR_PAIRS, build_tiny_xlmr
from xlre.cli import app
from xlre.extraction import ExtractError
from xlre.extraction.partdir import PartSettings, part_name
from xlre.extraction.parts import extract_parts
from xlre.extraction.ray_engine import RayOptions
from xlre.kg import ExportError, export, read_triples
from xlre.training import train
from xlre.training.settings import load_settings

SENTENCES = [s for _, pair, _, _ in PAIRS for s in pair]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parts-model")
    run = write_run(root / "run")
    texts = SENTENCES + [s for p in EN_FR_PAIRS for s in p]
    enc = build_tiny_xlmr(root / "enc", corpus=texts)
    # 30 epochs (test_extract's 60 halved) already extract the three hand-made facts.
    train(run, str(enc), root / "model", load_settings(None, [*SETTINGS, "train.epochs=30"]))
    return root / "model"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """Four inputs: two of one name in different directories, gzipped JSONL, and text."""
    root = tmp_path_factory.mktemp("parts-inputs")
    (root / "a").mkdir()
    (root / "b").mkdir()
    (root / "a" / "docs.txt").write_text("\n".join(SENTENCES[:3]) + "\n", encoding="utf-8")
    (root / "b" / "docs.txt").write_text("\n".join(SENTENCES[3:]) + "\n", encoding="utf-8")
    with gzip.open(root / "c.jsonl.gz", "wt", encoding="utf-8") as fh:
        for k, text in enumerate(SENTENCES):
            fh.write(json.dumps({"id": f"c{k}", "text": text, "lang": "fr" if k % 2 else "en"}) + "\n")
    (root / "d.txt").write_text(" ".join(SENTENCES[0:6:2]) + "\n" + SENTENCES[5] + "\n",
                                encoding="utf-8")
    return [str(root / "a" / "docs.txt"), str(root / "b" / "docs.txt"),
            str(root / "c.jsonl.gz"), str(root / "d.txt")]


@pytest.fixture(scope="module")
def local_parts(model_dir, inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "parts"
    extract_parts(inputs, out, PartSettings(model=str(model_dir)))
    return out


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the Ray engine needs `pip install 'xlre[ray]'`")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    # Workers cannot import the tests package: the dying extractor travels by value.
    ray.cloudpickle.register_pickle_by_value(parts_faults)
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(parts_faults)
    ray.shutdown()


def _parts(out: Path) -> dict[str, list[str]]:
    """Part file name -> its lines (every .jsonl file in the directory)."""
    return {p.name: p.read_text(encoding="utf-8").splitlines() for p in sorted(out.glob("*.jsonl"))}


def _counts(manifest: dict) -> dict:
    return {name: {k: v for k, v in part.items() if k not in ("seconds", "engine")}
            for name, part in manifest["parts"].items()}


def test_one_part_per_input_and_the_manifest(local_parts, inputs, model_dir):
    manifest = json.loads((local_parts / "manifest.json").read_text())
    parts = _parts(local_parts)
    assert sorted(parts) == sorted(part_name(p) for p in inputs)
    assert len(set(parts)) == 4  # a/docs.txt and b/docs.txt do not collide
    assert manifest["finished"] and manifest["inputs"] == inputs
    assert manifest["model"] == str(model_dir)
    for name, lines in parts.items():
        part = manifest["parts"][name]
        assert part["finished"] and part["triples"] == len(lines) > 0
        if part["input"].endswith(".txt"):  # ids are PATH:LINE, the path as given
            assert {json.loads(x)["doc_id"].rsplit(":", 1)[0] for x in lines} == {part["input"]}
    gz = manifest["parts"][part_name(inputs[2])]
    assert gz["documents"] == 6 and gz["languages"]["given"] == {"en": 3, "fr": 3}
    assert manifest["counts"]["documents"] == 3 + 3 + 6 + 2
    assert manifest["counts"]["triples"] == sum(len(v) for v in parts.values())


@pytest.fixture(scope="module")
def ray_run(model_dir, inputs, local_ray, tmp_path_factory) -> tuple[Path, dict, Path]:
    """One Ray run of two actors, in which the actor that first takes b/docs.txt dies
    (os._exit) and is restarted: one run keeps the module's Ray cost to two actor starts
    and a restart."""
    settings = PartSettings(model=str(model_dir))
    root = tmp_path_factory.mktemp("ray")
    marker = root / "killed.txt"
    result = extract_parts(inputs, root / "parts", settings, engine="ray",
                           ray_options=RayOptions(actors=2),
                           make_extractor=parts_faults.DyingFactory(settings, inputs[1], str(marker)))
    return root / "parts", result, marker


def test_ray_parts_equal_local_parts(local_parts, ray_run):
    out, result, _ = ray_run
    assert result["engine_info"]["actors"] == 2
    assert _parts(out) == _parts(local_parts)  # triple for triple, in order
    ray_manifest = json.loads((out / "manifest.json").read_text())
    local_manifest = json.loads((local_parts / "manifest.json").read_text())
    assert ray_manifest["finished"]
    assert _counts(ray_manifest) == _counts(local_manifest)
    assert ray_manifest["counts"] == local_manifest["counts"]


def test_a_killed_actors_part_is_redone_once(local_parts, inputs, ray_run):
    out, result, marker = ray_run
    victim = part_name(inputs[1])
    assert marker.exists(), "the actor extracting b/docs.txt should have died once"
    assert sorted(result["parts_written_this_time"]) == sorted(part_name(p) for p in inputs)
    got, want = _parts(out), _parts(local_parts)
    assert len(got[victim]) == len(set(got[victim])) > 0  # nothing doubled
    assert got[victim] == want[victim]
    assert not list(out.glob(".*")), "a temporary file was left behind"


def test_resume_redoes_only_unfinished_parts(model_dir, inputs, local_parts, tmp_path):
    out = tmp_path / "run"
    runner = CliRunner()
    pattern = str(Path(inputs[0]).parent.parent / "*" / "docs.txt")
    base = ["extract", "--model", str(model_dir), "--input", pattern,
            "--input", inputs[2], "--input", inputs[3], "--out", str(out)]
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    assert _parts(out) == _parts(local_parts)
    # A killed run: one part never finished (its file missing), another finished.
    lost = out / part_name(inputs[2])
    lost.unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")}
    with pytest.raises(ExportError, match="unfinished: 1 of 4 parts"):
        list(read_triples([out]))
    res = runner.invoke(app, base)
    assert res.exit_code == 2 and "--resume" in res.output
    res = runner.invoke(app, [*base, "--resume", "--threshold", "0.9"])
    assert res.exit_code == 2 and "--threshold" in res.output and "Fix" in res.output
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stderr[res.stderr.index("{"):])
    assert summary["parts_written_this_time"] == 1 and summary["parts_kept"] == 3
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl") if p != lost} == kept
    assert _parts(out) == _parts(local_parts)
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 0 and '"parts_written_this_time": 0' in res.stderr


def test_export_and_kg_load_of_parts_equal_the_concatenated_file(local_parts, tmp_path):
    cat = tmp_path / "all.jsonl"
    cat.write_text("".join(p.read_text(encoding="utf-8")
                           for p in sorted(local_parts.glob("*.jsonl"))), encoding="utf-8")
    for fmt in ("nt", "graphml"):
        a = export([local_parts], fmt, tmp_path / f"parts.{fmt}")
        b = export([cat], fmt, tmp_path / f"cat.{fmt}")
        assert a["triples"] == b["triples"] > 0 and a["edges"] == b["edges"]
        assert (tmp_path / f"parts.{fmt}").read_bytes() == (tmp_path / f"cat.{fmt}").read_bytes()
    runner = CliRunner()
    query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    counts = []
    for source, store in ((local_parts, "s1"), (cat, "s2")):
        res = runner.invoke(app, ["kg", "load", "--triples", str(source), "--store",
                                  str(tmp_path / store)])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["kg", "query", "--store", str(tmp_path / store), "--json", query])
        counts.append(json.loads(res.stdout)["rows"])
    assert counts[0] == counts[1]
    # A directory that is no finished extraction is refused with the fix.
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["export", "--triples", str(empty), "--format", "nt", "--out",
                              str(tmp_path / "x.nt")])
    assert res.exit_code == 2 and "no manifest.json" in res.output


def test_bad_inputs_and_options_are_one_line(model_dir, inputs, tmp_path):
    settings = PartSettings(model=str(model_dir))
    with pytest.raises(ExtractError, match="no file matches"):
        from xlre.extraction.partdir import expand_inputs
        expand_inputs([str(tmp_path / "*.nothing")])
    with pytest.raises(ExtractError, match="standard input"):
        extract_parts(["-"], tmp_path / "o", settings)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExtractError, match="is a file"):
        extract_parts(inputs[:2], tmp_path / "file", settings)
    with pytest.raises(ExtractError, match="nothing to resume"):
        extract_parts(inputs[:1], tmp_path / "new", settings, resume=True)
    res = CliRunner().invoke(app, ["extract", "--model", str(model_dir), inputs[0],
                                   "--resume"])
    assert res.exit_code == 2 and "directory of parts" in res.output
