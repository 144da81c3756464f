"""The dashboard page in headless Chromium: the synthetic practice's export (the hand-counted
map of test_funnel.py) rendered as the eight stages with their leaks, the industry figures, the
speed-to-lead histogram and revenue — and no patient anywhere on it.

Chromium is Debian's (`make install` installs it when missing, see the Makefile); the app is
served on a real port by uvicorn for the browser, opened with a signed link."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from tests.api.conftest import Api, Tenant
from tests.api.test_funnel import import_synthetic

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_TIMEOUT_S = 90


@contextlib.asynccontextmanager
async def serve(api: Api) -> AsyncIterator[str]:
    """The already-started app on an ephemeral port (its lifespan has run: no second one)."""
    config = uvicorn.Config(api.app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def chromium(tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), BROWSER_TIMEOUT_S)
    assert proc.returncode == 0
    return out.decode()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make install adds it)")
async def test_the_dashboard_in_headless_chromium(api: Api, tmp_path: Path) -> None:
    tenant = await api.create_practice(revenue_lines=["injectables", "laser_energy"])
    await import_synthetic(api, tenant)
    r = await api.http.post("/v1/dashboard/links", headers=tenant.headers)
    assert r.status_code == 201, r.text
    link = r.json()["url"] + "&source=history&from=2025-01-01&to=2026-01-01"

    async with serve(api) as base:
        dom = await chromium(tmp_path, "--dump-dom", base + link)
        shot = tmp_path / "dashboard.png"
        await chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1800", base + link)
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert "Lead-to-revenue map" in text and "historical (imported)" in text
    # The eight stages, each with its leak (the hand count of test_funnel.py).
    for label in (
        "1 · Inquiry",
        "2 · Speed to lead",
        "3 · Consult booked",
        "4 · Consult show",
        "5 · Treatment",
        "6 · Rebook",
        "7 · Reactivation",
        "8 · Reviews &amp; referrals",
    ):
        assert label.replace("&amp;", "&") in text or label in dom
    stages = dict(re.findall(r'data-stage="(\w+)".*?<div class="leak">([^<]+)</div>', dom, re.S))
    assert stages == {
        "inquiry": "0% leak",
        "speed_to_lead": "45% leak",
        "consult_booked": "14% leak",
        "consult_show": "33% leak",
        "treatment": "25% leak",
        "rebook": "67% leak",
        "reactivation": "100% leak",
        "reviews_referrals": "100% leak",
    }
    # The industry's figures beside the stages where those leaks happen.
    for figure in ("40-60% of inquiries lost", "~22% no-show or cancel", "40-50% never rebook"):
        assert figure in text
    assert "Biggest leak: 7 · Reactivation" in text
    # By line: injectables carries all of it.
    assert re.search(r"<th>injectables</th>\s*<th>laser_energy</th>", dom)
    # The speed-to-lead histogram: seven bars, one per bucket, drawn by the browser as SVG.
    assert dom.count("<rect ") == 7
    assert "p50 10 min" in text and "27%" in text
    # Revenue recorded and recovered.
    assert "$1,650" in text and "Recovered by automation: $0" in text
    # No live journeys yet: nothing to compare with.
    assert 'class="compare"' not in dom
    # Seen from the live side, each stage shows the historical leak beside it.
    live = await api.http.get("/v1/dashboard", headers=tenant.headers)
    compare = dict(
        re.findall(r'data-stage="(\w+)".*?<div class="compare">([^<]+)</div>', live.text, re.S)
    )
    assert compare["speed_to_lead"] == "historical: 45% leak"
    assert compare["rebook"] == "historical: 67% leak"
    # No patient on the page: no names, numbers, emails or export ids of the synthetic practice.
    for needle in ("Pat1", "Pat10", "example.com", "+1212555", "P10", "T1,"):
        assert needle not in dom


async def test_the_dashboard_is_locked(api: Api, tenant: Tenant) -> None:
    r = await api.http.get("/v1/dashboard")
    assert r.status_code == 401
    r = await api.http.get("/v1/dashboard", headers=tenant.headers)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, no-store"
    assert r.headers["content-type"].startswith("text/html")
    link = (await api.http.post("/v1/dashboard/links", headers=tenant.headers)).json()["url"]
    token = link.split("token=")[1]
    assert (await api.http.get(link)).status_code == 200
    practice_id, expires, mac = token.split(".")
    for forged in (
        f"{practice_id}.{int(expires) + 3600}.{mac}",  # a longer life
        f"{practice_id}.1.{mac}",  # expired
        f"00000000-0000-0000-0000-000000000000.{expires}.{mac}",  # someone else's practice
        "nonsense",
    ):
        r = await api.http.get("/v1/dashboard", params={"token": forged})
        assert r.status_code == 401, forged
