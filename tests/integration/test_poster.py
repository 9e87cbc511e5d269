"""Outreach posters, rendered for real (WeasyPrint, Pango, HarfBuzz, Debian's Noto fonts and
poppler's pdftocairo; nothing mocked):

- the words come from the catalogues, and a language that lacks any of them is refused;
- every format is what it says, at the size asked for, and the QR code in the PNG decodes to
  exactly the link, large, with its quiet zone and error correction M or higher;
- every character of the text is drawn with a real glyph of a font embedded in the PDF (no
  .notdef "tofu"), in the family picked for its script; the checker finds tofu when a
  character has no font, and the renderer refuses such a poster;
- Arabic and Urdu are shaped (contextual forms, told apart from the same words unshaped),
  right to left, with the link isolated left to right;
- the longest words the limits allow fit every size;
- `safebot outreach poster`, one language and all of them, with and without a terminal, and
  each way it can be started wrong: one line, exit 1, no traceback.

`pytest -s` shows the seconds each poster took per format.
"""

from __future__ import annotations

import fcntl
import functools
import io
import logging
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
import time
import tomllib
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import zxingcpp
from babel.messages.pofile import read_po, write_po
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ContentStream, DictionaryObject

from bot import poster
from bot.config import bundled_deployment_path
from bot.poster import PAGES, PosterError, PosterWords, poster_html, poster_words, render_poster
from flows.definition import POSTER_LIMITS, load_flow
from flows.i18n import Catalogs, bundled_locales_dir, load_catalogs
from tests.integration.test_cli_errors import (
    DEPLOYMENT,
    Result,
    fails_in_one_line,
    safebot,
)

USERNAME = "eastshire_test_bot"
CODE = "Ab3dE6gH"
FLOW = load_flow()
CATALOGS = load_catalogs()

# The family each script's text must be drawn in: the test's own table, not bot/poster.py's.
EXPECTED_FAMILY = {
    "pl": ("LATIN", "Noto Sans"),
    "ru": ("CYRILLIC", "Noto Sans"),
    "vi": ("LATIN", "Noto Sans"),
    "ar": ("ARABIC", "Noto Naskh Arabic"),
    "ur": ("ARABIC", "Noto Nastaliq Urdu"),
    "ti": ("ETHIOPIC", "Noto Sans Ethiopic"),
    "bn": ("BENGALI", "Noto Sans Bengali"),
    "pa": ("GURMUKHI", "Noto Sans Gurmukhi"),
    "gu": ("GUJARATI", "Noto Sans Gujarati"),
    "zh_Hant": ("CJK UNIFIED", "Noto Sans CJK TC"),
}
RENDERED = ("pl", "ar", "ur", "ti", "bn", "pa")  # rendered in every format
MM_PER_INCH = 25.4
LINK_FAMILY = "DejaVu Sans Mono"


def link(language: str) -> str:
    return f"https://t.me/{USERNAME}?start=c-{CODE}-{language}"


def words(language: str) -> PosterWords:
    return poster_words(FLOW, CATALOGS, language)


def text_of(w: PosterWords) -> str:
    return " ".join([w.headline, w.what, w.scan, w.private, w.not_police, w.emergency])


def timed(language: str, fmt: str, size: str, w: PosterWords | None = None) -> bytes:
    started = time.perf_counter()
    data = render_poster(w or words(language), link(language), fmt=fmt, size=size)  # type: ignore[arg-type]
    print(f"poster {language} {size} {fmt}: {time.perf_counter() - started:.2f} s")
    return data


# ---- what a PDF draws ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Glyph:
    font: str  # the embedded font's name, without its subset tag: "Noto-Sans-Ethiopic-Bold"
    gid: int
    text: str  # what its ToUnicode entry says it stands for
    real: bool  # a glyph of the font (not .notdef), with an outline unless it may be blank
    nominal: bool  # the glyph the font's cmap gives a character (not a contextual form)


@dataclass
class _Font:
    name: str
    cids: dict[int, int] | None  # code -> CID (None: Identity-H)
    gids: dict[int, int] | None  # CID -> glyph id (None: Identity)
    to_unicode: dict[int, str]
    glyph_count: int
    drawable: set[int]  # glyph ids with an outline, or none and no width (shaping's helpers)
    nominal: set[int]  # glyph ids the font's cmap maps a character to


def _hex_text(hexa: str) -> str:
    return bytes.fromhex(hexa).decode("utf-16-be", errors="replace")


def _to_unicode(data: bytes) -> dict[int, str]:
    text = data.decode("latin-1")
    out: dict[int, str] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", text, re.S):
        for code, target in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]*)>", block):
            out[int(code, 16)] = _hex_text(target)
    for block in re.findall(r"beginbfrange(.*?)endbfrange", text, re.S):
        for lo, hi, start in re.findall(
            r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block
        ):
            for n, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = chr(int(start, 16) + n)
    return out


def _encoding(font: DictionaryObject) -> dict[int, int] | None:
    encoding = font["/Encoding"]
    if encoding == "/Identity-H":
        return None
    text = encoding.get_object().get_data().decode("latin-1")
    out: dict[int, int] = {}
    for block in re.findall(r"begincidchar(.*?)endcidchar", text, re.S):
        for code, cid in re.findall(r"<([0-9a-fA-F]+)>\s*(\d+)", block):
            out[int(code, 16)] = int(cid)
    for block in re.findall(r"begincidrange(.*?)endcidrange", text, re.S):
        for lo, hi, cid in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*(\d+)", block):
            for n, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = int(cid) + n
    return out


def _font(font: DictionaryObject) -> _Font:
    assert font["/Subtype"] == "/Type0", font["/Subtype"]
    descendant = font["/DescendantFonts"][0].get_object()
    descriptor = descendant["/FontDescriptor"].get_object()
    program = descriptor.get("/FontFile2") or descriptor.get("/FontFile3")
    assert program is not None, f"{font['/BaseFont']} is not embedded"
    tt = TTFont(io.BytesIO(program.get_object().get_data()))
    order = tt.getGlyphOrder()
    glyphs = tt.getGlyphSet()
    drawable = set()
    for gid, name in enumerate(order):
        pen = BoundsPen(glyphs)
        glyphs[name].draw(pen)
        if pen.bounds is not None or tt["hmtx"][name][0] == 0:
            drawable.add(gid)
    by_name = {name: gid for gid, name in enumerate(order)}
    # A character's own glyph; not those the cmap gives Arabic's presentation forms (U+FB50-
    # U+FEFF, "<initial>" and the like in their decomposition), which are contextual forms.
    nominal = {
        by_name[name]
        for cp, name in (tt.getBestCmap() or {}).items()
        if name in by_name and not unicodedata.decomposition(chr(cp)).startswith("<")
    }
    gids = None
    mapping = descendant.get("/CIDToGIDMap")
    if mapping is not None and mapping != "/Identity":
        raw = mapping.get_object().get_data()
        gids = {
            cid: int.from_bytes(raw[2 * cid : 2 * cid + 2], "big") for cid in range(len(raw) // 2)
        }
    if descendant["/Subtype"] == "/CIDFontType0" and "cid00001" in by_name:
        # A CID-keyed CFF: a CID is the glyph named for it.
        gids = {int(name[3:]): gid for name, gid in by_name.items() if name.startswith("cid")}
    to_unicode = font.get("/ToUnicode")
    return _Font(
        name=str(font["/BaseFont"]).lstrip("/").split("+", 1)[-1],
        cids=_encoding(font),
        gids=gids,
        to_unicode=_to_unicode(to_unicode.get_object().get_data()) if to_unicode else {},
        glyph_count=len(order),
        drawable=drawable,
        nominal=nominal,
    )


def _blank_ok(text: str) -> bool:
    return all(c.isspace() or unicodedata.category(c) in {"Cf", "Mn", "Zs"} for c in text)


def drawn_glyphs(pdf: bytes) -> list[Glyph]:
    """Every glyph the PDF's page draws (its content stream and the forms it uses)."""
    reader = PdfReader(io.BytesIO(pdf))
    out: list[Glyph] = []
    cache: dict[int, _Font] = {}

    def font_of(resources: DictionaryObject, name: str) -> _Font:
        ref = resources["/Font"].raw_get(name)
        key = ref.idnum if hasattr(ref, "idnum") else id(ref)
        if key not in cache:
            cache[key] = _font(ref.get_object())
        return cache[key]

    def walk(contents: object, resources: DictionaryObject) -> None:
        ops = (
            contents.operations
            if isinstance(contents, ContentStream)
            else ContentStream(contents, reader).operations
        )
        font: _Font | None = None
        for operands, op in ops:
            if op == b"Tf":
                font = font_of(resources, operands[0])
                continue
            if op == b"Do":
                xobject = resources["/XObject"][operands[0]].get_object()
                if xobject["/Subtype"] == "/Form":
                    walk(xobject, xobject.get("/Resources", resources))
                continue
            if op in (b"Tj", b"'", b'"'):
                strings = [operands[-1]]
            elif op == b"TJ":
                strings = [s for s in operands[0] if not isinstance(s, (int, float))]
            else:
                continue
            assert font is not None, "text drawn before a font was set"
            for s in strings:
                raw = bytes(getattr(s, "original_bytes", s))
                for i in range(0, len(raw) - 1, 2):
                    code = int.from_bytes(raw[i : i + 2], "big")
                    cid = code if font.cids is None else font.cids.get(code, 0)
                    gid = cid if font.gids is None else font.gids.get(cid, 0)
                    text = font.to_unicode.get(code, "")
                    real = 0 < gid < font.glyph_count and (gid in font.drawable or _blank_ok(text))
                    out.append(Glyph(font.name, gid, text, real, gid in font.nominal))

    page = reader.pages[0]
    walk(page.get_contents(), page["/Resources"])
    return out


def tofu(glyphs: list[Glyph]) -> list[Glyph]:
    return [g for g in glyphs if not g.real]


def family(font_name: str) -> str:
    """ "Noto-Sans-CJK-TC-Bold" -> "Noto Sans CJK TC"."""
    return re.sub(r"-(Bold|Regular|Medium)$", "", font_name).replace("-", " ")


# ---- the words ----------------------------------------------------------------------------------


def test_the_words_come_from_the_catalogues() -> None:
    english = words("en")
    assert english.headline == FLOW.poster["headline"] and not english.rtl
    for language in ("pl", "ar", "ur", "ti", "bn", "pa", "zh_Hant"):
        w = words(language)
        tr = CATALOGS.get(language)
        for key, msgid in FLOW.poster.items():
            said = getattr(w, key)
            assert said == " ".join(tr.gettext(msgid).split()) and said != msgid, (language, key)
    assert words("ar").rtl and words("ur").rtl and not words("ti").rtl


def _catalogue_without(tmp_path: Path, language: str, *, blank: str, fuzzy: str = "") -> Path:
    """A copy of the bundled catalogues where `language` lacks one poster word (and has
    another only as a fuzzy entry, which the engine leaves out)."""
    locales = tmp_path / "locales"
    shutil.copytree(bundled_locales_dir(), locales, ignore=shutil.ignore_patterns("portal"))
    po = locales / language / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    catalog[FLOW.poster[blank]].string = ""
    if fuzzy:
        catalog[FLOW.poster[fuzzy]].flags.add("fuzzy")
    with po.open("wb") as fh:
        write_po(fh, catalog)
    return locales


def test_a_language_missing_any_poster_word_is_refused(tmp_path: Path) -> None:
    locales = _catalogue_without(tmp_path, "pl", blank="scan", fuzzy="emergency")
    catalogs = load_catalogs(locales)
    with pytest.raises(PosterError) as refused:
        poster_words(FLOW, catalogs, "pl")
    line = str(refused.value)
    assert "\n" not in line and "'pl'" in line and "emergency, scan" in line, line
    with pytest.raises(PosterError, match="no catalogue for 'de'"):
        poster_words(FLOW, catalogs, "de")
    with pytest.raises(PosterError, match="no catalogue"):
        poster_words(FLOW, Catalogs({}), "ar")
    assert poster_words(FLOW, catalogs, "ar") == words("ar")  # the others are untouched


def test_translations_check_holds_each_poster_word_to_its_limit() -> None:
    from bot.translations import length_problems

    headline, scan = FLOW.poster["headline"], FLOW.poster["scan"]
    shown = {headline: "x" * POSTER_LIMITS["headline"], scan: "y" * (POSTER_LIMITS["scan"] + 1)}
    assert [str(p) for p in length_problems("pl", FLOW, shown)] == [
        f"pl: poster scan over {POSTER_LIMITS['scan']} characters "
        f"({POSTER_LIMITS['scan'] + 1}): {scan}"
    ]
    for language in CATALOGS.languages:  # and the catalogues as they are keep to them
        try:
            w = words(language)
        except PosterError:  # not translated yet: `safebot translations check` says so
            continue
        for key, limit in POSTER_LIMITS.items():
            assert len(getattr(w, key)) <= limit, (language, key)


def test_every_word_is_escaped_and_the_direction_set() -> None:
    hostile = replace(words("pl"), headline='<img src="x"> & <b>', scan="</p><script>")
    html = poster_html(hostile, link("pl"), size="a4")
    assert '<img src="x">' not in html and "<script>" not in html and "<b>" not in html
    assert "&lt;img src=&#34;x&#34;&gt; &amp; &lt;b&gt;" in html
    assert '<html lang="pl" dir="ltr">' in html
    for language in ("ar", "ur"):
        html = poster_html(words(language), link(language), size="a4")
        assert f'<html lang="{language}" dir="rtl">' in html
        assert re.search(r'<p class="link"><bdi dir="ltr">.*</bdi></p>', html), html
        assert "direction: ltr" in html  # the link's own block, too
    assert '<html lang="zh-Hant" dir="ltr">' in poster_html(words("zh_Hant"), "x", size="a4")


def test_rendering_warns_of_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """No CSS WeasyPrint ignores, no resource it cannot fetch: the template says only what
    is drawn."""
    caplog.set_level(logging.WARNING, logger="weasyprint")
    for language, size in (("ar", "card"), ("zh_Hant", "a5")):
        render_poster(words(language), link(language), fmt="pdf", size=size)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# ---- formats, sizes and the QR code -------------------------------------------------------------


def decode(png: bytes) -> tuple[zxingcpp.Barcode, Image.Image]:
    image = Image.open(io.BytesIO(png)).convert("L")
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, f"{len(found)} QR codes found"
    return found[0], image


def check_qr(png: bytes, language: str, size: str) -> None:
    code, image = decode(png)
    assert code.text == link(language)
    assert code.ec_level in {"M", "Q", "H"}, code.ec_level
    p = code.position
    left, right = min(p.top_left.x, p.bottom_left.x), max(p.top_right.x, p.bottom_right.x)
    top, bottom = min(p.top_left.y, p.top_right.y), max(p.bottom_left.y, p.bottom_right.y)
    share = (right - left) / image.width
    if size != "card":
        assert share >= 0.4, f"the QR code is {share:.0%} of the page's width"
    modules = 17 + 4 * int(code.extra["Version"])
    module = (right - left) / modules  # zxing's corners are the symbol's outer corners
    quiet = round(4 * module)
    box = (left - quiet + 2, top - quiet + 2, right + quiet - 2, bottom + quiet - 2)
    ring = image.crop(box)
    # Blank the symbol (and a pixel or two of its anti-aliased edge): what is left is the
    # quiet zone, four modules wide, and it must be white.
    ring.paste(255, (quiet - 4, quiet - 4, ring.width - quiet + 4, ring.height - quiet + 4))
    assert ring.getextrema()[0] >= 200, f"something dark in the QR code's quiet zone ({box})"


@pytest.mark.parametrize("language", RENDERED)
def test_every_format_is_what_it_says_and_the_qr_code_reads_back(language: str) -> None:
    pdf = timed(language, "pdf", "a4")
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (
        round(float(box.width) / 72 * MM_PER_INCH),
        round(float(box.height) / 72 * MM_PER_INCH),
    ) == (210, 297)

    for size in ("a4", "card"):
        png = timed(language, "png", size)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        page = PAGES[size]
        width, height = Image.open(io.BytesIO(png)).size
        expected = (
            page.width_mm / MM_PER_INCH * page.png_dpi,
            page.height_mm / MM_PER_INCH * page.png_dpi,
        )
        assert abs(width - expected[0]) <= 2 and abs(height - expected[1]) <= 2, (width, height)
        check_qr(png, language, size)

    svg = timed(language, "svg", "a5")
    root = ET.fromstring(svg)
    assert root.tag in {"svg", "{http://www.w3.org/2000/svg}svg"}
    assert b"<text" not in svg and b"font-family" not in svg  # glyphs are paths: no fonts needed
    assert root.get("width", "").startswith(("419", "420"))  # A5: 148 mm = 419.5 pt


def test_a5_is_half_a4_and_keeps_a_large_qr_code() -> None:
    png = timed("ti", "png", "a5")
    check_qr(png, "ti", "a5")
    a4, a5 = PAGES["a4"], PAGES["a5"]
    assert (a5.width_mm, a5.height_mm) == (148, 210) and (a4.width_mm, a4.height_mm) == (210, 297)


# ---- glyphs and fonts ---------------------------------------------------------------------------


@functools.cache
def installed_characters(font_name: str) -> frozenset[int]:
    """The characters of the installed font file an embedded font was made from. (The subset
    in the PDF keeps only the glyphs drawn and their cmap entries, and a ToUnicode entry
    names a glyph's first use only: Bengali's ো is drawn as the glyphs of ে and া.)"""
    name = family(font_name)
    style = "Bold" if font_name.endswith("-Bold") else "Regular"
    found = subprocess.run(
        ["fc-match", "-f", "%{family}|%{file}|%{index}", f"{name}:style={style}"],
        capture_output=True,
        text=True,
        check=True,
    )
    families, path, index = found.stdout.split("|")
    assert name in families.split(","), f"{font_name} is not installed ({found.stdout})"
    return frozenset(TTFont(path, fontNumber=int(index), lazy=True).getBestCmap())


def _covered(glyphs: list[Glyph]) -> set[str]:
    """The characters the fonts embedded for `glyphs` have."""
    return {chr(c) for font in {g.font for g in glyphs} for c in installed_characters(font)}


def _needed(text: str) -> set[str]:
    return {c for c in text if not c.isspace() and unicodedata.category(c) != "Cf"}


@pytest.mark.parametrize("language", sorted(EXPECTED_FAMILY))
def test_every_character_is_drawn_with_a_real_glyph_of_the_right_font(language: str) -> None:
    w = words(language)
    glyphs = drawn_glyphs(timed(language, "pdf", "a4"))
    assert glyphs, "no text drawn"
    assert tofu(glyphs) == [], f"missing glyphs: {tofu(glyphs)[:5]}"
    # Every character is one the embedded fonts have (none left to a font not embedded).
    missing = _needed(text_of(w) + link(language)) - _covered(glyphs)
    assert not missing, f"no font has: {' '.join(f'U+{ord(c):04X}' for c in sorted(missing))}"
    script, expected = EXPECTED_FAMILY[language]
    words_glyphs = [g for g in glyphs if family(g.font) != LINK_FAMILY]
    in_script = [
        g for g in words_glyphs if any(unicodedata.name(c, "").startswith(script) for c in g.text)
    ]
    assert in_script, f"no {script} text drawn"
    families = {family(g.font) for g in in_script}
    assert families == {expected}, f"{script} drawn in {families}, not {expected}"
    # The link, in a monospaced font that tells l from 1 and O from 0 for whoever types it.
    assert {family(g.font) for g in glyphs if g.text and g.text in link(language)} >= {LINK_FAMILY}


def _uncovered_character() -> str:
    """A character no installed font has (Nag Mundari, Unicode 15: not in Debian 12's Noto)."""
    found = subprocess.run(["fc-list", ":charset=1e4d0", "family"], capture_output=True, text=True)
    if found.stdout.strip():
        pytest.skip(f"an installed font has U+1E4D0: {found.stdout.strip()}")
    return "\U0001e4d0"


def test_the_glyph_check_finds_tofu_and_the_renderer_refuses_it() -> None:
    odd = _uncovered_character()
    w = replace(words("ti"), what=words("ti").what + " " + odd)
    # Rendered around render_poster's own refusal, straight with WeasyPrint: the checker
    # must find the box that would be printed.
    html = poster_html(w, link("ti"), size="a4")
    pdf = poster.weasyprint().HTML(string=html).write_pdf()
    drawn = drawn_glyphs(pdf)
    found = tofu(drawn)
    assert found and odd in {c for g in found for c in g.text}, found
    assert odd not in _covered(drawn)
    # And render_poster does not write such a poster.
    with pytest.raises(PosterError, match=r"no installed font has U\+1E4D0 .*fonts-noto-core"):
        render_poster(w, link("ti"), fmt="pdf", size="card")


def _is_letter(c: str) -> bool:
    return unicodedata.name(c, "").startswith("ARABIC LETTER")


def _contextual(glyphs: list[Glyph], font_family: str) -> tuple[float, int, int]:
    """Of the distinct glyphs drawn for Arabic letters in `font_family`, the share that are
    no character's own (cmap) glyph: contextual forms and ligatures, which only shaping
    draws; and how many distinct glyphs and letters there were."""
    arabic = [g for g in glyphs if family(g.font) == font_family and any(map(_is_letter, g.text))]
    distinct = {(g.font, g.gid): g for g in arabic}.values()
    letters = {c for g in arabic for c in g.text if _is_letter(c)}
    shaped = [g for g in distinct if not g.nominal]
    return len(shaped) / max(1, len(distinct)), len(distinct), len(letters)


def _unshaped(w: PosterWords) -> PosterWords:
    """The same words with a zero-width non-joiner between every two characters: each
    Arabic letter then stands alone, in its isolated (cmap) form, as unshaped text would."""

    def cut(text: str) -> str:
        return "\u200c".join(text)

    return replace(
        w,
        headline=cut(w.headline),
        what=cut(w.what),
        private=cut(w.private),
        not_police=cut(w.not_police),
        emergency=cut(w.emergency),
        scan=cut(w.scan),
    )


@pytest.mark.parametrize(
    ("language", "font_family"), [("ar", "Noto Naskh Arabic"), ("ur", "Noto Nastaliq Urdu")]
)
def test_arabic_script_is_shaped(language: str, font_family: str) -> None:
    pdf = timed(language, "pdf", "a4")
    share, glyph_count, letters = _contextual(drawn_glyphs(pdf), font_family)
    print(
        f"{language}: {glyph_count} distinct glyphs for {letters} distinct letters, "
        f"{share:.0%} contextual"
    )
    # (Regular and bold are two fonts, so a letter may have two glyphs of each form.)
    assert share >= 0.4, (share, glyph_count, letters)
    if language == "ar":
        # The check tells shaped from unshaped text: the same words, every letter isolated.
        flat = render_poster(_unshaped(words("ar")), link("ar"), fmt="pdf", size="a4")
        flat_share, flat_count, flat_letters = _contextual(drawn_glyphs(flat), font_family)
        print(
            f"ar unshaped: {flat_count} glyphs for {flat_letters} letters, "
            f"{flat_share:.0%} contextual"
        )
        assert flat_share == 0 and flat_count > 0, (flat_share, flat_count)


# ---- lengths ----------------------------------------------------------------------------------


def _at_limits(w: PosterWords) -> PosterWords:
    def longest(text: str, n: int) -> str:
        out = text
        while len(out) < n:
            out += " " + text
        return out[:n].rstrip()

    return replace(w, **{key: longest(getattr(w, key), n) for key, n in POSTER_LIMITS.items()})


@pytest.mark.parametrize("language", ["pl", "ur", "bn"])
def test_the_longest_words_the_limits_allow_fit_every_size(language: str) -> None:
    long_link = f"https://t.me/{'a' * 32}?start=c-{CODE}-{language}"
    w = _at_limits(words(language))
    for size in ("a4", "a5", "card"):
        pdf = render_poster(w, long_link, fmt="pdf", size=size)
        assert len(PdfReader(io.BytesIO(pdf)).pages) == 1


# ---- the command --------------------------------------------------------------------------------

# The example deployment, whose 29 languages all have a catalogue.
EXAMPLE = {"SAFEBOT_CONFIG": str(bundled_deployment_path())}
NAMED = {"SAFEBOT_BOT_USERNAME": USERNAME}


# test_cli_errors.py's one-language deployment, marked fictional (its numbers are Ofcom's
# drama numbers, which only a fictional deployment may use).
ONE_LANGUAGE = DEPLOYMENT.replace("fictional = false", "fictional = true")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "deployment.toml").write_text(ONE_LANGUAGE, encoding="utf-8")
    return tmp_path


@pytest.fixture
def campaign(home: Path) -> str:
    assert safebot(home, "migrate").code == 0
    added = safebot(home, "outreach", "campaign", "add")
    assert added.code == 0, added.err
    return added.out.strip()


def poster_cli(home: Path, code: str, *args: str, **env: str) -> Result:
    return safebot(home, "outreach", "poster", "--campaign", code, *args, **{**NAMED, **env})


def test_a_poster_is_written_where_asked(home: Path, campaign: str) -> None:
    made = poster_cli(home, campaign, "--lang", "ur", "--format", "png", **EXAMPLE)
    assert made.code == 0 and made.err == "", made.err
    path = home / f"poster-{campaign}-ur-a4.png"
    assert made.out == f"wrote {path.name}\n"
    code, _ = decode(path.read_bytes())
    assert code.text == f"https://t.me/{USERNAME}?start=c-{campaign}-ur"
    out = home / "posters"
    out.mkdir()
    made = poster_cli(
        home,
        campaign,
        "--lang",
        "ti",
        "--format",
        "svg",
        "--size",
        "card",
        "--out",
        str(out),
        **EXAMPLE,
    )
    assert made.code == 0 and made.out == f"wrote {out / f'poster-{campaign}-ti-card.svg'}\n"
    named = out / "for-the-clinic.pdf"
    made = poster_cli(
        home, campaign, "--lang", "en", "--format", "pdf", "--size", "a5", "--out", str(named)
    )
    assert made.code == 0 and named.read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in out.iterdir()) == [
        "for-the-clinic.pdf",
        f"poster-{campaign}-ti-card.svg",
    ]


def test_all_languages_write_one_poster_each_without_a_terminal(home: Path, campaign: str) -> None:
    languages = tomllib.loads(bundled_deployment_path().read_text(encoding="utf-8"))["deployment"][
        "languages"
    ]
    out = home / "all"
    out.mkdir()
    started = time.perf_counter()
    made = poster_cli(
        home, campaign, "--all-languages", "--format", "png", "--out", str(out), **EXAMPLE
    )
    took = time.perf_counter() - started
    print(
        f"--all-languages, {len(languages)} PNG posters (a4): {took:.1f} s, "
        f"{took / len(languages):.2f} s each"
    )
    assert made.code == 0, made.err
    assert made.err == ""  # stderr is a pipe: no progress bar, nothing broken
    names = [f"poster-{campaign}-{lang}-a4.png" for lang in languages]
    assert made.out.splitlines() == [f"wrote {out / name}" for name in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary file left
    for lang in ("pl", "zh_Hant", "fa_AF", "ckb"):
        code, _ = decode((out / f"poster-{campaign}-{lang}-a4.png").read_bytes())
        assert code.text == f"https://t.me/{USERNAME}?start=c-{campaign}-{lang}"


def _on_a_terminal(home: Path, *args: str, **extra: str) -> tuple[int, str]:
    """The command with stdout and stderr on a pseudo-terminal: its exit code and output."""
    from tests.integration.test_cli_errors import environment

    leader, follower = pty.openpty()
    # A terminal 100 columns wide (a new pseudo-terminal has no size, and tqdm draws no bar
    # on a terminal 0 columns wide).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        env=environment(home, **extra),
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_all_languages_show_a_progress_bar_on_a_terminal(home: Path, campaign: str) -> None:
    out = home / "pdf"
    out.mkdir()
    started = time.perf_counter()
    code, shown = _on_a_terminal(
        home,
        "outreach",
        "poster",
        "--campaign",
        campaign,
        "--all-languages",
        "--format",
        "pdf",
        "--size",
        "card",
        "--out",
        str(out),
        **EXAMPLE,
        **NAMED,
    )
    took = time.perf_counter() - started
    assert code == 0 and "Traceback" not in shown, shown
    print(f"--all-languages, 29 PDF posters (card), on a terminal: {took:.1f} s")
    assert re.search(r"posters: +\d+%", shown), shown[:300]
    assert len(list(out.iterdir())) == 29 and shown.count("wrote ") == 29


# ---- refusals -----------------------------------------------------------------------------------


def refused(result: Result, *words: str) -> str:
    assert result.code == 1, (result.code, result.err)
    return fails_in_one_line(result, *words)


def test_poster_refusals(home: Path, campaign: str) -> None:
    base = ["--lang", "en", "--format", "pdf"]
    refused(
        safebot(home, "outreach", "poster", "--campaign", campaign, *base), "SAFEBOT_BOT_USERNAME"
    )
    refused(poster_cli(home, "Zz9Zz9Zz", *base), "no campaign 'Zz9Zz9Zz'")
    refused(poster_cli(home, "not a code", *base), "no campaign")
    refused(
        poster_cli(home, campaign, "--lang", "pl", "--format", "pdf"),
        "'pl' is not an enabled language",
    )
    refused(
        poster_cli(home, campaign, *base, "--out", str(home / "nowhere" / "p.pdf")),
        "folder",
        "does not exist",
    )
    refused(
        poster_cli(
            home, campaign, "--all-languages", "--format", "pdf", "--out", str(home / "nowhere")
        ),
        "does not exist",
    )
    refused(poster_cli(home, campaign, *base, "--out", str(home / "p.png")), "does not end in .pdf")
    (home / "a-file").write_text("x")
    refused(
        poster_cli(
            home, campaign, "--all-languages", "--format", "pdf", "--out", str(home / "a-file")
        ),
        "is not a folder",
    )
    # A folder that cannot be written (sysfs refuses new files even to root).
    refused(poster_cli(home, campaign, *base, "--out", "/sys/poster.pdf"), "cannot write in /sys")
    assert not list(home.glob("*.pdf"))
    assert safebot(home, "outreach", "campaign", "retire", campaign).code == 0
    refused(poster_cli(home, campaign, *base), "is retired")


def test_missing_system_parts_are_named(
    home: Path, campaign: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # No pdftocairo on the PATH (python is started by its full path).
    empty = tmp_path_factory.mktemp("bin")
    result = poster_cli(home, campaign, "--lang", "en", "--format", "png", PATH=str(empty))
    refused(result, "pdftocairo not found", "poppler-utils")
    # WeasyPrint whose Pango cannot be loaded: cffi raises OSError at import, as this does.
    fake = tmp_path_factory.mktemp("fake")
    (fake / "weasyprint").mkdir()
    (fake / "weasyprint" / "__init__.py").write_text(
        "raise OSError(\"cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open "
        'shared object file: No such file or directory")\n'
    )
    result = poster_cli(home, campaign, "--lang", "en", "--format", "pdf", PYTHONPATH=str(fake))
    line = refused(result, "Pango", "libpango-1.0-0 libpangoft2-1.0-0")
    assert "apt-get" in line or "./dev" in line
    assert not list(home.glob("poster-*"))


POSTER_DEPLOYMENT = (
    ONE_LANGUAGE.replace('languages = ["en"]', 'languages = ["en", "pl"]')
    .replace(
        'description = "Independent advice."',
        'description = { en = "Independent advice.", pl = "Niezależne porady." }',
    )
    .replace(
        'keeps = "Notes of the contact, for 6 years."',
        'keeps = { en = "Notes of the contact, for 6 years.", '
        'pl = "Notatki z kontaktu, przez 6 lat." }',
    )
    + """
[policy.translations.pl]
commitment = "Nie przekażemy danych ofiary tylko dlatego, że mamy wątpliwości co do jej statusu."
exception = "Nie dotyczy to sytuacji, w której są dowody przestępstwa imigracyjnego."
"""
)


@pytest.fixture
def untranslated(
    home: Path, campaign: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The command in this process, with catalogues where Polish lacks a poster word."""
    import flows.deployment_schema
    import flows.i18n

    locales = _catalogue_without(tmp_path, "pl", blank="headline")
    monkeypatch.setattr(flows.i18n, "bundled_locales_dir", lambda: locales)
    monkeypatch.setattr(flows.deployment_schema, "bundled_locales_dir", lambda: locales)
    (home / "deployment.toml").write_text(POSTER_DEPLOYMENT, encoding="utf-8")
    for key in [k for k in os.environ if k.startswith(("SAFEBOT_", "TELEGRAM_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SAFEBOT_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("SAFEBOT_CONFIG", str(home / "deployment.toml"))
    monkeypatch.setenv("SAFEBOT_BOT_USERNAME", USERNAME)
    monkeypatch.setenv("SAFEBOT_LOG_LEVEL", "WARNING")
    monkeypatch.chdir(home)
    yield home


def test_an_untranslated_language_is_refused_by_the_command(
    untranslated: Path, campaign: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    code = main(["outreach", "poster", "--campaign", campaign, "--lang", "pl", "--format", "pdf"])
    out, err = capsys.readouterr()
    assert code == 1 and out == "", (out, err)
    assert err.count("\n") == 1 and err.startswith(
        "safebot: the poster is not translated into 'pl'"
    )
    assert "headline missing" in err and not list(untranslated.glob("poster-*"))

    # All languages: the translated ones are written, the others named in one line.
    code = main(
        ["outreach", "poster", "--campaign", campaign, "--all-languages", "--format", "pdf"]
    )
    out, err = capsys.readouterr()
    assert code == 1 and out == f"wrote poster-{campaign}-en-a4.pdf\n", out
    assert err.count("\n") == 1 and err.startswith("safebot: no poster in pl:"), err
    assert [p.name for p in untranslated.glob("poster-*")] == [f"poster-{campaign}-en-a4.pdf"]
