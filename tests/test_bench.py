"""The benchmarks start servers of their own; stopping a benchmark must stop them.

A long run is left in the background (`nohup … &`, where SIGINT is ignored) and stopped with
`kill PID`. Before bench/stopping.py, SIGTERM ended the benchmark on the spot and left its
Temporal dev server, worker, API and baseline worker running. Here the speed-to-lead benchmark
runs for real until its stack is up, gets SIGTERM, and must exit having stopped every one of them
and removed its temp dir. (No figures are measured or asserted: those are docs/benchmarks.md's.)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTUP_S = 90.0


def holders(folder: Path) -> list[int]:
    """Processes with a file under `folder` open (each server's log is its stdout there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if any(link.startswith(str(folder)) for link in links):
            found.append(int(proc.name))
    return found


def refuses(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_sigterm_stops_the_benchmark_and_every_server_it_started() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SENDGRID_"))}
    bench = subprocess.Popen(
        [sys.executable, "bench/speed_to_lead.py", "--count", "50", "--rate", "1"],
        cwd=ROOT,
        env=dict(env, COLUMNS="200"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    folder: Path | None = None
    # readline blocks: a benchmark that never comes up is killed, which ends the read with EOF.
    watchdog = threading.Timer(STARTUP_S, bench.kill)
    watchdog.start()
    try:
        assert bench.stdout is not None
        api_port = None
        while api_port is None:
            line = bench.stdout.readline()
            if not line:
                break
            seen.append(line)
            if m := re.search(r"sqlite:///(/\S+)/bench\.db", line):
                folder = Path(m.group(1))  # known early, so `finally` can clean up after a failure
            if m := re.search(r"API on http://127\.0\.0\.1:(\d+)", line):
                api_port = int(m.group(1))
        text = "".join(seen)
        assert api_port is not None, f"the benchmark's stack never came up:\n{text}"
        watchdog.cancel()
        temporal = re.search(r"Temporal dev server on 127\.0\.0\.1:(\d+)", text)
        assert temporal and folder, text
        temporal_port = int(temporal.group(1))
        assert not refuses(api_port) and not refuses(temporal_port)
        assert len(holders(folder)) >= 4  # dev server, worker, API, baseline worker

        bench.send_signal(signal.SIGTERM)
        _, err = bench.communicate(timeout=120)

        assert bench.returncode == 128 + signal.SIGTERM, err
        assert "stopped by SIGTERM" in err
        assert holders(folder) == [], "servers the benchmark started are still running"
        assert refuses(api_port) and refuses(temporal_port)
        assert not folder.exists()
    finally:
        watchdog.cancel()
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
        # Whatever the outcome, leave no server of the benchmark's behind.
        for pid in holders(folder) if folder is not None else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
