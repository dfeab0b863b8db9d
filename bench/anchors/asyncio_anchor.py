#!/usr/bin/python3
"""asyncio anchor for the grove benchmarks (w1 spawn-join, w2 limited, w3 cancel storm).

w2s (grove's semaphore in a task group) is the same program as w2 here: the
idiomatic asyncio runner is already TaskGroup + Semaphore.

Uses only idiomatic stdlib primitives: asyncio.TaskGroup + asyncio.Semaphore.
With --uvloop the same code runs on uvloop's event loop.
See README.md in this folder for the workload definitions.
"""
import asyncio
import os
import signal
import time

import common

HOUR = 3600.0


async def w1(n, c):
    done = 0

    async def noop():
        nonlocal done
        done += 1

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(noop())
    t1 = time.perf_counter()

    check = "ok" if done == n else f"done={done} != n={n}"
    return {"value": (t1 - t0) * 1e9 / n, "unit": "ns/task", "check": check}


async def w2(n, c):
    sem = asyncio.Semaphore(c)
    done = held = max_held = 0

    async def job():
        nonlocal done, held, max_held
        async with sem:
            held += 1
            max_held = max(max_held, held)
            await asyncio.sleep(0)  # yield to the loop exactly once
            done += 1
            held -= 1

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(job())
    t1 = time.perf_counter()

    problems = []
    if done != n:
        problems.append(f"done={done} != n={n}")
    if max_held != min(c, n):
        problems.append(f"max_held={max_held} != min(c, n)={min(c, n)}")
    return {"value": (t1 - t0) * 1e9 / n, "unit": "ns/job",
            "check": "; ".join(problems) or "ok"}


async def w3(n, c, timeout_s):
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(c)
    all_running = asyncio.Event()
    started = running = cleaned = exited = 0
    t = {}

    async def job():
        nonlocal started, running, cleaned, exited
        try:
            async with sem:
                started += 1  # body entered: only slot holders may get here
                try:
                    running += 1
                    if running == c:
                        all_running.set()  # the C-th runner triggers the storm
                    await asyncio.sleep(HOUR)
                finally:
                    cleaned += 1
        finally:
            exited += 1  # every job, started or not, must be accounted for

    async def storm():
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(n):
                    tg.create_task(job())
                await all_running.wait()
                if timeout_s > 0:
                    signal.alarm(timeout_s)  # hard watchdog for the cancel phase
                t["kill"] = time.perf_counter()
                os.kill(os.getpid(), signal.SIGINT)
                await loop.create_future()  # park until the SIGINT handler cancels us
        except asyncio.CancelledError:
            # Only reached once the TaskGroup has cancelled *and awaited* every child.
            t["done"] = time.perf_counter()
            raise

    # asyncio.TaskGroup has no cancel(); the idiomatic way to cancel a group is to
    # cancel the task that owns it. The TaskGroup then cancels all of its children
    # and waits for them before re-raising CancelledError.
    owner = asyncio.create_task(storm())

    def on_sigint():
        t["sig"] = time.perf_counter()
        owner.cancel()

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        await owner
    except asyncio.CancelledError:
        pass
    finally:
        signal.alarm(0)
        loop.remove_signal_handler(signal.SIGINT)

    problems = []
    if "sig" not in t or "done" not in t:
        problems.append("signal handler did not run / group did not exit via cancellation")
    return common.w3_outcome(t, started, cleaned, exited, n, c, problems)



def main():
    a = common.parse_args(__doc__, lambda ap: ap.add_argument(
        "--uvloop", action="store_true", help="run on uvloop's event loop"))

    loop_factory = None
    if a.uvloop:
        import uvloop
        loop_factory = uvloop.new_event_loop
    common.install_alarm("asyncio_anchor")

    if a.workload == "w3":
        def make():
            return w3(a.n, a.c, a.timeout_s)
    else:
        fn = w1 if a.workload == "w1" else w2  # w2s: the same TaskGroup + Semaphore

        def make():
            return fn(a.n, a.c)

    def once():
        # A fresh event loop per run so runs do not share state.
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(make())

    results = common.repeat(a.repeat, once)

    common.report("uvloop" if a.uvloop else "asyncio", "asyncio_anchor", a, results)


if __name__ == "__main__":
    main()
