"""The model config records its training languages; configs written before that load."""

from __future__ import annotations

import json

from xlre.modeling import XlreConfig


def test_languages_are_stored_and_old_configs_load(tmp_path):
    cfg = XlreConfig(entity_types=["PER"], relations=["P19"], languages=["zh", "en"])
    cfg.save_pretrained(tmp_path)
    assert XlreConfig.from_pretrained(tmp_path).languages == ["en", "zh"]
    old = json.loads((tmp_path / "config.json").read_text())
    del old["languages"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert XlreConfig.from_pretrained(tmp_path).languages == []
