"""Start and stop the demo's processes: `scenarist serve` and the demo workers.

Both run as children in one process group of their own (the server leads it), so a
terminal's Ctrl-C reaches only the demo command, which then stops them in order: workers
first (they finish or release their tasks), then the server, each by pid with SIGTERM
and, after a timeout, SIGKILL. Before the group leader is reaped, the whole group gets a
final SIGKILL, which also catches grandchildren such as an ffmpeg a killed worker left
behind. The leader stays a zombie until then, so its group id cannot be reused meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from scenarist.worker.client import ScenaristClient
from scenarist.worker.errors import ClientError

HEALTH_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_LINES = 30
# The server finishes open long-polls before it exits, so the demo's workers poll briefly:
# stopping the server then takes about this long rather than a full 20 s long-poll.
WORKER_LONG_POLL_SECONDS = 2.0
# `python -c` rather than the console script: the interpreter running the demo is the one
# that has scenarist installed, whatever PATH says.
CLI_BOOTSTRAP = "import sys; from scenarist.cli.main import main; sys.argv[0] = 'scenarist'; main()"


class DemoStartError(RuntimeError):
    """A demo process did not start; the message carries the tail of its log."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def leader_has_exited(pid: int) -> bool:
    """True once `pid` (our child) has exited, without reaping it (see module doc)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


DEMO_DB = "scenarist-demo.db"  # the demo's store, in its output directory


@dataclass
class ChildProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class DemoProcesses:
    """Context manager: `start()` the server and workers; `stop()` everything started."""

    out_dir: Path
    store: str | None = None
    port: int | None = None
    workdir: Path | None = None
    stop_timeout: float = STOP_TIMEOUT_SECONDS
    url: str = ""
    children: list[ChildProcess] = field(default_factory=list)
    _own_workdir: bool = False

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def group_id(self) -> int | None:
        return self.children[0].pid if self.children else None

    def start(self) -> str:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="scenarist-demo-"))
            self._own_workdir = True
        port = self.port or free_loopback_port()
        # Beside the artefacts, so the step cache outlives the run: a second run with the
        # same inputs reuses the first one's steps (their artefacts are still there).
        self.out_dir.mkdir(parents=True, exist_ok=True)
        store = self.store or f"sqlite:///{self.out_dir / DEMO_DB}"
        self.url = f"http://127.0.0.1:{port}"
        serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--store", store]
        # The dashboard previews the artefacts (slides, narration, the MP4) from out_dir.
        env = {**os.environ, "SCENARIST_ARTEFACTS_DIR": str(self.out_dir)}
        server = self._spawn("server", [sys.executable, "-c", CLI_BOOTSTRAP, *serve], env=env)
        self._wait_healthy(server)
        workers = [sys.executable, "-m", "scenarist.demo.workers", "--url", self.url]
        poll = ["--wait-seconds", str(WORKER_LONG_POLL_SECONDS)]
        self._spawn("workers", [*workers, *poll, "--out", str(self.out_dir)])
        return self.url

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ChildProcess:
        assert self.workdir is not None
        log_path = self.workdir / f"{name}.log"
        log_file = log_path.open("wb")
        group = self.group_id or 0  # 0: a new group led by this child (the server)
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            process_group=group, env=env,
        )  # fmt: skip
        child = ChildProcess(name, popen, log_path, log_file)
        self.children.append(child)
        return child

    def _wait_healthy(self, server: ChildProcess) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        with ScenaristClient(self.url) as client:
            while time.monotonic() < deadline:
                if leader_has_exited(server.pid):
                    raise DemoStartError(
                        f"the server exited during start-up:\n{log_tail(server.log_path)}"
                    )
                with contextlib.suppress(ClientError):
                    client.health()
                    return
                time.sleep(0.1)
        raise DemoStartError(
            f"the server did not answer /health within {HEALTH_TIMEOUT_SECONDS:.0f} s:\n"
            f"{log_tail(server.log_path)}"
        )

    def crashed(self) -> ChildProcess | None:
        """The first child that has exited on its own, if any."""
        if not self.children:
            return None
        leader, *others = self.children
        if leader_has_exited(leader.pid):
            return leader
        return next((child for child in others if child.popen.poll() is not None), None)

    def stop(self) -> None:
        """Workers first, then the server; then sweep the group; then reap the leader."""
        with _signals_deferred():
            self._stop_children()

    def _stop_children(self) -> None:
        if self.children:
            leader, *others = self.children
            for child in reversed(others):
                _terminate(child.popen, self.stop_timeout)
            _terminate_leader(leader.popen, self.stop_timeout)
        for child in self.children:
            child.log_file.close()
        self.children = []
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir, self._own_workdir = None, False


class CrashWatch:
    """While the demo waits on the event stream, notice a child that dies on its own and
    interrupt the main thread (a real signal, so a blocking socket read returns)."""

    def __init__(self, processes: DemoProcesses, interval: float = 0.5) -> None:
        self.processes = processes
        self.interval = interval
        self.crashed: ChildProcess | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="demo-crash-watch", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(self.interval):
            crashed = self.processes.crashed()
            if crashed is not None:
                self.crashed = crashed
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                return


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """A second Ctrl-C while stopping must not abandon children half-stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _terminate(popen: subprocess.Popen[bytes], timeout: float) -> None:
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


def _terminate_leader(popen: subprocess.Popen[bytes], timeout: float) -> None:
    if popen.returncode is None and not leader_has_exited(popen.pid):
        popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not leader_has_exited(popen.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if popen.returncode is None:
        # the leader is exited-but-unreaped or still running: its group id is still ours
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()
