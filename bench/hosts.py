"""Test hosts on one machine: network namespaces joined by a bridge, for faults between hosts.

``Network`` makes a switch namespace holding a bridge and one namespace per host, each joined
to the bridge by a veth pair, plus the calling (root) namespace as the control host, so the
harness can reach every host while the faults are injected inside the hosts' own namespaces
with iptables (packets dropped, not refused: a dead or partitioned peer looks as it does on a
real network, not as a refused loopback port). Everything it makes carries one prefix and is
removed by ``close()`` (and at exit); addresses are in a /24 that lives only inside these
namespaces and on the control end of the link.

Needs root, iproute2 and iptables (``Network.available()`` says why not).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

SUBNET = "10.231.77"  # a /24 used by no other interface here; checked before use
CONTROL_SUFFIX = 250


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=check)


@dataclass
class Host:
    """One network namespace with one address on the bridge."""

    name: str
    namespace: str
    address: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        """``args`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(*self.command(*args), check=check)

    def spawn(
        self,
        args: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """A process inside this host, in its own process group, output to ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                self.command(*args),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    # -- faults: iptables in this host's namespace (its own table: nothing else sees them)

    def drop(self, peer: str | None = None, probability: float | None = None) -> None:
        """Drop packets to and from ``peer`` (every peer when None), all of them or a random
        ``probability`` share of each direction."""
        for chain, flag, device in (("OUTPUT", "-d", "-o"), ("INPUT", "-s", "-i")):
            rule = ["iptables", "-w", "-A", chain]
            if peer is not None:
                rule += [flag, peer]
            else:
                rule += ["!", device, "lo"]  # a blackholed host still talks to itself
            if probability is not None:
                rule += ["-m", "statistic", "--mode", "random", "--probability", str(probability)]
            self.run(*rule, "-j", "DROP")

    def heal(self) -> None:
        """Remove every fault rule of this host."""
        for chain in ("INPUT", "OUTPUT"):
            self.run("iptables", "-w", "-F", chain)

    def stop_processes(self, timeout: float = 10.0) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.processes.clear()


class Network:
    """A bridge in its own namespace, hosts around it, and the control host (this namespace)."""

    @staticmethod
    def available() -> str | None:
        """None when hosts can be made here; otherwise why not (one line)."""
        if os.geteuid() != 0:
            return "network namespaces need root"
        for tool in ("ip", "iptables"):
            if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
                return f"{tool} is not installed (apt-get install iproute2 iptables)"
        routes = _run("ip", "-4", "route", check=False).stdout
        if f"{SUBNET}." in routes:
            return f"{SUBNET}.0/24 is already routed on this machine"
        return None

    def __init__(self, names: Sequence[str]) -> None:
        self.prefix = f"kf{os.getpid()}"  # pids stay under 2**22: names fit in 15 bytes
        self.switch = f"{self.prefix}-sw"
        self.control = f"{SUBNET}.{CONTROL_SUFFIX}"
        self.hosts = {
            name: Host(name, f"{self.prefix}-{name}", f"{SUBNET}.{index + 1}")
            for index, name in enumerate(names)
        }
        self._made: list[str] = []
        self._control_link = f"{self.prefix}c"
        atexit.register(self.close)

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def _link(self, inside: str, outside: str, namespace: str | None, address: str) -> None:
        """A veth pair: ``inside`` in ``namespace`` (this one when None) with ``address``,
        ``outside`` on the switch's bridge."""
        _run("ip", "link", "add", inside, "type", "veth", "peer", "name", outside)
        if namespace is not None:
            _run("ip", "link", "set", inside, "netns", namespace)
        _run("ip", "link", "set", outside, "netns", self.switch)
        in_ns = ["ip", "netns", "exec", namespace] if namespace is not None else []
        _run(*in_ns, "ip", "addr", "add", f"{address}/24", "dev", inside)
        _run(*in_ns, "ip", "link", "set", inside, "up")
        sw = ["ip", "netns", "exec", self.switch]
        _run(*sw, "ip", "link", "set", outside, "master", "br0")
        _run(*sw, "ip", "link", "set", outside, "up")

    @staticmethod
    def remove_stale() -> None:
        """Remove what an earlier run that was killed left behind (its pid is gone)."""
        listed = _run("ip", "netns", "list", check=False).stdout.split()
        for name in listed:
            owner = name.partition("-")[0]
            if not (owner.startswith("kf") and owner[2:].isdigit()):
                continue
            if Path(f"/proc/{owner[2:]}").exists():
                continue
            _run("ip", "netns", "del", name, check=False)
            _run("ip", "link", "del", f"{owner}c", check=False)

    def open(self) -> Network:
        why = self.available()
        if why is not None:
            raise RuntimeError(why)
        self.remove_stale()
        try:
            _run("ip", "netns", "add", self.switch)
            self._made.append(self.switch)
            sw = ["ip", "netns", "exec", self.switch]
            _run(*sw, "ip", "link", "add", "br0", "type", "bridge")
            _run(*sw, "ip", "link", "set", "br0", "up")
            _run(*sw, "ip", "link", "set", "lo", "up")
            for index, host in enumerate(self.hosts.values()):
                _run("ip", "netns", "add", host.namespace)
                self._made.append(host.namespace)
                host.run("ip", "link", "set", "lo", "up")
                inside, outside = f"{self.prefix}h{index}", f"{self.prefix}s{index}"
                self._link(inside, outside, host.namespace, host.address)
            self._link(self._control_link, f"{self.prefix}sc", None, self.control)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                host.stop_processes()
        if self._made or self._control_link:
            _run("ip", "link", "del", self._control_link, check=False)
        for namespace in reversed(self._made):
            _run("ip", "netns", "del", namespace, check=False)
        self._made.clear()

    def heal(self) -> None:
        for host in self.hosts.values():
            host.heal()

    def __enter__(self) -> Network:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def network(*names: str) -> Iterator[Network]:
    with Network(names) as net:
        yield net
