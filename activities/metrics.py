"""App metrics recorded from activities through the SDK's meter, so they are served by the
worker's Prometheus endpoint next to the SDK's own (WORKER_METRICS_ADDRESS, docs/operations.md).

Labels are bounded enums only (status, channel, kind, stage): never a patient, journey or
practice id, and never anything a patient wrote. Outside an activity (the API calling the send
gate directly) nothing is recorded here; the API has its own /metrics.

Without a metrics-enabled runtime (tests, tools) the SDK hands out a no-op meter: recording
costs nothing there."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio import activity
from temporalio.common import MetricMeter

log = logging.getLogger(__name__)

SENDS = "journey_messages"
FIRST_TOUCH = "journey_first_touch_latency"
TRANSITIONS = "journey_stage_transitions"


def _meter() -> MetricMeter | None:
    if not activity.in_activity():
        return None
    try:
        return activity.metric_meter()
    except RuntimeError:  # a non-threaded sync activity (process pool): no meter there
        return None


def record_send(status: str, channel: str | None, kind: str) -> None:
    """One send-gate outcome (sent, deferred, suppressed, skipped, failed) of an activity
    attempt. A retried attempt that finds its row already settled counts again: this is a rate
    of outcomes, not a ledger (the ledger is the `message` table)."""
    meter = _meter()
    if meter is None:
        return
    counter = meter.create_counter(SENDS, "Send-gate outcomes by status, channel and kind", "1")
    counter.add(1, {"status": status, "channel": channel or "none", "kind": kind})


def record_first_touch(latency: timedelta) -> None:
    """Inquiry received -> its instant reply handed to the provider (wall clock)."""
    meter = _meter()
    if meter is None:
        return
    histogram = meter.create_histogram_timedelta(
        FIRST_TOUCH, "Inquiry received to first outbound message handed to the provider", "ms"
    )
    histogram.record(max(latency, timedelta(0)))


def record_transition(from_stage: str | None, to_stage: str, status: str) -> None:
    meter = _meter()
    if meter is None:
        return
    counter = meter.create_counter(TRANSITIONS, "Journey stage transitions recorded", "1")
    counter.add(1, {"from_stage": from_stage or "none", "to_stage": to_stage, "status": status})
