"""Label maps: the entity types and relations a model knows, stored in its config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from xlre.records import NA

IGNORE = -100


@dataclass(frozen=True)
class LabelMaps:
    """Entity types and relations a model knows; stored in the model config."""

    entity_types: tuple[str, ...]
    relations: tuple[str, ...]  # without NA: "no relation" is no label at all
    na: str = NA

    @property
    def bio(self) -> list[str]:
        return ["O"] + [f"{p}-{t}" for t in self.entity_types for p in ("B", "I")]

    def marker_tokens(self) -> list[str]:
        return [
            m for t in self.entity_types
            for m in (f"<h:{t}>", f"</h:{t}>", f"<t:{t}>", f"</t:{t}>")
        ]


def entity_type(ent: dict[str, Any]) -> str:
    return ent.get("label") or "ENT"


def describe(labels: LabelMaps) -> Iterable[str]:
    yield f"entity types: {', '.join(labels.entity_types)}"
    yield f"relations: {', '.join(labels.relations)} (+ {labels.na})"
