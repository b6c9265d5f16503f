"""What is wrong now, stage by stage: `health` (ok or degraded) and `problems` in status, /health and metrics.

A stage that meets an environmental fault (`daemon/faults.py`) reports it here and backs off: 1 s, doubling
to a minute, while the other stages go on. The log says a fault once when it begins and once when it ends,
never once per retry. A stage that works again clears its problem.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from daemon.faults import Fault
from storage.events import now_iso

log = logging.getLogger(__name__)

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
# A fault that comes back this soon after it ended (a full disk where each retry frees a little) is the same
# fault: the log does not say it, nor its end, again.
FLAP_SECONDS = 300.0


@dataclass
class Problem:
    """A stage's current fault and since when it has lasted."""

    stage: str
    fault: Fault
    since: str
    retries: int = 0
    retry_at: float = 0.0  # monotonic

    def as_dict(self) -> dict[str, Any]:
        f = self.fault
        return {"stage": self.stage, "error": f.error, "since": self.since, "action": f.action, "kind": f.kind}


class Health:
    """The daemon's current problems, one per stage at most; safe to use from every thread."""

    def __init__(self) -> None:
        self._problems: dict[str, Problem] = {}
        self._ended: dict[str, tuple[str, float]] = {}  # stage -> (error, when it ended), for flapping
        self._lock = threading.Lock()

    def fault(self, stage: str, fault: Fault) -> float:
        """Record that `stage` met `fault` (again); return the seconds it should wait before retrying."""
        with self._lock:
            problem = self._problems.get(stage)
            if problem is None or problem.fault.error != fault.error:
                if problem is None and not self._flapping(stage, fault.error):
                    log.error("stage degraded", extra={"stage": stage, "error": fault.error, "action": fault.action})
                problem = Problem(stage, fault, problem.since if problem else now_iso())
                self._problems[stage] = problem
            wait = min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** min(problem.retries, 16))
            problem.retries += 1
            problem.retry_at = time.monotonic() + wait
            return wait

    def ok(self, stage: str) -> None:
        """`stage` worked: its problem, if any, is over."""
        with self._lock:
            problem = self._problems.pop(stage, None)
            if problem is None:
                return
            flapping = self._flapping(stage, problem.fault.error)
            self._ended[stage] = (problem.fault.error, time.monotonic())
        if not flapping:
            log.info("stage resumed", extra={"stage": stage, "since": problem.since, "retries": problem.retries})

    def _flapping(self, stage: str, error: str) -> bool:
        ended = self._ended.get(stage)
        return ended is not None and ended[0] == error and time.monotonic() - ended[1] < FLAP_SECONDS

    def waiting(self, stage: str) -> bool:
        """Whether `stage` is backing off now."""
        with self._lock:
            problem = self._problems.get(stage)
            return problem is not None and time.monotonic() < problem.retry_at

    def backoff(self, stage: str) -> float:
        """Seconds until `stage` should try again (0 when it is not backing off)."""
        with self._lock:
            problem = self._problems.get(stage)
            return max(0.0, problem.retry_at - time.monotonic()) if problem else 0.0

    def error(self, stage: str) -> str | None:
        """The current problem's error of `stage`, if it has one."""
        with self._lock:
            problem = self._problems.get(stage)
            return problem.fault.error if problem else None

    def problems(self) -> list[dict[str, Any]]:
        """The current problems, oldest first."""
        with self._lock:
            return [p.as_dict() for p in sorted(self._problems.values(), key=lambda p: p.since)]

    def report(self) -> dict[str, Any]:
        """`health` and `problems`, as status and /health carry them."""
        problems = self.problems()
        return {"health": "degraded" if problems else "ok", "problems": problems}
