"""EmrPollWorkflow on the time-skipping server: a failing poll is retried with the workflow's
backoff (10 s, then 20 s...) and gives up after its attempts; a credentials failure is not
retried. The minutes pass on the test server's clock, not ours."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.emr_types import EmrPollInput, EmrPollResult
from workflows.emr_poll import POLL_RETRY, EmrPollWorkflow


async def _run(env: WorkflowEnvironment, poll: Callable[..., Any]) -> EmrPollResult:
    queue = f"emr-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[EmrPollWorkflow], activities=[poll]):
        result: EmrPollResult = await env.client.execute_workflow(
            EmrPollWorkflow.run,
            EmrPollInput("00000000-0000-0000-0000-000000000001"),
            id=f"emr-poll-test-{uuid.uuid4()}",
            task_queue=queue,
        )
        return result


async def test_a_failing_poll_is_retried_with_backoff_then_succeeds(
    env: WorkflowEnvironment,
) -> None:
    attempts: list[int] = []

    @activity.defn(name="emr_poll")
    async def flaky(inp: EmrPollInput) -> EmrPollResult:
        attempts.append(activity.info().attempt)
        if len(attempts) < 3:
            raise RuntimeError("vendor 503")
        return EmrPollResult(fetched=2, applied=1)

    before = await env.get_current_time()
    result = await _run(env, flaky)
    waited = await env.get_current_time() - before
    assert (result.fetched, result.applied) == (2, 1)
    assert attempts == [1, 2, 3]
    # 10 s then 20 s of backoff passed on the server's clock.
    assert waited >= POLL_RETRY.initial_interval * 3 - timedelta(seconds=1)


async def test_gives_up_after_its_attempts_and_never_retries_missing_credentials(
    env: WorkflowEnvironment,
) -> None:
    attempts: list[int] = []

    @activity.defn(name="emr_poll")
    async def down(inp: EmrPollInput) -> EmrPollResult:
        attempts.append(activity.info().attempt)
        raise RuntimeError("vendor down")

    with pytest.raises(WorkflowFailureError):
        await _run(env, down)
    assert len(attempts) == POLL_RETRY.maximum_attempts

    keyless: list[int] = []

    @activity.defn(name="emr_poll")
    async def no_key(inp: EmrPollInput) -> EmrPollResult:
        keyless.append(1)
        raise ApplicationError("no key", type="CredentialsUnavailable")

    with pytest.raises(WorkflowFailureError):
        await _run(env, no_key)
    assert keyless == [1]
