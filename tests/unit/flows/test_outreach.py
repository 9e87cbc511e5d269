"""Outreach deep links (flows/outreach.py) and what a start from one does in the engine."""

from __future__ import annotations

import datetime as dt
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows import outreach
from flows.effects import OpenCampaign
from flows.engine import initial_state, step
from flows.events import CampaignChecked, RequestStored, Started
from flows.state import ConversationState
from tests.unit.flows.conftest import make_context

CTX = make_context()
CODE = "Ab3dE6gH"
TELEGRAM = re.compile(r"[A-Za-z0-9_-]{1,64}")

codes = st.text(alphabet=outreach.CODE_ALPHABET, min_size=8, max_size=8)
languages = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=16)


@given(codes, languages)
def test_round_trip_within_telegrams_alphabet_and_length(code: str, language: str) -> None:
    payload = outreach.encode(code, language)
    assert TELEGRAM.fullmatch(payload) and len(payload) <= outreach.MAX_PAYLOAD
    assert outreach.decode(payload) == outreach.Link(code, language)


@pytest.mark.parametrize("language", ["pl", "ur", "zh_Hant", "fa_AF", "ckb"])
def test_every_deployment_language_encodes(language: str) -> None:
    assert language in CTX.deployment.languages
    assert outreach.decode(outreach.encode(CODE, language)) == outreach.Link(CODE, language)


def test_every_enabled_language_fits() -> None:
    for language in CTX.deployment.languages:
        assert TELEGRAM.fullmatch(outreach.encode(CODE, language))


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "pl",
        "c-",
        f"c-{CODE}",
        f"c-{CODE}-",
        f"c-{CODE[:7]}-pl",
        f"c-{CODE}x-pl",
        f"c-{CODE}-pl-x",
        f"c-{CODE}-p l",
        f"C-{CODE}-pl",
        f"x-{CODE}-pl",
        f" c-{CODE}-pl",
        f"c-{CODE}-pl\n",
        f"c-{CODE[:7]}é-pl",
        f"c-{CODE}-p\u0142",
        f"c-{CODE}-" + "a" * 17,  # a language longer than any column
        f"c-{CODE}-" + "a" * 60,  # over Telegram's 64 characters
        f"c-{CODE}-pl" + "_" * 60,
    ],
)
def test_malformed_payloads_decode_to_nothing(payload: str) -> None:
    assert outreach.decode(payload) is None


@given(st.text(max_size=100))
def test_decode_never_raises_and_only_accepts_the_format(payload: str) -> None:
    link = outreach.decode(payload)
    if link is not None:
        assert len(payload) <= 64 and outreach.encode(link.code, link.language) == payload


@pytest.mark.parametrize(("code", "language"), [("short", "pl"), (CODE, "p-l"), (CODE, "")])
def test_encode_refuses_what_is_not_a_code_or_language(code: str, language: str) -> None:
    with pytest.raises(ValueError):
        outreach.encode(code, language)


def test_iso_week_and_year_boundaries() -> None:
    assert outreach.iso_week(dt.date(2027, 3, 3)) == "2027-W09"
    assert outreach.iso_week(dt.date(2027, 1, 1)) == "2026-W53"  # a Friday: the old year's week
    assert outreach.iso_week(dt.datetime(2024, 12, 30, 1, tzinfo=dt.UTC)) == "2025-W01"


@pytest.mark.parametrize(
    ("count", "shown"), [(0, "0"), (1, "fewer than 10"), (9, "fewer than 10"), (10, "10")]
)
def test_small_counts_are_not_shown(count: int, shown: str) -> None:
    assert outreach.shown(count) == shown


# ---- the engine --------------------------------------------------------------------------


def test_a_campaign_start_asks_the_edges_first_and_shows_nothing_yet() -> None:
    out = step(CTX, initial_state(CTX.flow), Started(f"c-{CODE}-ur", "en"))
    assert out.effects == (OpenCampaign(CODE, "ur", "en"),)
    assert out.replies == () and out.state.campaign is None and out.state.language is None


def test_a_live_campaign_opens_in_its_language_and_is_remembered() -> None:
    out = step(CTX, initial_state(CTX.flow), CampaignChecked(CODE, "pl", True, "en"))
    assert out.state.language == "pl" and out.state.step == CTX.flow.entry
    assert out.state.campaign == CODE and out.replies
    assert out.state.has_draft_part and out.state.draft()["campaign"] == CODE


def test_an_unknown_or_retired_campaign_starts_in_the_phones_language() -> None:
    out = step(CTX, initial_state(CTX.flow), CampaignChecked(CODE, "pl", False, "ar"))
    assert out.state.language == "ar" and out.state.campaign is None and out.replies
    assert not out.state.has_draft_part


@pytest.mark.parametrize(
    "payload", [f"c-{CODE}-xx", f"c-{CODE[:7]}-pl", "c-" + "A" * 70, "start-me"]
)
def test_a_malformed_or_unknown_language_payload_starts_normally(payload: str) -> None:
    out = step(CTX, initial_state(CTX.flow), Started(payload, "en"))
    assert out.effects == () and out.state.language == "en" and out.replies
    assert out.state.campaign is None


def test_a_bare_language_payload_still_opens_that_language_uncounted() -> None:
    out = step(CTX, initial_state(CTX.flow), Started("pl", "en"))
    assert out.effects == () and out.state.language == "pl" and out.state.campaign is None


def test_the_campaign_rides_with_the_request_and_goes_once_stored() -> None:
    state = ConversationState(step=CTX.flow.entry, language="pl", campaign=CODE)
    restored = ConversationState.restore(state.routing(), state.draft())
    assert restored.campaign == CODE  # kept in the encrypted part, even with no answers yet
    assert "campaign" not in state.routing() and CODE not in str(state.routing())
    submitting = state.with_(step=CTX.flow.by_kind["submitting"])
    out = step(CTX, submitting, RequestStored("1234567890123456"))
    assert out.state.campaign is None


def test_new_codes_are_never_misread_from_a_poster() -> None:
    from storage.outreach import new_code

    made = {new_code() for _ in range(2000)}
    assert all(outreach.is_code(code) for code in made)
    assert not {c for code in made for c in code} & set(outreach.AMBIGUOUS)
    # and a code made before the change, with those letters, is still one
    assert outreach.decode(outreach.encode("Il1Oo0Ab", "pl")) == outreach.Link("Il1Oo0Ab", "pl")
