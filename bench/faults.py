"""Faults between hosts: orders, catalog and Postgres on hosts of their own, the load on a fourth.

``python -m bench.faults`` builds the hosts (bench/hosts.py: network namespaces on a bridge),
starts Postgres on one, the catalog on a second and orders on a third, and sends orders from
the control host while it injects, one scenario at a time, on one link:

- ``latency``: 200 ms more per round trip (bench/delay_proxy.py sits on every link and delays
  each chunk 100 ms each way while the fault lasts; this kernel has no netem);
- ``loss``: 10% of packets dropped each way (iptables ``-m statistic``);
- ``partition``: every packet between the two hosts dropped (iptables DROP), then healed;
- ``blackhole``: the peer host drops everything it is sent, from anyone.

Links: orders→catalog, catalog→Postgres, orders→Postgres. For each scenario it reports the
answers by status, 500s, the slowest answer against the deadline, orders acknowledged (201)
against orders stored, confirmations received by the notification endpoint, and the time from
the end of the fault to steady success. ``--quick`` runs one scenario per fault kind.
Results: a JSON file in bench/results/ and a Markdown table on stdout (``--markdown FILE``).
Needs root, iproute2 and iptables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.hosts import Host, Network
from kit.db.embedded import Cluster
from kit.security.tokens import mint_token
from kit.settings import Settings

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PG_PORT = 5432
APP_PORT = 8000
DB_PROXY_PORT = 6432
CATALOG_PROXY_PORT = 8001
NOTIFY_PORT = 8100
REQUEST_TIMEOUT = 3.0  # KIT_REQUEST_TIMEOUT of both services: the deadline every answer keeps
SLACK = 1.0  # an answer later than the deadline by more than this counts as late
FAULTS = ("latency", "loss", "partition", "blackhole")
LINKS = ("orders-catalog", "catalog-postgres", "orders-postgres")


# -- the notification endpoint orders confirms to (on the control host)


class Confirmations:
    """Order ids POSTed to /notifications, with how often each arrived."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.lock = threading.Lock()

    def serve(self, address: str, port: int) -> http.server.ThreadingHTTPServer:
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), 4096)
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    order_id = int(json.loads(self.rfile.read(length))["order_id"])
                    with store.lock:
                        store.seen[order_id] = store.seen.get(order_id, 0) + 1
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer((address, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


# -- Postgres on its host


class HostCluster(Cluster):
    """The embedded Postgres run inside a host's namespace (as its system user)."""

    namespace = ""

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            command = [
                "setpriv",
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--clear-groups",
                *command,
            ]
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
        )


@dataclass
class Stack:
    net: Network
    work: Path
    runtime: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    confirmations: Confirmations = field(default_factory=Confirmations)
    proxies: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    cluster: HostCluster | None = None

    @property
    def pg(self) -> Host:
        return self.net["postgres"]

    @property
    def catalog(self) -> Host:
        return self.net["catalog"]

    @property
    def orders(self) -> Host:
        return self.net["orders"]

    def url(self, host: Host) -> str:
        return f"http://{host.address}:{APP_PORT}"

    def start(self) -> None:
        cluster = HostCluster(self.work / "pgdata", port=PG_PORT, host=self.pg.address)
        cluster.namespace = self.pg.namespace
        cluster.settings["max_connections"] = "200"
        cluster.initialize()
        with (cluster.pgdata / "pg_hba.conf").open("a") as hba:
            hba.write(f"\nhost all all {self.pg.address.rsplit('.', 1)[0]}.0/24 trust\n")
        cluster.start()
        self.cluster = cluster
        asyncio.run(self._databases())
        self.confirmations.serve(self.net.control, NOTIFY_PORT)
        pg = f"{self.pg.address}:{PG_PORT}"
        self._proxy("catalog-postgres", self.catalog, f"127.0.0.1:{DB_PROXY_PORT}", pg)
        self._proxy("orders-postgres", self.orders, f"127.0.0.1:{DB_PROXY_PORT}", pg)
        catalog = f"{self.catalog.address}:{APP_PORT}"
        self._proxy("orders-catalog", self.orders, f"127.0.0.1:{CATALOG_PROXY_PORT}", catalog)
        common = {
            "KIT_RUNTIME": self.runtime,
            "KIT_AUTH_JWT_SECRET": self.secret,
            "KIT_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
            "KIT_MIGRATE": "0",
            "KIT_LOG_FORMAT": "json",
            "KIT_ACCESS_LOG": "0",
            "PYTHONPATH": str(REPO),
        }
        db = f"postgresql://postgres@127.0.0.1:{DB_PROXY_PORT}"
        self._serve(
            self.catalog, "services.catalog.app:app", DATABASE_URL=f"{db}/catalog", **common
        )
        self._serve(
            self.orders,
            "services.orders.app:app",
            DATABASE_URL=f"{db}/orders",
            CATALOG_URL=f"http://127.0.0.1:{CATALOG_PROXY_PORT}",
            ORDERS_NOTIFY_URL=f"http://{self.net.control}:{NOTIFY_PORT}",
            ORDERS_CATALOG_CACHE_TTL="0",  # every order asks the catalog
            **common,
        )
        for host in (self.catalog, self.orders):
            self._wait_ready(host)

    async def _databases(self) -> None:
        import asyncpg

        from kit.db.migrate import apply_migrations

        base = f"postgresql://postgres@{self.pg.address}:{PG_PORT}"
        admin = await asyncpg.connect(f"{base}/postgres", timeout=30)
        try:
            for name in ("catalog", "orders"):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        for name in ("catalog", "orders"):
            await apply_migrations(f"{base}/{name}", REPO / "services" / name / "migrations")

    def _proxy(self, link: str, host: Host, listen: str, target: str) -> None:
        log = self.work / f"proxy-{link}.log"
        self.proxies[link] = host.spawn(
            [sys.executable, "-m", "bench.delay_proxy", listen, target, "--delay-ms", "100"],
            log=log,
            cwd=REPO,
        )
        deadline = time.monotonic() + 30
        while "delay_proxy:" not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or self.proxies[link].poll() is not None:
                raise RuntimeError(f"the {link} proxy did not start: {log.read_text()}")
            time.sleep(0.05)

    def _serve(self, host: Host, app: str, **env: str) -> None:
        command = [sys.executable, "-m", "kit.cli", "serve", app]
        command += ["--host", "0.0.0.0", "--port", str(APP_PORT)]
        host.spawn(command, log=self.work / f"{host.name}.log", env=env, cwd=REPO)

    def _wait_ready(self, host: Host, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url(host)}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        log = (self.work / f"{host.name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{host.name} was not ready in {timeout:.0f} s:\n{log}")

    def token(self, scope: str) -> dict[str, str]:
        settings = Settings.from_env({"KIT_AUTH_JWT_SECRET": self.secret})
        token = mint_token(settings, scopes=[scope], expires_in=24 * 3600)
        return {"authorization": f"Bearer {token}"}

    def seed(self) -> list[int]:
        """Three products for sale in the catalog; their ids."""
        ids = []
        with httpx.Client(base_url=self.url(self.catalog), timeout=10) as http:
            for n in range(3):
                body = {
                    "sku": f"FAULT-{n}",
                    "name": f"fault product {n}",
                    "price_cents": 100 + n,
                    "status": "active",
                }
                answer = http.post("/products", json=body, headers=self.token("catalog:write"))
                answer.raise_for_status()
                ids.append(int(answer.json()["id"]))
        return ids

    def stored_orders(self) -> set[int]:
        async def read() -> set[int]:
            import asyncpg

            url = f"postgresql://postgres@{self.pg.address}:{PG_PORT}/orders"
            conn = await asyncpg.connect(url, timeout=30)
            try:
                return {row["id"] for row in await conn.fetch("SELECT id FROM orders")}
            finally:
                await conn.close()

        return asyncio.run(read())

    def stop(self) -> None:
        for host in self.net.hosts.values():
            host.stop_processes()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.destroy()


# -- one scenario


@dataclass
class Answer:
    sent: float  # seconds since the scenario started
    took: float
    status: int  # 0: no answer (the client gave up or the connection broke)
    order_id: int | None = None
    retry_after: bool = False


@dataclass
class Outcome:
    link: str
    fault: str
    runtime: str
    requests: int
    by_status: dict[str, int]
    server_errors: int
    no_answer: int
    slowest_s: float
    late: int
    acknowledged: int
    stored: int
    stored_not_acknowledged: int
    acknowledged_not_stored: int
    confirmed: int
    acknowledged_not_confirmed: int
    confirmed_twice: int
    recovery_s: float | None
    retry_after_missing: int
    fault_s: float


def _inject(stack: Stack, link: str, fault: str) -> None:
    near_name, far_name = link.split("-")
    near, far = stack.net[near_name], stack.net[far_name]
    if fault == "latency":
        stack.proxies[link].send_signal(signal.SIGUSR1)
    elif fault == "loss":
        near.drop(far.address, probability=0.1)
    elif fault == "partition":
        near.drop(far.address)
    elif fault == "blackhole":
        far.drop()
    else:
        raise ValueError(fault)


def _heal(stack: Stack, link: str, fault: str) -> None:
    if fault == "latency":
        stack.proxies[link].send_signal(signal.SIGUSR2)
    stack.net.heal()


async def _load(
    stack: Stack,
    products: list[int],
    answers: list[Answer],
    started: float,
    stop: asyncio.Event,
    clients: int,
) -> None:
    headers = stack.token("orders:write")

    async def one(http: httpx.AsyncClient, n: int) -> None:
        body = {"lines": [{"product_id": products[n % len(products)], "quantity": 1}]}
        sent = time.monotonic()
        try:
            answer = await http.post("/orders", json=body, headers=headers)
        except httpx.HTTPError:
            answers.append(Answer(sent - started, time.monotonic() - sent, 0))
            return
        order_id = answer.json().get("id") if answer.status_code == 201 else None
        answers.append(
            Answer(
                sent - started,
                time.monotonic() - sent,
                answer.status_code,
                order_id,
                "retry-after" in answer.headers,
            )
        )

    async def client(index: int) -> None:
        limits = httpx.Limits(max_connections=1)
        timeout = httpx.Timeout(REQUEST_TIMEOUT * 4)
        async with httpx.AsyncClient(
            base_url=stack.url(stack.orders), limits=limits, timeout=timeout
        ) as http:
            n = index
            while not stop.is_set():
                await one(http, n)
                n += clients

    await asyncio.gather(*(client(i) for i in range(clients)))


def run_scenario(
    stack: Stack,
    products: list[int],
    link: str,
    fault: str,
    *,
    before: float = 3.0,
    during: float = 10.0,
    after: float = 10.0,
    clients: int = 8,
) -> Outcome:
    """Send orders for ``before`` s, inject ``fault`` on ``link`` for ``during`` s, heal, and
    keep sending for ``after`` s; then wait for confirmations to settle and count."""
    stored_before = stack.stored_orders()
    answers: list[Answer] = []

    async def drive() -> tuple[float, float]:
        stop = asyncio.Event()
        started = time.monotonic()
        load = asyncio.create_task(_load(stack, products, answers, started, stop, clients))
        await asyncio.sleep(before)
        fault_at = time.monotonic() - started
        await asyncio.to_thread(_inject, stack, link, fault)
        await asyncio.sleep(during)
        await asyncio.to_thread(_heal, stack, link, fault)
        healed_at = time.monotonic() - started
        await asyncio.sleep(after)
        stop.set()
        await asyncio.wait_for(load, REQUEST_TIMEOUT * 5)
        return fault_at, healed_at

    try:
        fault_at, healed_at = asyncio.run(drive())
    finally:
        _heal(stack, link, fault)
    acknowledged = {a.order_id for a in answers if a.status == 201 and a.order_id is not None}
    # confirmations run after the response: give them time to land (bounded)
    deadline = time.monotonic() + 60
    while True:
        stored = stack.stored_orders() - stored_before
        with stack.confirmations.lock:
            confirmed = {i for i in stored if i in stack.confirmations.seen}
        if confirmed >= stored | acknowledged or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    with stack.confirmations.lock:
        twice = sum(1 for i in stored if stack.confirmations.seen.get(i, 0) > 1)
    by_status: dict[str, int] = {}
    for a in answers:
        key = str(a.status) if a.status else "none"
        by_status[key] = by_status.get(key, 0) + 1
    return Outcome(
        link=link,
        fault=fault,
        runtime=stack.runtime,
        requests=len(answers),
        by_status=dict(sorted(by_status.items())),
        server_errors=sum(1 for a in answers if a.status == 500),
        no_answer=sum(1 for a in answers if a.status == 0),
        slowest_s=round(max((a.took for a in answers), default=0.0), 3),
        late=sum(1 for a in answers if a.took > REQUEST_TIMEOUT + SLACK),
        acknowledged=len(acknowledged),
        stored=len(stored),
        stored_not_acknowledged=len(stored - acknowledged),
        acknowledged_not_stored=len(acknowledged - stored),
        confirmed=len(confirmed),
        acknowledged_not_confirmed=len(acknowledged - confirmed),
        confirmed_twice=twice,
        recovery_s=_recovery(answers, healed_at),
        retry_after_missing=sum(1 for a in answers if a.status in (503, 504) and not a.retry_after),
        fault_s=round(healed_at - fault_at, 1),
    )


def _recovery(answers: list[Answer], healed_at: float) -> float | None:
    """Seconds from the heal to the first request sent after which every answer was a 201;
    None if the load ended before that."""
    after = sorted((a for a in answers if a.sent >= healed_at), key=lambda a: a.sent)
    steady: Answer | None = None
    for a in after:
        steady = (steady or a) if a.status == 201 else None
    if steady is None:
        return None
    return round(max(0.0, steady.sent - healed_at), 2)


# -- the whole run


@contextlib.contextmanager
def stack(runtime: str, work: Path) -> Iterator[Stack]:
    with Network(("postgres", "catalog", "orders")) as net:
        built = Stack(net, work, runtime)
        try:
            built.start()
            yield built
        finally:
            built.stop()


def markdown(outcomes: list[Outcome]) -> str:
    lines = [
        "| link | fault | requests | 201 | 503 | 504 | other | 500 | slowest (s) | late "
        "| stored = acked | confirmed / stored | recovery (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        known = {"201", "503", "504", "500"}
        other = sum(n for status, n in o.by_status.items() if status not in known)
        equal = (
            "yes"
            if o.stored_not_acknowledged == o.acknowledged_not_stored == 0
            else f"no (+{o.stored_not_acknowledged} / -{o.acknowledged_not_stored})"
        )
        recovery = "—" if o.recovery_s is None else f"{o.recovery_s:.2f}"
        lines.append(
            f"| {o.link} | {o.fault} | {o.requests} | {o.by_status.get('201', 0)} "
            f"| {o.by_status.get('503', 0)} | {o.by_status.get('504', 0)} | {other} "
            f"| {o.server_errors} | {o.slowest_s:.2f} | {o.late} | {equal} "
            f"| {o.confirmed} / {o.stored} | {recovery} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--runtime", default=os.environ.get("KIT_RUNTIME", "granian"))
    parser.add_argument("--link", action="append", choices=LINKS)
    parser.add_argument("--fault", action="append", choices=FAULTS)
    parser.add_argument("--during", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="one link per fault kind")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    why = Network.available()
    if why is not None:
        print(f"bench.faults: {why}", file=sys.stderr)
        return 2
    if args.quick:
        plan = list(zip(FAULTS, ("orders-catalog", "orders-postgres") * 2, strict=True))
        plan = [(link, fault) for fault, link in plan]
    else:
        plan = [(link, fault) for link in args.link or LINKS for fault in args.fault or FAULTS]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="kit-faults-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # the Postgres system user reaches its data directory
        with stack(args.runtime, work) as built:
            products = built.seed()
            for link, fault in plan:
                outcome = run_scenario(
                    built,
                    products,
                    link,
                    fault,
                    during=args.during,
                    after=args.after,
                    clients=args.clients,
                )
                outcomes.append(outcome)
                print(json.dumps(asdict(outcome)), flush=True)
    table = markdown(outcomes)
    print(table)
    if args.markdown is not None:
        args.markdown.write_text(table)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
        report = {
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "method": {
                "hosts": "network namespaces on one bridge; the load on the control host",
                "request_timeout_s": REQUEST_TIMEOUT,
                "clients": args.clients,
                "during_s": args.during,
                "after_s": args.after,
                "runtime": args.runtime,
            },
            "records": [asdict(o) for o in outcomes],
        }
        (RESULTS / f"faults-{stamp}.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
