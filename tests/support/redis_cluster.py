"""Start a private Redis Cluster (3 masters, optionally one replica each) on free loopback
ports from plain `redis-server` processes; stop every process by its pid.

The cluster is wired from Python (CLUSTER ADDSLOTSRANGE, MEET, REPLICATE) rather than with
`redis-cli --cluster create`, which sleeps a second per convergence check. A small
`cluster-node-timeout` makes a killed master fail over in about two seconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.redis_server import RedisServer, free_port

SLOTS = 16384
NODE_TIMEOUT_MS = 1000
DURABLE_ARGS = ("--appendonly", "yes", "--appendfsync", "always")


def command(port: int, *args: str | int, timeout: float = 2.0) -> str:
    """Send one command over a raw socket; return the reply as text (errors included)."""
    parts = [str(a).encode() for a in args]
    packed = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(packed)
        return _read_reply(sock)


def _read_reply(sock: socket.socket) -> str:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n")
    if head[:1] == b":":  # integer
        return head[1:].decode()
    if head[:1] != b"$":  # simple string or error
        return head.decode()
    length = int(head[1:])
    if length < 0:
        return ""
    while len(rest) < length + 2:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return rest[:length].decode()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis cluster: {what} did not happen within {timeout}s")


@dataclass
class RedisCluster:
    """3 masters (+ `replicas_per_master` replicas each) with slots split evenly."""

    workdir: Path
    masters: int = 3
    replicas_per_master: int = 0
    durable: bool = False  # AOF with appendfsync always on every node
    nodes: list[RedisServer] = field(default_factory=list)
    bus_ports: dict[int, int] = field(default_factory=dict)  # client port -> bus port

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self, timeout: float = 20.0) -> RedisCluster:
        total = self.masters * (1 + self.replicas_per_master)
        try:
            for i in range(total):
                self.nodes.append(self._node(i).start())
            self._assign_slots()
            self._meet(timeout)
            self._attach_replicas(timeout)
            self.wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _node(self, index: int) -> RedisServer:
        bus_port = free_port()
        args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            # The bus port defaults to port + 10000, which may be taken or out of range.
            "--cluster-port", str(bus_port),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            # Without this a replica whose master died a while ago refuses to take over.
            "--cluster-replica-validity-factor", "0",
            "--repl-diskless-sync-delay", "0",  # a fresh replica syncs at once, not in 5 s
            *(DURABLE_ARGS if self.durable else ()),
        )  # fmt: skip
        server = RedisServer(workdir=self.workdir / f"node{index}", extra_args=args)
        self.bus_ports[server.port] = bus_port
        return server

    def _assign_slots(self) -> None:
        per = SLOTS // self.masters
        for i in range(self.masters):
            last = SLOTS - 1 if i == self.masters - 1 else (i + 1) * per - 1
            reply = command(self.ports[i], "CLUSTER", "ADDSLOTSRANGE", i * per, last)
            if reply != "+OK":
                raise RuntimeError(f"CLUSTER ADDSLOTSRANGE on {self.ports[i]}: {reply}")

    def _meet(self, timeout: float) -> None:
        for port in self.ports[1:]:
            first = self.ports[0]
            command(port, "CLUSTER", "MEET", "127.0.0.1", first, self.bus_ports[first])
        count = len(self.nodes)
        wait_until(
            lambda: all(_known_nodes(p) == count for p in self.ports),
            timeout,
            f"all {count} nodes knowing each other",
        )

    def _attach_replicas(self, timeout: float) -> None:
        for i, replica in enumerate(self.nodes[self.masters :]):
            master_id = self.node_id(self.ports[i % self.masters])
            reply = command(replica.port, "CLUSTER", "REPLICATE", master_id)
            if reply != "+OK":
                raise RuntimeError(f"CLUSTER REPLICATE on {replica.port}: {reply}")
        for replica in self.nodes[self.masters :]:
            wait_until(
                lambda port=replica.port: (
                    "master_link_status:up"  # type: ignore[misc]
                    in command(port, "INFO", "replication")
                ),
                timeout,
                f"replica {replica.port} in sync",
            )

    def node_id(self, port: int) -> str:
        return command(port, "CLUSTER", "MYID")

    def wait_ok(self, timeout: float = 20.0) -> None:
        """Every live node reports cluster_state:ok."""
        wait_until(
            lambda: all(
                "cluster_state:ok" in command(n.port, "CLUSTER", "INFO") for n in self.live_nodes()
            ),
            timeout,
            "cluster_state:ok on every node",
        )

    def live_nodes(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def master_of_slot(self, slot: int) -> RedisServer:
        """The live node currently serving `slot` as a master."""
        for node in self.live_nodes():
            info = command(node.port, "INFO", "replication")
            if "role:master" in info and _serves(command(node.port, "CLUSTER", "NODES"), slot):
                return node
        raise RuntimeError(f"no live master serves slot {slot}")

    def flush(self) -> None:
        for node in self.live_nodes():
            if "role:master" in command(node.port, "INFO", "replication"):
                command(node.port, "FLUSHALL")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _known_nodes(port: int) -> int:
    lines = command(port, "CLUSTER", "NODES").splitlines()
    return sum(1 for line in lines if "handshake" not in line and "noaddr" not in line)


def _serves(nodes_output: str, slot: int) -> bool:
    for line in nodes_output.splitlines():
        fields = line.split()
        if "myself" not in fields[2]:
            continue
        for part in fields[8:]:
            low, _, high = part.partition("-")
            if low.isdigit() and int(low) <= slot <= int(high or low):
                return True
    return False
