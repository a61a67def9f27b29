"""Multi-language texts: Clerk's language names and which text becomes the base field.

A multi-language feed gives a text attribute as an object keyed by Clerk's language names,
`{"italian": "Spada laser", "english": "Lightsaber"}`. The shop keeps every translation in the
model's `translations` JSON (`{language: {field: text}}`) and one of them in the base column,
which single-language feeds, the admin and search read.

The base text is chosen by one rule (`base_language`): the first of `settings.CLERK_LANGUAGES`
that the object carries; when it carries none of them (or none are configured), the first
language the object lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# The languages Clerk's guide lists ("Supported languages"); it wants them by these exact names.
CLERK_LANGUAGE_NAMES = frozenset(
    {
        "danish",
        "dutch",
        "english",
        "finnish",
        "french",
        "german",
        "italian",
        "norwegian",
        "portuguese",
        "russian",
        "spanish",
        "swedish",
    }
)


def known_languages(configured: Sequence[str]) -> frozenset[str]:
    """Language names an object may use: Clerk's, plus any the shop configured beyond them."""
    return CLERK_LANGUAGE_NAMES | frozenset(configured)


def base_language(texts: Mapping[str, str], configured: Sequence[str]) -> str:
    """The language whose text goes into the base field (see the module docstring).

    `texts` must not be empty.
    """
    for language in configured:
        if language in texts:
            return language
    return next(iter(texts))
