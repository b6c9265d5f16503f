"""skilld's benchmarks: figures printed and written as JSON (never timed assertions in tests)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from corpus import write_corpus  # noqa: E402

GENERIC = '[{"name": "mytool", "match": "mytool-*.jsonl", "query": "input", "response": "output", "outcome": "ok"}]'


def _median(runs: int, measure: Callable[[int], float]) -> tuple[float, list[float]]:
    values = [measure(i) for i in range(runs)]
    return statistics.median(values), values


def bench_ingest(lines: int, runs: int, work: Path) -> dict[str, Any]:
    """Events/s stored from a generated corpus of every format, with redaction on."""
    corpus = work / "telemetry"
    written = write_corpus(corpus, lines)
    total_lines = sum(written.values())
    size = sum(p.stat().st_size for p in corpus.rglob("*.jsonl"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLD_")}
    env.update(SKILLD_TELEMETRY__GENERIC=GENERIC, XDG_CONFIG_HOME=str(work / "no-config"))
    os.environ.update(SKILLD_TELEMETRY__GENERIC=GENERIC)

    from daemon.app import Skilld
    from daemon.config import load_settings

    events = 0

    def in_process(workers: int) -> Callable[[int], float]:
        def measure(i: int) -> float:
            nonlocal events
            app = Skilld(load_settings(home=work / f"home-inproc-{workers}-{i}"))
            start = time.perf_counter()
            report = app.ingest([corpus], workers=workers)
            elapsed = time.perf_counter() - start
            app.close()
            events = report.events
            return report.events / elapsed

        return measure

    def command(i: int) -> float:
        home = work / f"home-cmd-{i}"
        start = time.perf_counter()
        result = subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "skilld"),
                "--home",
                str(home),
                "ingest",
                "--no-learn",
                "--json",
                str(corpus),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        elapsed = time.perf_counter() - start
        return int(json.loads(result.stdout)["events"]) / elapsed

    single, single_runs = _median(runs, in_process(1))
    parallel, parallel_runs = _median(runs, in_process(os.cpu_count() or 1))
    whole, whole_runs = _median(runs, command)
    return {
        "corpus_lines": total_lines,
        "corpus_bytes": size,
        "events_stored": events,
        "in_process_events_per_s": round(single),
        "in_process_parallel_events_per_s": round(parallel),
        "command_events_per_s": round(whole),
        "runs": {"in_process": single_runs, "in_process_parallel": parallel_runs, "command": whole_runs},
        "target_command_events_per_s": 50_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000, help="corpus size for the ingest benchmark")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="skilld-bench-") as tmp:
        print(f"ingest: {args.lines} lines, {args.runs} runs each ...", file=sys.stderr)
        ingest = bench_ingest(args.lines, args.runs, Path(tmp))
        results["ingest"] = ingest
        print(
            f"ingest ({ingest['corpus_lines']} lines, {ingest['corpus_bytes'] / 1e6:.0f} MB, redaction on):\n"
            f"  in process, one worker      {ingest['in_process_events_per_s']:>8} events/s\n"
            f"  in process, {os.cpu_count()} workers       {ingest['in_process_parallel_events_per_s']:>8} events/s\n"
            f"  `skilld ingest --no-learn`  {ingest['command_events_per_s']:>8} events/s (start-up included; "
            f"target {ingest['target_command_events_per_s']})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
