"""A TCP proxy that can add latency, for faults between hosts (this kernel has no netem).

``python -m bench.delay_proxy LISTEN_HOST:PORT TARGET_HOST:PORT --delay-ms 100`` forwards every
connection to the target; while delaying (SIGUSR1 turns it on, SIGUSR2 off), each chunk waits
``--delay-ms`` before it is passed on, in each direction, so a round trip gains twice that.
Chunks keep their order (one queue per direction); the proxy itself never drops data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time

CHUNK = 65536


class Delay:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.on = False


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: Delay) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(CHUNK)
            due = time.monotonic() + (delay.seconds if delay.on else 0.0)
            await queue.put((due, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(BaseException):
            await sender
        with contextlib.suppress(BaseException):
            writer.close()


async def _serve(listen: tuple[str, int], target: tuple[str, int], delay: Delay) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer, delay), _pump(up_reader, writer, delay))

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(delay, "on", True))
    loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(delay, "on", False))
    server = await asyncio.start_server(handle, *listen, backlog=1024)
    print(f"delay_proxy: {listen[0]}:{listen[1]} -> {target[0]}:{target[1]}", flush=True)
    async with server:
        await server.serve_forever()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("listen", type=_address)
    parser.add_argument("target", type=_address)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--on", action="store_true", help="start delaying")
    args = parser.parse_args()
    delay = Delay(args.delay_ms / 1000)
    delay.on = args.on
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.listen, args.target, delay))


if __name__ == "__main__":
    main()
