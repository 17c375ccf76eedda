from pathlib import Path

from cosim.docgen import models_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def test_models_md_is_up_to_date():
    assert DOC.read_text() == models_markdown(), "run: .venv/bin/python -m cosim.docgen > docs/models.md"
