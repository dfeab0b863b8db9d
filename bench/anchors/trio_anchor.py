#!/usr/bin/python3
"""Trio anchor for the grove benchmarks (w1 spawn-join, w2 limited, w3 cancel storm, w7 cancel blocked reads).

Uses only idiomatic Trio primitives: a nursery + trio.CapacityLimiter. w2s
(grove's semaphore in a task group) is the same program as w2 here.
See README.md in this folder for the workload definitions.
"""
import os
import signal
import socket
import time

import common

import trio
import trio.testing

HOUR = 3600.0


async def w1(n, c):
    done = 0

    async def noop():
        nonlocal done
        done += 1

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(noop)
    t1 = time.perf_counter()

    check = "ok" if done == n else f"done={done} != n={n}"
    return {"value": (t1 - t0) * 1e9 / n, "unit": "ns/task", "check": check}


async def w2(n, c):
    limiter = trio.CapacityLimiter(c)
    done = held = max_held = 0

    async def job():
        nonlocal done, held, max_held
        async with limiter:
            held += 1
            max_held = max(max_held, held)
            await trio.lowlevel.checkpoint()  # yield to the scheduler exactly once
            done += 1
            held -= 1

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(job)
    t1 = time.perf_counter()

    problems = []
    if done != n:
        problems.append(f"done={done} != n={n}")
    if max_held != min(c, n):
        problems.append(f"max_held={max_held} != min(c, n)={min(c, n)}")
    return {"value": (t1 - t0) * 1e9 / n, "unit": "ns/job",
            "check": "; ".join(problems) or "ok"}


async def w3(n, c, timeout_s):
    limiter = trio.CapacityLimiter(c)
    all_running = trio.Event()
    started = running = cleaned = exited = 0
    t = {}

    async def job():
        nonlocal started, running, cleaned, exited
        try:
            async with limiter:
                started += 1  # body entered: only slot holders may get here
                try:
                    running += 1
                    if running == c:
                        all_running.set()  # the C-th runner triggers the storm
                    await trio.sleep(HOUR)
                finally:
                    cleaned += 1
        finally:
            exited += 1  # every job, started or not, must be accounted for

    # The receiver must exist before the kill, otherwise SIGINT would become
    # KeyboardInterrupt. Trio delivers the signal to the loop, which wakes the
    # task iterating the receiver; that wake-up is our "signal handler".
    with trio.open_signal_receiver(signal.SIGINT) as sigints:
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(job)
            await all_running.wait()
            if timeout_s > 0:
                signal.alarm(timeout_s)  # hard watchdog for the cancel phase
            t["kill"] = time.perf_counter()
            os.kill(os.getpid(), signal.SIGINT)
            async for _ in sigints:
                t["sig"] = time.perf_counter()
                nursery.cancel_scope.cancel()  # idiomatic: cancel the nursery's scope
                break
        # Only reached once the nursery has cancelled *and awaited* every child.
        t["done"] = time.perf_counter()
    signal.alarm(0)

    return common.w3_outcome(t, started, cleaned, exited, n, c)


async def w7(n, c):
    # N socket pairs, each end wrapped as a trio.SocketStream (Trio makes the
    # sockets non-blocking; CPython creates them close-on-exec). Nothing is
    # ever written, so every reader blocks. The sockets outlive the nursery:
    # closing them is not timed.
    pairs = [trio.socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(n)]
    streams = [trio.SocketStream(r) for r, _ in pairs]
    entered = returned = unwound = 0

    async def reader(stream):
        nonlocal entered, returned, unwound
        try:
            entered += 1
            await stream.receive_some(64)
            returned += 1  # never: no byte is ever sent
        finally:
            unwound += 1

    try:
        async with trio.open_nursery() as nursery:
            for s in streams:
                nursery.start_soon(reader, s)
            for _ in range(100):
                if entered == n:
                    break
                await trio.sleep(0.02)
            await trio.testing.wait_all_tasks_blocked()  # every reader waits in epoll
            t0 = time.perf_counter()
            nursery.cancel_scope.cancel()  # idiomatic: cancel the nursery's scope
            t_cancelled = time.perf_counter()
        # Only reached once every child has unwound.
        t1 = time.perf_counter()
    finally:
        for r, w in pairs:
            r.close()
            w.close()

    problems = []
    if entered != n or returned != 0 or unwound != n:
        problems.append(f"entered={entered} returned={returned} unwound={unwound} (want {n}, 0, {n})")
    return {"value": (t1 - t0) * 1e3, "unit": "ms", "cancel_call_ms": (t_cancelled - t0) * 1e3,
            "check": "; ".join(problems) or "ok"}


def main():
    a = common.parse_args(__doc__, workloads=("w1", "w2", "w2s", "w3", "w7"))

    extra = None
    if a.workload == "w7":
        problem, nofile = common.raise_nofile(2 * a.n + 64)
        extra = {"nofile": nofile}
        if problem:
            common.report("trio", "trio_anchor", a, [{"value": None, "unit": "ms", "check": problem}], extra)

    common.install_alarm("trio_anchor")

    def once():
        # A fresh trio.run per run so runs do not share state.
        if a.workload == "w3":
            return trio.run(w3, a.n, a.c, a.timeout_s)
        return trio.run({"w1": w1, "w2": w2, "w2s": w2, "w7": w7}[a.workload], a.n, a.c)

    results = common.repeat(a.repeat, once)

    common.report("trio", "trio_anchor", a, results, extra)


if __name__ == "__main__":
    main()
