"""``python -m xlre.cli`` (and ``accelerate launch -m xlre.cli train ...``)."""

from xlre.cli import app

app()
