"""Recorded histories of real journeys (tests/workflows/histories, written by running the
workflow tests with RECORD_HISTORIES=1) replayed against today's workflow code: a change that
would break a sleeping journey fails here. Guard such changes with `workflow.patched`."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from runtime.temporal_client import data_converter
from tests.conftest import encrypted_settings
from workflows.journey import JourneyWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
TEXTS = {p: p.read_text() for p in HISTORIES}


def test_histories_are_recorded() -> None:
    assert len(HISTORIES) >= 10


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json("journey", TEXTS[path])
    # The recorded histories predate encryption: their plain payloads pass through the codec's
    # decode, so the production converter (with a key) replays them as they are.
    converter = data_converter(encrypted_settings())
    replayer = Replayer(workflows=[JourneyWorkflow], data_converter=converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
