"""Document ids of text inputs are unique across files: the path as given, then the line."""

from __future__ import annotations

from xlre.extraction import read_documents


def test_same_name_in_two_directories_gives_distinct_ids(tmp_path):
    paths = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        path = tmp_path / sub / "docs.txt"
        path.write_text(f"first of {sub}\nsecond of {sub}\n", encoding="utf-8")
        paths.append(str(path))
    docs = list(read_documents(paths, fmt="text"))
    ids = [d.doc_id for d in docs]
    assert ids == [f"{paths[0]}:1", f"{paths[0]}:2", f"{paths[1]}:1", f"{paths[1]}:2"]
    assert len(set(ids)) == 4


def test_a_relative_path_is_kept_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "docs.txt").write_text("one\n", encoding="utf-8")
    assert [d.doc_id for d in read_documents(["a/docs.txt"])] == ["a/docs.txt:1"]
