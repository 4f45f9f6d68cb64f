"""spaCy is imported without torch for tokenizing, and with it where asked
(alignment.spacy_import); each case in a fresh interpreter, since the first import decides."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_tokenizing_imports_no_torch_and_leaves_it_importable() -> None:
    out = _run(
        "import sys\n"
        "from alignment.tokenize import Tokenizer\n"
        "toks = Tokenizer('en')(\"It's fine.\").tokens\n"
        "from alignment.spacy_import import spacy_has_torch\n"
        "print(' '.join(toks), 'torch' in sys.modules, spacy_has_torch())\n"
        "import torch\n"
        "print(int(torch.ones(3).sum()))\n"
    )
    assert out.splitlines() == ["It 's fine . False False", "3"]


def test_with_torch_keeps_thincs_torch_support() -> None:
    pytest.importorskip("torch")
    out = _run(
        "from alignment.spacy_import import import_spacy, spacy_has_torch\n"
        "import_spacy(with_torch=True)\n"
        "from alignment.tokenize import Tokenizer\n"
        "Tokenizer('en')\n"
        "print(spacy_has_torch())\n"
    )
    assert out == "True"


def test_an_annotation_run_with_ner_imports_spacy_with_torch(tmp_path) -> None:
    """`--ner` may name a transformer pipeline, which needs thinc's torch support: the run
    imports spaCy with torch before anything else imports it."""
    pytest.importorskip("torch")
    out = _run(
        "import sys\n"
        "from xlre.annotate import run\n"
        "from xlre.annotate.config import AnnotateConfig\n"
        "cfg = AnnotateConfig(corpus='missing.tsv', src_lang='en', tgt_lang='fr', kb='missing',\n"
        f"                     out={str(tmp_path / 'run')!r}, ner=('no_such_pipeline',))\n"
        "try:\n"
        "    run.annotate(cfg)\n"
        "except Exception as err:\n"
        "    print(type(err).__name__)\n"
        "from alignment.spacy_import import spacy_has_torch\n"
        "print('spacy' in sys.modules and spacy_has_torch())\n"
    )
    assert out.splitlines()[-1] == "True"
