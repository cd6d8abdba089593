"""Provenance of a run: ``<run folder>/events.jsonl``, one JSON object a line, appended, never rewritten.

Every event has ``event``, ``host``, ``pid``, ``time`` (ISO 8601, local time with offset) and ``run_id``;
some carry more:

* ``started``     -- training began from scratch;
* ``resumed``     -- training went on from the checkpoint (``epoch``, ``step``: where);
* ``waited``      -- this process waited for ``holder`` (``host:pid since ...``) to train the run
  (``seconds``), then loaded it;
* ``recovered``   -- this process broke the stale lock of ``holder`` (a process that died holding it);
* ``completed``   -- ``metrics.json`` was written (``test_psnr``);
* ``failed``      -- training diverged (``message``; the run's ``failed.json`` says more);
* ``interrupted`` -- Ctrl-C or SIGINT; a checkpoint was saved (``epoch``, ``step``);
* ``aborted``     -- another error stopped training (``error``).

Events are written while the run's lock is held (``prkd.registry.locks``), so lines never interleave.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

__all__ = ["EVENTS", "record", "read", "summary"]

EVENTS = ("started", "resumed", "waited", "recovered", "completed", "failed", "interrupted", "aborted")


def record(folder: Path, event: str, **details) -> dict:
    """Append one event to ``folder/events.jsonl`` (flushed to disk) and return it."""
    if event not in EVENTS:
        raise ValueError(f"run event must be one of {', '.join(EVENTS)}; got {event!r}")
    entry = {"event": event, "host": socket.gethostname(), "pid": os.getpid(),
             "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run_id": Path(folder).name, **details}
    line = json.dumps(entry, sort_keys=True) + "\n"
    path = Path(folder) / "events.jsonl"
    if _ends_torn(path):  # a process killed mid-line: start on a fresh line, so only that one line is lost
        line = "\n" + line
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    return entry


def _ends_torn(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:  # missing or empty
        return False


def read(folder: Path) -> list[dict]:
    """The run's events in order; a line that is not a JSON object (a crash mid-write) is skipped."""
    path = Path(folder) / "events.jsonl"
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "event" in entry:
            events.append(entry)
    return events


def summary(events: list[dict]) -> str:
    """One line: who started the run and when, how often it was resumed or waited for, how it ended."""
    if not events:
        return "no events recorded"
    parts = []
    for e in events:
        if e["event"] == "started":
            parts.append(f"started {_short(e['time'])} on {e['host']}:{e['pid']}")
    counts = {name: sum(e["event"] == name for e in events) for name in ("resumed", "waited", "interrupted",
                                                                             "recovered")}
    parts += [f"{name} {n}x" for name, n in counts.items() if n]
    ends = [e for e in events if e["event"] in ("completed", "failed", "aborted")]
    if ends:
        last = ends[-1]
        parts.append(f"{last['event']} {_short(last['time'])} on {last['host']}:{last['pid']}")
    return ", ".join(parts)


def _short(stamp: str) -> str:
    """``2026-12-01T11:40:03+0000`` -> ``2026-12-01 11:40``."""
    return stamp[:16].replace("T", " ")
