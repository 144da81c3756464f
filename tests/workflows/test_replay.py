"""Recorded histories of real journeys (tests/workflows/histories, written by running the
workflow tests with RECORD_HISTORIES=1) replayed against today's workflow code: a change that
would break a sleeping journey fails here. Guard such changes with `workflow.patched`."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from models.journey_types import JOURNEY_WORKFLOW_NAME, JourneyInput, JourneyResult
from runtime.temporal_client import data_converter
from tests.conftest import encrypted_settings
from workflows.journey import JourneyWorkflow
from workflows.library import resolve_track

HISTORIES = sorted((Path(__file__).parent / "histories").glob("**/*.json"))
TEXTS = {p: p.read_text() for p in HISTORIES}


def test_histories_are_recorded() -> None:
    assert len(HISTORIES) >= 10


@pytest.mark.parametrize(
    "path", HISTORIES, ids=[str(p.relative_to(p.parents[1])) for p in HISTORIES]
)
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json("journey", TEXTS[path])
    # The recorded histories predate encryption: their plain payloads pass through the codec's
    # decode, so the production converter (with a key) replays them as they are.
    converter = data_converter(encrypted_settings())
    replayer = Replayer(workflows=[JourneyWorkflow], data_converter=converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


# ---- the replay test catches what it must ---------------------------------------------------


@workflow.defn(name=JOURNEY_WORKFLOW_NAME, sandboxed=False)  # a test double, no I/O
class ResolvesInline(JourneyWorkflow):
    """A tempting edit: compute the track in the workflow instead of the resolve activity."""

    @workflow.run
    async def run(self, inp: JourneyInput) -> JourneyResult:
        return await super().run(inp)

    async def _resolve_track(self) -> None:
        self._m.track = resolve_track(self._in.revenue_line, self._m.interest)
        self._machine.track = self._m.track


@workflow.defn(name=JOURNEY_WORKFLOW_NAME, sandboxed=False)  # a test double, no I/O
class IgnoresThePatch(JourneyWorkflow):
    """The library without `workflow.patched`: every journey on the new tracks at once."""

    @workflow.run
    async def run(self, inp: JourneyInput) -> JourneyResult:
        self._m.library = True
        return await super().run(inp)


async def _replays(workflow_class: type, path: Path) -> bool:
    history = WorkflowHistory.from_json("journey", TEXTS[path])
    replayer = Replayer(
        workflows=[workflow_class], data_converter=data_converter(encrypted_settings())
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure is None


async def test_replay_fails_on_a_changed_command_sequence() -> None:
    first_runs = [p for p in HISTORIES if p.parent.name == "library" and "first" in p.name]
    assert first_runs, "record library histories: RECORD_HISTORIES=library make test"
    path = first_runs[0]
    assert await _replays(JourneyWorkflow, path)
    assert not await _replays(ResolvesInline, path)


async def test_replay_fails_without_the_patch_guard() -> None:
    version_1 = [p for p in HISTORIES if p.parent.name == "histories"]
    path = version_1[0]
    assert await _replays(JourneyWorkflow, path)
    assert not await _replays(IgnoresThePatch, path)
