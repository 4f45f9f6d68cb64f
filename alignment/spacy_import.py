"""spaCy, imported without torch where nothing in the process needs it.

spaCy imports thinc, and thinc's ``compat`` module imports torch only to find out
whether it can offer torch layers. xlre uses spaCy for its tokenizers, its stop-word
lists and, optionally, an NER pipeline; none of the pipelines xlre names
(``*_core_*_sm``) has a torch layer. Importing torch costs about 1.4 s of one core on
the 2-core benchmark machine, 10% of a 60k-pair annotation run, in every ``xlre align``
and ``xlre annotate`` process.

:func:`import_spacy` makes the first import of spaCy see no torch (thinc then records
``has_torch = False``), and leaves torch importable as before for everything that
follows. It changes nothing when torch or spaCy is already imported, or when the
caller asks for torch: a transformer-based spaCy pipeline (``*_trf``) needs thinc's
torch support, so ``xlre annotate --ner`` imports spaCy with it.
"""

from __future__ import annotations

import sys
from types import ModuleType


def import_spacy(with_torch: bool = False) -> ModuleType:
    """The ``spacy`` module; its first import in this process sees no torch unless
    ``with_torch`` (module docstring)."""
    if with_torch or "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        import spacy
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]
    return spacy


def spacy_has_torch() -> bool:
    """Whether the spaCy of this process was imported with torch support (thinc's view)."""
    import thinc.compat

    return bool(thinc.compat.has_torch)
