"""Key pins in the deployment file: `key_fingerprints` per receiving organisation and the bot's
`request_signing_keys`; which organisations may go unpinned (fictional deployments only)."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from bot.config import bundled_deployment_path
from flows.deployment import Deployment, parse_deployment
from flows.errors import FlowError

EXAMPLE: dict[str, Any] = tomllib.loads(bundled_deployment_path().read_text(encoding="utf-8"))
FINGERPRINT = "ab" * 32
SIGNER = "safebot-sig1:" + "A" * 43


def parse(fictional: bool, **org_changes: object) -> Deployment:
    data = copy.deepcopy(EXAMPLE)
    data["deployment"]["fictional"] = fictional
    data["deployment"]["request_signing_keys"] = [SIGNER]
    data["organisations"][0].update(org_changes)
    for org in data["organisations"]:
        org.pop("phone", None)  # drama numbers are only for fictional deployments
    return parse_deployment(data)


def test_pins_are_read_and_normalised() -> None:
    pretty = " ".join(FINGERPRINT[i : i + 8] for i in range(0, 64, 8)).upper()
    deployment = parse(False, key_fingerprints=[pretty, FINGERPRINT])
    hub = deployment.receiving_organisations[0]
    assert hub.key_fingerprints == (FINGERPRINT,)
    assert deployment.key_pins(hub.id) == frozenset({FINGERPRINT})
    assert deployment.request_signing_keys == (SIGNER,)


def test_unpinned_is_allowed_only_for_a_fictional_deployment() -> None:
    real, demo = parse(False), parse(True)
    org = real.receiving_organisations[0].id
    assert real.key_pins(org) == frozenset()  # nothing may be sealed to
    assert demo.key_pins(org) is None  # any registered key, as before pinning
    assert parse(True, key_fingerprints=[FINGERPRINT]).key_pins(org) == {FINGERPRINT}


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("org", ["abc"], "organisations[0].key_fingerprints[0] 'abc': a key fingerprint is 64"),
        ("org", "ab" * 32, "organisations[0].key_fingerprints must be a list"),
        ("deployment", ["safebot-pk1:x"], "deployment.request_signing_keys[0] 'safebot-pk1:x'"),
    ],
)
def test_malformed_pins_are_refused(where: str, value: object, expected: str) -> None:
    data = copy.deepcopy(EXAMPLE)
    if where == "org":
        data["organisations"][0]["key_fingerprints"] = value
    else:
        data["deployment"]["request_signing_keys"] = value
    with pytest.raises(FlowError) as caught:
        parse_deployment(data)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_pins_only_for_an_organisation_that_receives_requests() -> None:
    data = copy.deepcopy(EXAMPLE)
    data["organisations"].append(
        {"id": "info", "name": "Info", "description": {"en": "x", "pl": "x", "ar": "x"},
         "receives_requests": False, "key_fingerprints": [FINGERPRINT]}
    )  # fmt: skip
    with pytest.raises(FlowError) as caught:
        parse_deployment(data)
    assert any("key_fingerprints: only for an organisation that receives" in p
               for p in caught.value.problems)  # fmt: skip
