"""Shared fixtures: small hand-made parallel corpora written on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.toy import toy_pairs


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TSV corpus of 300 toy pairs (``src<TAB>tgt``)."""
    path = tmp_path_factory.mktemp("toy") / "toy.tsv"
    lines = [" ".join(s) + "\t" + " ".join(t) for s, t in toy_pairs(300)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
