"""The callback-data codec: every press round-trips, and anything else decodes to nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.callbacks import (
    CALLBACK_DATA_MAX_BYTES,
    LONGEST_SEQ,
    SEQ_MODULUS,
    Act,
    Callback,
    GoTo,
    OpenLanguages,
    OpenMenu,
    QuickExit,
    SetLanguage,
    decode,
    edit_index,
    edit_value,
    encode,
    encode_seq,
    fits,
    is_action,
)
from flows.definition import load_flow

ids = st.text(min_size=0, max_size=40)
values = st.text(min_size=1, max_size=40)
seqs = st.integers(0, SEQ_MODULUS - 1)
callbacks = st.one_of(
    st.just(QuickExit()),
    st.just(OpenLanguages()),
    st.just(OpenMenu()),
    st.builds(SetLanguage, ids),
    st.builds(GoTo, ids),
    st.builds(Act, seqs, values),
)


@given(callbacks)
def test_every_press_round_trips(callback: Callback) -> None:
    assert decode(encode(callback)) == callback


@pytest.mark.parametrize(
    ("callback", "data"),
    [
        (QuickExit(), "x"),
        (OpenLanguages(), "l"),
        (OpenMenu(), "m"),
        (SetLanguage("pl"), "L:pl"),
        (GoTo("contact.consent"), "g:contact.consent"),
        (Act(0, "yes"), "a:0:yes"),
        (Act(35, "skip"), "a:z:skip"),
        (Act(36, "e.3"), "a:10:e.3"),
        (Act(LONGEST_SEQ, "confirm"), "a:zzzzzz:confirm"),
    ],
)
def test_the_wire_format(callback: Callback, data: str) -> None:
    """The formats are stored in old messages' buttons: they must never change."""
    assert encode(callback) == data
    assert decode(data) == callback


@given(st.integers(0, 10 * SEQ_MODULUS), values)
def test_sequence_numbers_wrap_at_six_digits(seq: int, value: str) -> None:
    data = encode(Act(seq, value))
    assert len(data.split(":")[1]) <= 6
    decoded = decode(data)
    assert decoded == Act(seq % SEQ_MODULUS, value)
    assert isinstance(decoded, Act) and decoded.is_for(seq)
    assert not decoded.is_for(seq + 1)


def test_an_action_answers_only_its_own_screen() -> None:
    assert Act(5, "yes").is_for(5)
    assert Act(5, "yes").is_for(5 + SEQ_MODULUS)
    assert not Act(5, "yes").is_for(6)


@pytest.mark.parametrize(
    "data",
    [
        "",
        "X",
        "x ",
        " x",
        "M",
        "q" * 200,
        "\x00",
        "a",
        "a:",
        "a:0",  # no value
        "a:0:",  # empty value
        "a::yes",  # no sequence number
        "a:00:yes",  # not the canonical spelling of 0
        "a:01:yes",
        "a:A:yes",  # upper case
        "a:+1:yes",  # int() would take these
        "a:1_0:yes",
        "a: 1:yes",
        "a:1000000:yes",  # seven digits: more than encode ever writes
        "a:١:yes",  # a digit in another script
        "a:" + "9" * 200 + ":yes",
        "b:0:yes",
        "G:menu",
        "l:pl",
    ],
)
def test_malformed_data_decodes_to_nothing(data: str) -> None:
    assert decode(data) is None


def test_the_value_may_contain_colons() -> None:
    assert decode("a:1:e.2:x") == Act(1, "e.2:x")
    assert decode("L:en:extra") == SetLanguage("en:extra")  # decoded; the engine refuses it


@pytest.mark.parametrize(("data", "expected"), [("a:", True), ("a:zz:x", True), ("g:a:", False)])
def test_is_action_goes_by_the_prefix_alone(data: str, expected: bool) -> None:
    assert is_action(data) is expected


@pytest.mark.parametrize("index", [0, 1, 9, 10, 123])
def test_edit_values_round_trip(index: int) -> None:
    assert edit_index(edit_value(index)) == index


@pytest.mark.parametrize(
    "value", ["e.", "e.x", "e.-1", "e.1.2", "e.²", "e.①", "e.١", "e.１", "x.1"]
)
def test_malformed_edit_values(value: str) -> None:
    assert edit_index(value) is None


def test_encode_seq() -> None:
    assert [encode_seq(n) for n in (0, 9, 10, 35, 36, 1295, 1296)] == [
        "0",
        "9",
        "a",
        "z",
        "10",
        "zz",
        "100",
    ]
    assert encode_seq(SEQ_MODULUS) == "0"
    assert encode_seq(LONGEST_SEQ) == "zzzzzz"


def test_fits_counts_bytes() -> None:
    assert CALLBACK_DATA_MAX_BYTES == 64
    assert fits("a" * 64)
    assert not fits("a" * 65)
    assert fits("é" * 32)
    assert not fits("é" * 33)


def test_the_bundled_flow_fits_in_the_worst_case() -> None:
    flow = load_flow()
    for step in flow.steps.values():
        assert fits(encode(GoTo(step.id)))
        for option in step.options:
            assert fits(encode(Act(LONGEST_SEQ, option.value)))
