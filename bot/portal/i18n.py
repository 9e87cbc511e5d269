"""The portal's interface text goes through gettext, so Babel can extract it (`_("...")` in
Python and in the templates). English is the source and, for now, the only language shipped."""

from __future__ import annotations

import gettext

_translations = gettext.NullTranslations()


def _(message: str) -> str:
    return _translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations.ngettext(singular, plural, n)
