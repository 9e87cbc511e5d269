"""The portal speaks from its catalogue: a catalogue that translates its strings changes the
pages (so no page text is hard-coded around gettext), and a victim's words stay as typed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot.portal import i18n
from tests.integration.portal_support import PortalHarness, harness

__all__ = ["harness"]


@pytest.fixture
def welsh(tmp_path: Path) -> Iterator[None]:
    """A catalogue (Welsh, as a deployment in Wales might add) that marks every string."""
    with (i18n.portal_locales_dir() / "portal.pot").open("rb") as fh:
        template = read_po(fh)
    catalog = Catalog(locale="cy")
    for message in template:
        if message.id:
            marked = (
                ("[cy] " + message.id[0], "[cy] " + message.id[1])
                if isinstance(message.id, tuple)
                else "[cy] " + message.id
            )
            catalog.add(message.id, marked)
    folder = tmp_path / "cy" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "portal.po").open("wb") as fh:
        write_po(fh, catalog)
    i18n.use(i18n.load("cy", tmp_path))
    try:
        yield
    finally:
        i18n.use(i18n.load(i18n.SOURCE_LANGUAGE))


async def test_a_catalogue_translates_every_string_of_the_login_page(
    harness: PortalHarness, welsh: None
) -> None:
    async with harness.client() as client:
        response = await client.get("/portal/login")
        page = await response.text()
    assert response.status == 200
    for english in ("Log in", "Login name", "Passphrase"):
        assert f"[cy] {english}" in page
    assert ">Log in<" not in page  # nothing left in English


async def test_english_is_what_a_new_server_speaks(harness: PortalHarness) -> None:
    async with harness.client() as client:
        page = await (await client.get("/portal/login")).text()
    assert "<h1>Log in</h1>" in page and "[cy]" not in page
