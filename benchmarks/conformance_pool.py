"""Isolated, reusable worker processes for the conformance runner.

Each case runs in a worker process (benchmarks/conformance_worker.py) that is reused
from case to case, because generating the suite and importing TVM take ~15 s. A
case that kills its worker (a segfault or abort in native code, the memory cap)
or outlives its timeout costs only that worker: it is killed with its process
group (the compiler's linker included) and a fresh one starts for the next case.

What the parent records for such a case comes from the phase lines the worker
wrote before it died: the engine that was running and, for graphopt, the stage.
When ONNX Runtime is what killed the worker, graphopt still gets its own run of
the case in a fresh worker, so one engine's crash never stands in for the other's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.conformance_cases import REPO, CaseResult

STOP_SECONDS = 10  # a worker asked to exit finishes at once; one stuck in native code is killed
STARTUP_SECONDS = 900  # generating the suite on a loaded 2-core machine; far above the usual ~15-30 s


@dataclass(frozen=True)
class PoolOptions:
    jobs: int = 2
    engines: tuple[str, ...] = ("ort", "graphopt")
    timeout: float = 300.0  # seconds per case, all its engines together
    mem_gb: float = 16.0  # address-space cap per worker (virtual: vgg19 maps over 10 GB, TVM dies at the cap)
    log_dir: Path = Path(".")  # each worker's stderr goes to worker-N.log here
    source: Path | None = None  # import graphopt from this frozen copy (conformance_snapshot); None: the tree


@dataclass(frozen=True)
class CaseRecord:
    """Every engine's result on one case."""

    case: str
    results: dict[str, CaseResult]


class WorkerDied(Exception):
    """The worker process ended or was killed before answering."""


class Worker:
    """One worker process slot: started on demand, replaced after it dies."""

    def __init__(self, slot: int, options: PoolOptions) -> None:
        self.slot, self.options = slot, options
        self.proc: subprocess.Popen | None = None
        self.timed_out = False

    def start(self) -> list[str]:
        """Starts a fresh worker; returns the suite's case names it reports."""
        log = open(self.options.log_dir / f"worker-{self.slot}.log", "ab")  # noqa: SIM115 (the child keeps it)
        source = self.options.source or REPO
        # `-m` puts the working directory first on sys.path: graphopt comes from `source`, the harness from REPO
        path = os.pathsep.join(filter(None, [str(source), str(REPO), os.environ.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "benchmarks.conformance_worker", "--mem-gb", str(self.options.mem_gb)]
        self.proc = subprocess.Popen(command, cwd=source, env={**os.environ, "PYTHONPATH": path},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                     bufsize=1, start_new_session=True)
        log.close()
        with self._watchdog(STARTUP_SECONDS):
            message = self._read()
        if "ready" not in message:
            raise WorkerDied(f"worker {self.slot} started with {message!r} instead of its case list")
        if not Path(message["graphopt"]).resolve().is_relative_to(source.resolve()):
            raise RuntimeError(f"worker {self.slot} imported graphopt from {message['graphopt']}, not from {source}")
        return message["ready"]

    def run(self, case: str, engines: tuple[str, ...]) -> dict[str, CaseResult]:
        """Runs one case; a result per engine, made up here when the worker died or hung."""
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self.start()
        self.proc.stdin.write(json.dumps({"case": case, "engines": list(engines)}) + "\n")
        results, engine, phase = {}, engines[0], ""
        with self._watchdog(self.options.timeout):
            try:
                while len(results) < len(engines):
                    message = self._read()
                    if "result" in message:
                        results[engine] = CaseResult.from_json(message["result"])
                    elif message["phase"].startswith("engine:"):
                        engine, phase = message["phase"].removeprefix("engine:"), ""
                    else:
                        phase = message["phase"]
            except WorkerDied as died:
                results[engine] = self._lost(case, engine, phase, str(died))
        return results

    def _lost(self, case: str, engine: str, phase: str, reason: str) -> CaseResult:
        """The result of the engine that was running when the worker died or was killed."""
        outcome = "timeout" if self.timed_out else "crash"
        line = f"no answer within {self.options.timeout:g} s" if self.timed_out else reason
        self.stop()
        return CaseResult(case=case, engine=engine, outcome=outcome, stage=phase,
                          error_class="" if outcome == "timeout" else "WorkerDied", first_line=line)

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerDied(f"worker process died ({exit_name(self.proc.wait())})")
        return json.loads(line)

    def _watchdog(self, seconds: float) -> _Watchdog:
        self.timed_out = False
        return _Watchdog(seconds, self._expire)

    def _expire(self) -> None:
        self.timed_out = True
        self._kill()

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the worker's own session: it and its children only

    def stop(self) -> None:
        """Ends the worker: a live one is asked to exit (closing its stdin lets it clean its temporary
        files up), and killed if it has not within STOP_SECONDS."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if not stream.closed:
                stream.close()
        self.proc = None


def exit_name(code: int) -> str:
    """`SIGSEGV` for a process killed by a signal, `exit 3` otherwise."""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


class _Watchdog:
    """Calls `expire` if the `with` block outlives `seconds`."""

    def __init__(self, seconds: float, expire: Callable[[], None]) -> None:
        self.timer = threading.Timer(seconds, expire)
        self.timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()


def run_cases(select: Callable[[list[str]], list[str]], options: PoolOptions,
              on_record: Callable[[CaseRecord], None]) -> list[CaseRecord]:
    """Runs the cases `select` picks from the suite's names, `options.jobs` at a time."""
    queue: deque[str] = deque()
    selected = threading.Event()
    lock = threading.Lock()
    records: list[CaseRecord] = []
    failures: list[BaseException] = []

    def slot(index: int) -> None:
        worker = Worker(index, options)
        try:
            names = worker.start()
            with lock:
                if not selected.is_set():
                    queue.extend(select(names))
                    selected.set()
            while True:
                with lock:
                    if not queue:
                        return
                    case = queue.popleft()
                record = run_one(worker, case, options.engines)
                with lock:
                    records.append(record)
                    on_record(record)
        except BaseException as exc:  # reported by the caller's thread below
            failures.append(exc)
            selected.set()
        finally:
            worker.stop()

    threads = [threading.Thread(target=slot, args=(i,), daemon=True) for i in range(options.jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return records


def run_one(worker: Worker, case: str, engines: tuple[str, ...]) -> CaseRecord:
    """One case by every engine; an engine a dead worker never reached gets its own fresh worker."""
    results = worker.run(case, engines)
    missing = tuple(engine for engine in engines if engine not in results)
    if missing:
        results.update(worker.run(case, missing))
    return CaseRecord(case, {engine: results[engine] for engine in engines})
