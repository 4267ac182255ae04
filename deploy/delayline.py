#!/usr/bin/env python3
"""delayline.py: a TCP relay that adds a fixed one-way delay in each
direction, for deploy/netns.sh on kernels without the netem qdisc (the
network delay a federation of provinces sees, ~10-30 ms one way).

    delayline.py --delay-ms D LISTEN_HOST:PORT=TARGET_HOST:PORT [...]

Each accepted connection is relayed to its target; every chunk read is
written to the other side D ms after it was read, in order, so the relay
adds latency without throttling bandwidth. Closing either side closes the
other once the delayed bytes are written. Python standard library only.
Stops on SIGTERM/SIGINT.
"""
import argparse
import asyncio
import signal
import sys


async def pump(reader, writer, delay_s):
    """Copies reader to writer, each chunk delay_s after it arrived."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay_s, data if data else None))
            if not data:
                break
    except (ConnectionError, OSError):
        queue.put_nowait((loop.time(), None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def relay(client_r, client_w, target, delay_s):
    host, port = target
    try:
        server_r, server_w = await asyncio.open_connection(host, port)
    except OSError as e:
        print("delayline: %s:%d unreachable: %s" % (host, port, e), file=sys.stderr)
        client_w.close()
        return
    await asyncio.gather(pump(client_r, server_w, delay_s), pump(server_r, client_w, delay_s),
                         return_exceptions=True)
    for w in (client_w, server_w):
        w.close()


def parse_pair(text):
    try:
        listen, target = text.split("=", 1)
        lh, lp = listen.rsplit(":", 1)
        th, tp = target.rsplit(":", 1)
        return (lh, int(lp)), (th, int(tp))
    except ValueError:
        raise argparse.ArgumentTypeError("expected LISTEN_HOST:PORT=TARGET_HOST:PORT, got %r" % text)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay-ms", type=float, required=True, help="one-way delay in ms")
    ap.add_argument("pairs", nargs="+", type=parse_pair)
    args = ap.parse_args()
    if args.delay_ms < 0:
        ap.error("--delay-ms must be >= 0")
    delay_s = args.delay_ms / 1000.0
    servers = []
    for (lh, lp), target in args.pairs:
        handler = (lambda t: lambda r, w: relay(r, w, t, delay_s))(target)
        servers.append(await asyncio.start_server(handler, lh, lp))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print("delayline: %d relays, %.1f ms one way" % (len(servers), args.delay_ms), file=sys.stderr)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
