"""The EMR polling workflow: one small run per Schedule tick (integrations/schedules.py).

All the work is the `emr_poll` activity (HTTP, database); the workflow only gives it a retry
policy with backoff, so a vendor outage costs a few spaced retries, and the next tick starts
fresh from the persisted cursor whatever happened."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from models.emr_types import EMR_POLL_WORKFLOW_NAME, EmrPollInput, EmrPollResult

POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=4,
    non_retryable_error_types=["CredentialsUnavailable"],
)


@workflow.defn(name=EMR_POLL_WORKFLOW_NAME)
class EmrPollWorkflow:
    @workflow.run
    async def run(self, inp: EmrPollInput) -> EmrPollResult:
        return await workflow.execute_activity(
            "emr_poll",
            inp,
            result_type=EmrPollResult,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=POLL_RETRY,
            summary="poll EMR",
        )
