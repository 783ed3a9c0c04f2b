"""engine.events.author_name: what provenance keeps of a client-supplied name."""

from __future__ import annotations

import pytest

from engine.events import MAX_USER_NAME, author_name


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("  Ann  ", "Ann"),
        ("a\nb\tc", "a b c"),
        ("\x00\x07evil\x1b[0m", "evil[0m"),
        ("\u202eevil\u200b", "evil"),  # bidi override and zero-width space dropped
        ("\ud800x", "x"),  # unpaired surrogate
        ("👩\u200d💻 dev", "👩\u200d💻 dev"),  # the zero-width joiner inside an emoji stays
        ("Zoë 李", "Zoë 李"),
        ("", None),
        ("\x00 \n", None),
        (None, None),
        (42, None),
        ({"name": "x"}, None),
    ],
)
def test_author_name(raw: object, kept: str | None) -> None:
    assert author_name(raw) == kept


def test_long_names_are_cut() -> None:
    name = author_name("x" * 500)
    assert name is not None and len(name) == MAX_USER_NAME
