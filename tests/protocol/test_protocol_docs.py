"""docs/protocol.md states the same version, requests, events and error codes as the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dyntet_protocol import PROTOCOL_VERSION
from dyntet_protocol.constants import HEARTBEAT_INTERVAL_S, HEARTBEAT_LIVENESS, MAGIC
from dyntet_protocol.errors import ErrorCode
from dyntet_protocol.messages import EVENT_TYPES, JOB_STATES, REQUESTS

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


@pytest.fixture(scope="module")
def spec() -> str:
    return SPEC.read_text(encoding="utf-8")


def test_the_document_states_the_protocol_version_of_the_code(spec):
    stated = re.findall(r"\*\*Protocol version: (\d+)\*\*", spec)
    assert stated == [str(PROTOCOL_VERSION)]
    assert f'"protocol": {PROTOCOL_VERSION}' in spec


def test_every_request_type_has_a_section(spec):
    sections = set(re.findall(r"^### `([a-z.]+)`", spec, flags=re.M))
    documented = {name.strip() for heading in re.findall(r"^### (.+)$", spec, flags=re.M)
                  for name in re.findall(r"`([a-z.]+)`", heading)}
    assert documented == set(REQUESTS), (documented ^ set(REQUESTS), sections)


def test_every_error_code_event_type_and_job_state_is_documented(spec):
    for code in ErrorCode:
        assert re.search(rf"^\| `{code.value}` \|", spec, flags=re.M), code
    for event in EVENT_TYPES:
        assert re.search(rf"^\| `{event}` \|", spec, flags=re.M), event
    for state in JOB_STATES:
        assert f"`{state}`" in spec, state


def test_documented_constants_match(spec):
    assert f"`{MAGIC.decode()}`" in spec
    assert f"`HEARTBEAT_INTERVAL_S` = {HEARTBEAT_INTERVAL_S:g} s" in spec
    assert f"`HEARTBEAT_LIVENESS` = {HEARTBEAT_LIVENESS}" in spec
