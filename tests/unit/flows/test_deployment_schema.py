"""The deployment schema: every kind of mistake is refused with its path and a plain message,
all of them at once, and the bundled example passes."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from collections.abc import Callable
from typing import Any

import pytest

from bot.config import bundled_deployment_path
from flows.deployment import Deployment, parse_deployment
from flows.deployment_schema import catalogue_languages, phone_problem
from flows.errors import FlowError

# The example's enabled languages, as the refusals list them.
EXAMPLE_LANGUAGES = tomllib.loads(bundled_deployment_path().read_text(encoding="utf-8"))[
    "deployment"
]["languages"]
ENABLED = ", ".join(EXAMPLE_LANGUAGES)

Data = dict[str, Any]
EXAMPLE: Data = tomllib.loads(bundled_deployment_path().read_text(encoding="utf-8"))


def problems(change: Callable[[Data], object], base: Data = EXAMPLE) -> list[str]:
    data = copy.deepcopy(base)
    change(data)
    with pytest.raises(FlowError) as caught:
        parse_deployment(data)
    return caught.value.problems


def one_language() -> Data:
    """The example reduced to English only, with plain strings for its texts."""
    data = copy.deepcopy(EXAMPLE)
    data["deployment"]["languages"] = ["en"]
    del data["policy"]["translations"]
    for item in [*data["helplines"], *data["organisations"]]:
        for key in ("hours", "description", "keeps", "about"):
            if key in item:
                item[key] = item[key]["en"]
    del data["routing"]["by_language"]
    return data


def test_the_bundled_example_passes() -> None:
    deployment = parse_deployment(EXAMPLE)
    assert isinstance(deployment, Deployment)
    assert deployment.fictional and deployment.languages[:3] == ("en", "pl", "ar")
    assert set(deployment.policy.translations) == set(deployment.languages) - {"en"}
    assert deployment.routing_by_language == {"pl": "polska-pomoc"}
    mal = next(h for h in deployment.helplines if h.id == "mal")
    assert set(mal.hours) == set(deployment.languages) and not mal.always_open
    hub = deployment.organisation("eastshire-hub")
    assert hub.contact_within_days == 2 and set(hub.keeps) == set(deployment.languages)
    assert deployment.policy.checked == "2026-11-15"


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    found = problems(lambda d: d["helplines"][2].update(hours_open="9-5"))
    assert found == ["helplines[2].hours_open: unknown key; did you mean 'hours'?"]


def test_unknown_key_without_a_close_match_lists_the_allowed_ones() -> None:
    found = problems(lambda d: d["retention"].update(forever=True))
    assert found == ["retention.forever: unknown key; allowed here: days, closed_days"]


def test_unknown_table_is_refused_with_a_suggestion() -> None:
    assert problems(lambda d: d.update(helpline=[{}])) == [
        "helpline: unknown table; did you mean 'helplines'?"
    ]
    assert problems(lambda d: d["policy"].update(translation={})) == [
        "policy.translation: unknown key; did you mean 'translations'?"
    ]


def test_unknown_key_in_a_translation() -> None:
    found = problems(lambda d: d["policy"]["translations"]["pl"].update(comitment="x"))
    assert found == ["policy.translations.pl.comitment: unknown key; did you mean 'commitment'?"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["helplines"][0].pop("free"), "helplines[0].free is required but missing"),
        (
            lambda d: d["helplines"][1].pop("always_open"),
            "helplines[1].always_open is required but missing",
        ),
        (
            lambda d: d["helplines"][3].pop("checked"),
            "helplines[3].checked is required but missing",
        ),
        (lambda d: d["policy"].pop("checked"), "policy.checked is required but missing"),
        (
            lambda d: d["deployment"].pop("fictional"),
            "deployment.fictional is required but missing",
        ),
        (
            lambda d: d["organisations"][1].pop("receives_requests"),
            "organisations[1].receives_requests is required but missing",
        ),
        (lambda d: d.pop("retention"), "[retention] is required but missing"),
    ],
)
def test_missing_required_field(change: Callable[[Data], object], expected: str) -> None:
    assert problems(change) == [expected]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["helplines"][0].update(free="yes"),
            "helplines[0].free must be true or false, got 'yes'",
        ),
        (
            lambda d: d["retention"].update(days="30"),
            "retention.days must be a whole number, got '30'",
        ),
        (
            lambda d: d["retention"].update(days=True),
            "retention.days must be a whole number, got True",
        ),
        (
            lambda d: d["deployment"].update(name=5),
            "deployment.name must be text (in quotes), got 5",
        ),
        (
            lambda d: d["organisations"][0].update(languages="en"),
            "organisations[0].languages must be a list [...], got 'en'",
        ),
        (
            lambda d: d["helplines"][1].update(hours=5),
            'helplines[1].hours must be a table of texts by language (en = "...", ...), got 5',
        ),
        (
            lambda d: d["retention"].update(days=0, closed_days=0),
            "retention.days must be over 0, got 0",
        ),
        (
            lambda d: d["organisations"][0].update(contact_within_days=31),
            "organisations[0].contact_within_days must be at most 30, got 31",
        ),
    ],
)
def test_wrong_type(change: Callable[[Data], object], expected: str) -> None:
    assert expected in problems(change)


@pytest.mark.parametrize("bad", ["2026-13-01", "1 Nov 2026", "20261101", 20261101])
def test_bad_date(bad: object) -> None:
    assert problems(lambda d: d["policy"].update(reviewed=bad)) == [
        f"policy.reviewed must be a date (YYYY-MM-DD), got {bad!r}"
    ]


def test_dates_may_be_toml_dates_or_quoted() -> None:
    data = copy.deepcopy(EXAMPLE)
    data["helplines"][0]["checked"] = dt.date(2026, 10, 1)
    assert parse_deployment(data).helplines[0].checked == "2026-10-01"
    found = problems(lambda d: d["helplines"][0].update(checked=dt.datetime(2026, 10, 1, 9)))
    assert found == [
        "helplines[0].checked must be a date (YYYY-MM-DD), got datetime.datetime(2026, 10, 1, 9, 0)"
    ]


@pytest.mark.parametrize("number", ["0808 123", "12345", "not a number", "01632 960000"])
def test_bad_helpline_number(number: str) -> None:
    found = problems(lambda d: d["helplines"][1].update(number=number))
    assert len(found) == 1 and found[0].startswith(f"helplines[1].number {number!r} ")


def test_helpline_numbers_may_be_short_numbers() -> None:
    for number in ("999", "101", "111", "116 123"):
        assert phone_problem(number, drama_ok=False) is None, number
    assert phone_problem("0808 2000 247", drama_ok=False) is None
    assert phone_problem("0123", drama_ok=True) == "is not a valid UK number or short number"


def test_drama_numbers_only_in_a_fictional_deployment() -> None:
    found = problems(lambda d: d["deployment"].update(fictional=False))
    drama = "is in Ofcom's drama range: only for fictional = true"
    assert found == [
        f"organisations[0].phone '01632 960000' {drama}",
        f"organisations[1].phone '01632 960001' {drama}",
    ]
    # A helpline is never fictional: someone in danger may call it.
    found = problems(lambda d: d["helplines"][0].update(number="01632 960000"))
    assert found == [
        "helplines[0].number '01632 960000' is in Ofcom's drama range: only for fictional = true"
    ]


@pytest.mark.parametrize("number", ["020 7946 0000", "0113 496 0999", "0161 496 0123"])
def test_drama_numbers_that_phonenumbers_calls_valid_are_refused_too(number: str) -> None:
    # phonenumbers says these London and Leeds drama numbers are valid: they are never
    # connected, so a real deployment must not show them.
    found = problems(lambda d: d["helplines"][0].update(number=number))
    assert found == [
        f"helplines[0].number {number!r} is in Ofcom's drama range: only for fictional = true"
    ]


@pytest.mark.parametrize("url", ["http://galop.org.uk", "galop.org.uk", "https://", "https://a b"])
def test_bad_website(url: str) -> None:
    assert problems(lambda d: d["helplines"][2].update(website=url)) == [
        f"helplines[2].website must be an https:// address, got {url!r}"
    ]
    assert problems(lambda d: d["organisations"][0].update(website=url)) == [
        f"organisations[0].website must be an https:// address, got {url!r}"
    ]


def test_missing_translation_for_an_enabled_language() -> None:
    assert problems(lambda d: d["organisations"][0]["keeps"].pop("ar")) == [
        "organisations[0].keeps has no 'ar' text"
    ]
    # who a helpline is for, too: never English on a screen in another language
    assert problems(lambda d: d["helplines"][1]["about"].pop("ar")) == [
        "helplines[1].about has no 'ar' text"
    ]
    assert problems(lambda d: d["helplines"][1]["hours"].pop("pl")) == [
        "helplines[1].hours has no 'pl' text"
    ]
    assert problems(lambda d: d["policy"]["translations"].pop("ar")) == [
        "policy.translations has no 'ar' translation: every enabled language other than "
        "policy.language ('en') needs [policy.translations.ar] with the commitment and the "
        "exception"
    ]


def test_translation_for_a_language_not_enabled() -> None:
    german = {"commitment": "Zusage.", "exception": "Ausnahme."}  # German: never shipped
    assert problems(lambda d: d["policy"]["translations"].update(de=german)) == [
        f"policy.translations.de: 'de' is not an enabled language ({ENABLED}); enable it or "
        "remove the translation"
    ]
    assert problems(lambda d: d["organisations"][1]["description"].update(de="Hilfe.")) == [
        f"organisations[1].description.de: 'de' is not an enabled language ({ENABLED})"
    ]


def test_a_language_without_a_catalogue_is_refused() -> None:
    found = problems(lambda d: d["deployment"]["languages"].append("de"))
    assert found[0] == (
        "deployment.languages: 'de' has no catalogue (locales/de/LC_MESSAGES/messages.po)"
    )
    assert "organisations[0].keeps has no 'de' text" in found  # and everything else it needs
    assert "de" not in catalogue_languages() and "en" in catalogue_languages()


def test_languages_must_be_unique_and_include_the_default() -> None:
    assert "deployment.languages lists 'pl' twice" in problems(
        lambda d: d["deployment"]["languages"].append("pl")
    )
    assert problems(lambda d: d["deployment"].update(default_language="de")) == [
        f"deployment.default_language 'de' is not in deployment.languages ({ENABLED})"
    ]
    assert "deployment.languages must not be empty" in problems(
        lambda d: d["deployment"].update(languages=[])
    )


def test_plain_string_in_a_multi_language_deployment() -> None:
    found = problems(lambda d: d["organisations"][0].update(keeps="Notes for 6 years."))
    assert found == [
        f"organisations[0].keeps is one plain text, but the deployment has "
        f"{len(EXAMPLE_LANGUAGES)} languages: give a table with one text each ({ENABLED})"
    ]


def test_plain_strings_in_a_one_language_deployment() -> None:
    deployment = parse_deployment(one_language())
    assert deployment.languages == ("en",)
    hub = deployment.organisation("eastshire-hub")
    assert hub.keeps == {"en": EXAMPLE["organisations"][0]["keeps"]["en"]}


def test_routing_to_an_organisation_that_does_not_receive_requests() -> None:
    def change(d: Data) -> None:
        polska = d["organisations"][1]
        polska["receives_requests"] = False
        del polska["keeps"], polska["contact_within_days"]

    assert problems(change) == [
        "routing.by_language.pl 'polska-pomoc' does not receive requests "
        "(receives_requests = false)"
    ]
    assert problems(lambda d: d["routing"].update(default="eastshire")) == [
        "routing.default 'eastshire' is not an organisation; did you mean 'eastshire-hub'?"
    ]
    assert problems(lambda d: d["routing"]["by_language"].update(de="eastshire-hub")) == [
        f"routing.by_language.de: 'de' is not an enabled language ({ENABLED})"
    ]


def test_receiving_organisations_say_how_soon_and_what_they_keep() -> None:
    def change(d: Data) -> None:
        del d["organisations"][0]["keeps"], d["organisations"][0]["contact_within_days"]

    assert problems(change) == [
        "organisations[0].contact_within_days is required for an organisation that receives "
        "requests",
        "organisations[0].keeps is required for an organisation that receives requests",
    ]


def test_hours_unless_always_open() -> None:
    assert problems(lambda d: d["helplines"][1].pop("hours")) == [
        "helplines[1].hours is required when always_open = false"
    ]


def test_at_least_one_urgent_helpline() -> None:
    assert problems(lambda d: d["helplines"][0].update(urgent=False)) == [
        'helplines: none has urgent = true; at least one must show under "I need help now"'
    ]


def test_ids_are_unique_and_safe() -> None:
    assert problems(lambda d: d["helplines"][1].update(id="ndah")) == [
        "helplines[1].id 'ndah' is used twice"
    ]
    assert "organisations[0].id 'east hub': use up to 40 letters, digits, - or _" in problems(
        lambda d: d["organisations"][0].update(id="east hub")
    )


def test_retention_closed_days_within_days() -> None:
    assert problems(lambda d: d["retention"].update(closed_days=31)) == [
        "retention.closed_days (31) must not be over retention.days (30)"
    ]


def test_every_problem_is_reported_at_once_one_line_each() -> None:
    def change(d: Data) -> None:
        d["helplines"][2]["hours_open"] = "9-5"
        d["helplines"][0]["number"] = "0808 123"
        del d["policy"]["checked"]
        d["organisations"][0]["keeps"].pop("ar")
        d["retention"]["days"] = "30"

    found = problems(change)
    assert found == [
        "policy.checked is required but missing",
        "retention.days must be a whole number, got '30'",
        "helplines[2].hours_open: unknown key; did you mean 'hours'?",
        "helplines[0].number '0808 123' is not a valid UK number or short number",
        "organisations[0].keeps has no 'ar' text",
    ]
    assert all("\n" not in p for p in found)
