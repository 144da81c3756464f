from __future__ import annotations

from datetime import timedelta

from tests.workflows.conftest import Harness


async def test_inquiry_gets_immediate_reply(harness: Harness) -> None:
    seeded = harness.seed()
    handle = await harness.start(seeded)
    await harness.settle()
    sent = harness.sent(seeded)
    assert [m.template for m in sent] == ["inquiry_reply"]
    await harness.advance(timedelta(days=2))
    print([(m.template, m.status, m.created_at, m.sent_at) for m in harness.messages(seeded)])
    print([(s.from_stage, s.to_stage, s.reason) for s in harness.stages(seeded)])
    st = await handle.query("state")
    print(st)
