"""Outreach posters: a campaign's Telegram link as a large QR code, with the poster words in
one language (`safebot outreach poster`; the portal calls the same two functions).

    poster_words(flow, catalogs, language) -> PosterWords   the words, looked up like any string
    render_poster(words, link, fmt=..., size=...) -> bytes  a PDF, PNG or SVG

The words are the flow's `[poster]` table (flows/content/victim.toml, at most
`flows.definition.POSTER_LIMITS` characters each), translated in the same catalogues as every
other string the bot shows. A language whose catalogue lacks any of them is refused
(PosterError): a poster never shows English as if it were another language.

Layout is bot/templates/poster.html (Jinja2, autoescaped: every translated word is escaped),
filled in by `poster_html`, which does no I/O. Rendering:

- WeasyPrint lays the page out and writes the PDF. It shapes text with Pango and HarfBuzz, so
  Arabic letters join, Urdu is set in Nastaliq, Indic conjuncts form and Ethiopic and Chinese
  show, in the Noto family picked for the language's script (`font_families`).
- PNG and SVG are that PDF converted by poppler's `pdftocairo` (Debian's poppler-utils), not
  pypdfium2: SVG needs pdftocairo anyway (pypdfium2 writes no SVG), so one converter, one
  system package and one rasteriser make all three formats show the same page, with no
  second PDF engine shipped in a wheel. Its SVG draws every glyph as a path, so it needs no
  fonts where it is opened.

A poster is seen in public: plain, calm and neutral (dark text on white, one quiet colour,
no imagery). The QR code keeps its quiet zone of 4 modules and error correction M or higher
(segno raises it where that costs no extra size) and is about half the page's width.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import jinja2
import segno
from babel import Locale, UnknownLocaleError
from babel.core import get_global
from markupsafe import Markup

from flows.definition import POSTER_LIMITS, Flow
from flows.i18n import Catalogs, is_rtl

Size = Literal["a4", "a5", "card"]
Format = Literal["pdf", "png", "svg"]
SIZES: tuple[Size, ...] = ("a4", "a5", "card")
FORMATS: tuple[Format, ...] = ("pdf", "png", "svg")


@dataclass(frozen=True)
class Page:
    width_mm: float
    height_mm: float
    margin_mm: float
    qr_mm: float  # the QR symbol, quiet zone not counted: over 40 % of an a4 or a5 page
    font_pt: float  # the body text at scale 1; the headline is about twice that
    png_dpi: int  # PNG pixels: 874-1240 wide, enough for a screen, a message or a document

    @property
    def text_mm(self) -> float:
        return self.width_mm - 2 * self.margin_mm


PAGES: Mapping[Size, Page] = {
    "a4": Page(210, 297, 16, 90, 15, 150),
    "a5": Page(148, 210, 11, 64, 10.5, 200),
    # The card is A7 (74 x 105 mm), not a business card (85 x 55 mm): it is a handout small
    # enough for a pocket or a purse, yet has room for every word at their POSTER_LIMITS
    # (770 characters and the link, about 1.7 times a business card's area) in readable
    # type; it keeps the posters' portrait layout; and A7 is an eighth of A4, so an office
    # printer makes eight to a sheet with straight cuts. PNG at 300 dpi: 874 x 1240 pixels.
    "card": Page(74, 105, 5, 28, 6.7, 300),
}

# The type is scaled to the largest size (within 2 %) at which the words fit on one page:
# short words fill the page, long translations and Nastaliq's tall lines get smaller type.
# The QR code never shrinks.
SCALES = (0.62, 1.24)  # the smallest and the largest type, against Page.font_pt
FIT_STEPS = 5  # halvings of that range: (1.24 - 0.62) / 2**5 is about 0.02
QR_BORDER = 4  # modules of quiet zone around the code, as ISO/IEC 18004 asks
QR_ERROR = "m"  # at least M (15 % of the code can be lost); segno boosts it where it is free
LINK_EM = 1.05  # the link's type, against the body text's
MONO_ADVANCE = 0.602  # DejaVu Sans Mono's advance width, in em: how wide the link is set
PT_MM = 25.4 / 72
CONVERT_TIMEOUT = 60  # seconds for pdftocairo

# Font families by script (ISO 15924, from CLDR's likely subtags): Debian's fonts-noto-core,
# and fonts-noto-cjk for Chinese. Naskh is the usual print style for Arabic, Persian, Dari,
# Pashto and Sorani; Urdu is read in Nastaliq (LANGUAGE_FONTS).
SCRIPT_FONTS: Mapping[str, tuple[str, ...]] = {
    "Arab": ("Noto Naskh Arabic", "Noto Sans Arabic"),
    "Armn": ("Noto Sans Armenian",),
    "Beng": ("Noto Sans Bengali",),
    "Deva": ("Noto Sans Devanagari",),
    "Ethi": ("Noto Sans Ethiopic",),
    "Geor": ("Noto Sans Georgian",),
    "Gujr": ("Noto Sans Gujarati",),
    "Guru": ("Noto Sans Gurmukhi",),
    "Hans": ("Noto Sans CJK SC",),
    "Hant": ("Noto Sans CJK TC",),
    "Hebr": ("Noto Sans Hebrew",),
    "Khmr": ("Noto Sans Khmer",),
    "Knda": ("Noto Sans Kannada",),
    "Mlym": ("Noto Sans Malayalam",),
    "Mymr": ("Noto Sans Myanmar",),
    "Sinh": ("Noto Sans Sinhala",),
    "Taml": ("Noto Sans Tamil",),
    "Telu": ("Noto Sans Telugu",),
    "Thai": ("Noto Sans Thai",),
}
LANGUAGE_FONTS: Mapping[str, tuple[str, ...]] = {
    "ur": ("Noto Nastaliq Urdu", "Noto Naskh Arabic"),
}
BASE_FONTS = ("Noto Sans", "DejaVu Sans")  # Latin, Cyrillic, Greek, Vietnamese; the digits
LINE_HEIGHTS: Mapping[str, float] = {
    "Arab": 1.6,
    "Beng": 1.5,
    "Deva": 1.5,
    "Ethi": 1.45,
    "Gujr": 1.5,
    "Guru": 1.5,
    "Hans": 1.5,
    "Hant": 1.5,
}
NASTALIQ_LINE_HEIGHT = 2.1  # its letters climb and fall far above and below the line
LINE_HEIGHT = 1.32

# What to install when a system part is missing (bot/outreach.py and the portal say it).
PANGO_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0"
FONT_PACKAGES = "fonts-noto-core fonts-noto-cjk"
_NOTDEF = ".notdef glyph rendered"  # WeasyPrint's warning when no font has a character
MISSING_SHOWN = 6  # characters named in that refusal


@dataclass(frozen=True)
class PosterWords:
    language: str
    rtl: bool
    headline: str
    what: str
    private: str
    not_police: str
    emergency: str
    scan: str


class PosterError(Exception):
    """Why no poster was made, in one line for the person who asked for it."""


# ---- the words -------------------------------------------------------------------------------


def poster_words(flow: Flow, catalogs: Catalogs, language: str) -> PosterWords:
    """The poster's words in `language`, from the catalogues (the source language: the
    msgids). PosterError if the flow has no poster or any word is untranslated."""
    if set(flow.poster) != set(POSTER_LIMITS):
        raise PosterError(
            "the flow has no complete [poster] table (flows/content/victim.toml): "
            + ", ".join(POSTER_LIMITS)
        )
    catalogue = f"locales/{language}/LC_MESSAGES/messages.po"
    if language != catalogs.source_language and language not in catalogs.translations:
        raise PosterError(f"no catalogue for {language!r} ({catalogue}): no poster in it")
    missing = set(catalogs.missing(language, flow.poster.values()))
    untranslated = [key for key, msgid in flow.poster.items() if msgid in missing]
    if untranslated:
        raise PosterError(
            f"the poster is not translated into {language!r} yet "
            f"({', '.join(untranslated)} missing in {catalogue}): no poster in that language"
        )
    tr = catalogs.get(language)
    said = {key: " ".join(tr.gettext(msgid).split()) for key, msgid in flow.poster.items()}
    return PosterWords(
        language=language,
        rtl=is_rtl(language),
        headline=said["headline"],
        what=said["what"],
        private=said["private"],
        not_police=said["not_police"],
        emergency=said["emergency"],
        scan=said["scan"],
    )


# ---- the layout (pure) ---------------------------------------------------------------------------


@lru_cache(maxsize=256)
def script(language: str) -> str | None:
    """The language's script (ISO 15924: "Arab", "Ethi", "Hant"), from its code or CLDR's
    likely subtags; None if CLDR does not know the language."""
    try:
        loc = Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return None
    if loc.script:
        return str(loc.script)
    likely = get_global("likely_subtags").get(loc.language, "")
    parts = str(likely).split("_")
    return parts[1] if len(parts) > 1 and len(parts[1]) == 4 else None


def font_families(language: str) -> tuple[str, ...]:
    """The CSS font families for `language`, first choice first."""
    own = LANGUAGE_FONTS.get(language) or SCRIPT_FONTS.get(script(language) or "", ())
    return tuple(dict.fromkeys([*own, *BASE_FONTS]))


def line_height(language: str) -> float:
    if "Noto Nastaliq Urdu" in font_families(language):
        return NASTALIQ_LINE_HEIGHT
    return LINE_HEIGHTS.get(script(language) or "", LINE_HEIGHT)


def html_language(language: str) -> str:
    """A deployment code as a BCP 47 tag for `lang` ("zh_Hant" -> "zh-Hant")."""
    return language.replace("_", "-")


@dataclass(frozen=True)
class QrCode:
    data_uri: str  # SVG, black on white, with its quiet zone
    modules: int  # the symbol's width in modules, without the quiet zone
    error: str  # segno's error correction level: "M", "Q" or "H"

    def width_mm(self, symbol_mm: float) -> float:
        """The image's width (quiet zone included) for a symbol `symbol_mm` wide."""
        return round(symbol_mm * (self.modules + 2 * QR_BORDER) / self.modules, 2)


@lru_cache(maxsize=64)
def qr_code(link: str) -> QrCode:
    """The link's QR code (the same for every try at fitting the words)."""
    code = segno.make(link, error=QR_ERROR, micro=False)
    uri = code.svg_data_uri(border=QR_BORDER, dark="#000000", light="#ffffff")
    return QrCode(str(uri), int(code.symbol_size(border=0)[0]), str(code.error))


def link_lines(link: str, text_mm: float, pt: float) -> tuple[tuple[str, ...], float]:
    """The link as it is printed: on one line if it fits at `pt`, else broken after its "?"
    (never at a hyphen of the payload, which would look like part of it), with the type made
    smaller where even a part would not fit; and that type's size in points."""

    def fits(text: str, size: float) -> bool:
        return len(text) * MONO_ADVANCE * size * PT_MM <= text_mm

    if fits(link, pt) or "?" not in link:
        lines: tuple[str, ...] = (link,)
    else:
        head, _, tail = link.partition("?")
        lines = (head + "?", tail)
    longest = max(lines, key=len)
    if not fits(longest, pt):
        pt = text_mm / (len(longest) * MONO_ADVANCE * PT_MM) * 0.98
    return lines, round(pt, 2)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("poster.html")


def _css_family(name: str) -> str:
    return '"' + name.replace("\\", "").replace('"', "") + '"'


def poster_html(words: PosterWords, link: str, *, size: Size, scale: float = 1.0) -> str:
    """The poster as HTML for WeasyPrint; `scale` sizes the type (never the QR code)."""
    page = PAGES[size]
    height = line_height(words.language)
    font_pt = round(page.font_pt * scale, 2)
    qr = qr_code(link)
    lines, link_pt = link_lines(link, page.text_mm, font_pt * LINK_EM)
    return _template().render(
        words=words,
        link_lines=lines,
        link_pt=link_pt,
        qr=qr.data_uri,
        qr_mm=qr.width_mm(page.qr_mm),
        page=page,
        lang=html_language(words.language),
        rtl=words.rtl,
        start="right" if words.rtl else "left",
        # Our own family names, quoted for CSS: marked safe, or autoescape would turn the
        # quotes into entities, which a <style> element does not decode.
        fonts=Markup(", ".join([*map(_css_family, font_families(words.language)), "sans-serif"])),
        font_pt=font_pt,
        line_height=height,
        headline_line_height=round(max(1.1, height - 0.2), 2),
    )


# ---- rendering -------------------------------------------------------------------------------


def render_poster(words: PosterWords, link: str, *, fmt: Format, size: Size) -> bytes:
    """The poster as a PDF, PNG or SVG file's bytes. CPU-bound and synchronous (async callers
    use asyncio.to_thread). PosterError if a system part is missing or no font has one of
    its characters."""
    if fmt not in FORMATS:
        raise PosterError(f"no poster format {fmt!r} (one of {', '.join(FORMATS)})")
    if size not in PAGES:
        raise PosterError(f"no poster size {size!r} (one of {', '.join(PAGES)})")
    converter = None if fmt == "pdf" else pdftocairo()
    pdf = _pdf(words, link, size)
    if converter is None:
        return pdf
    if fmt == "png":
        return _convert(converter, pdf, "-png", "-singlefile", "-r", str(PAGES[size].png_dpi))
    return _convert(converter, pdf, "-svg")


def pdftocairo() -> str:
    """pdftocairo's path; PosterError if it is not installed."""
    found = shutil.which("pdftocairo")
    if found is None:
        raise PosterError(
            "pdftocairo not found: PNG and SVG posters need Debian's poppler-utils "
            "(apt-get install poppler-utils; ./dev setup installs it)"
        )
    return found


def weasyprint() -> Any:
    """WeasyPrint, imported; PosterError if it or the Pango libraries it loads are missing."""
    try:
        import weasyprint
    except OSError as exc:  # cffi could not load Pango (or HarfBuzz's subsetter)
        raise PosterError(
            f"WeasyPrint cannot load its Pango libraries ({' '.join(str(exc).split())[:120]}): "
            f"install Debian's {PANGO_PACKAGES} (./dev setup installs them)"
        ) from None
    except ImportError:
        raise PosterError(
            "WeasyPrint is not installed: pip install -e . (it is one of safebot's dependencies)"
        ) from None
    return weasyprint


def _pdf(words: PosterWords, link: str, size: Size) -> bytes:
    wp = weasyprint()
    # Only data: URIs (the QR code): a poster fetches nothing, from the network or the disk.
    fetcher = wp.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)

    def layout(scale: float) -> Any:
        html = poster_html(words, link, size=size, scale=scale)
        document = wp.HTML(string=html, url_fetcher=fetcher).render()
        return document if len(document.pages) == 1 else None

    smallest, largest = SCALES
    with _missing_glyphs() as missing:
        best = layout(largest)
        low, high = smallest, largest
        for _ in range(FIT_STEPS if best is None else 0):
            middle = (low + high) / 2
            fitted = layout(middle)
            if fitted is None:
                high = middle
            else:
                low, best = middle, fitted
        best = best or layout(smallest)
        if best is None:
            raise PosterError(
                f"the {words.language!r} poster's words do not fit on one {size} page, even "
                "in the smallest type: shorten them in the catalogue"
            )
        pdf = bytes(best.write_pdf())
    if missing:
        shown = sorted(missing, key=lambda u: int(u[2:], 16) if u.startswith("U+") else 0)
        more = f" and {len(shown) - MISSING_SHOWN} more" if len(shown) > MISSING_SHOWN else ""
        raise PosterError(
            f"no installed font has {' '.join(shown[:MISSING_SHOWN])}{more} (the "
            f"{words.language!r} poster): install Debian's {FONT_PACKAGES} (./dev setup "
            "installs them)"
        )
    return pdf


class _NotdefHandler(logging.Handler):
    """Collects the characters WeasyPrint drew as .notdef (the "tofu" box) in this thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.found: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or _NOTDEF not in str(record.msg):
            return
        args = record.args if isinstance(record.args, tuple) else ()
        codepoint = next((a for a in args if isinstance(a, int)), None)
        self.found.add(f"U+{codepoint:04X}" if codepoint is not None else "a character")


@contextmanager
def _missing_glyphs() -> Iterator[set[str]]:
    logger = logging.getLogger("weasyprint")
    handler = _NotdefHandler()
    logger.addHandler(handler)
    try:
        yield handler.found
    finally:
        logger.removeHandler(handler)


def _convert(converter: str, pdf: bytes, *options: str) -> bytes:
    """The PDF through pdftocairo, from stdin to stdout."""
    try:
        done = subprocess.run(
            [converter, *options, "-", "-"],
            input=pdf,
            capture_output=True,
            timeout=CONVERT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PosterError(f"pdftocairo failed: {type(exc).__name__}: {exc}") from None
    if done.returncode != 0 or not done.stdout:
        why = " ".join(done.stderr.decode("utf-8", "replace").split())[:200] or "no output"
        raise PosterError(f"pdftocairo failed (exit {done.returncode}): {why}")
    return done.stdout
