#!/usr/bin/python3
"""W6 anchors: TCP echo servers in Python asyncio, uvloop and Trio.

    echo_py.py --impl asyncio|uvloop|trio [--port P]   (P = 0: the kernel picks one)

Each listens on 127.0.0.1 only, prints "port N" on stdout, and echoes with
its library's idiomatic coroutine stream API, one task per connection:

- asyncio / uvloop: asyncio.start_server; `data = await reader.read(65536)`,
  `writer.write(data)`, `await writer.drain()` (uvloop: the same code on
  uvloop.new_event_loop()).
- trio: trio.serve_tcp; `data = await stream.receive_some(65536)`,
  `await stream.send_all(data)`.

TCP_NODELAY is on everywhere (asyncio, uvloop and Trio set it on TCP streams
themselves). SIGINT or SIGTERM stops the server; the process exits 0. Runs on
Debian's /usr/bin/python3 (python3-trio, python3-uvloop).
"""
import argparse
import asyncio
import signal
import sys

BUF = 65536


def announce(port):
    print(f"port {port}", flush=True)


async def asyncio_main(port):
    async def echo(reader, writer):
        try:
            while data := await reader.read(BUF):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # a reset: done with this connection
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", port, backlog=4096)
    announce(server.sockets[0].getsockname()[1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


async def trio_main(port):
    import trio

    async def echo(stream):
        try:
            while data := await stream.receive_some(BUF):
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass  # a reset: done with this connection

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                lambda task_status: trio.serve_tcp(echo, port, host="127.0.0.1", backlog=4096,
                                                   task_status=task_status))
            announce(listeners[0].socket.getsockname()[1])
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", required=True, choices=["asyncio", "uvloop", "trio"])
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    if not 0 <= a.port <= 65535:
        ap.error("--port must be 0..65535")
    if a.impl == "trio":
        import trio
        trio.run(trio_main, a.port)
    else:
        loop_factory = None
        if a.impl == "uvloop":
            import uvloop
            loop_factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(asyncio_main(a.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
