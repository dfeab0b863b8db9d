#!/usr/bin/python3
"""W6 driver: TCP echo ping-pong on loopback, every server against the same
load generator (bench/w6/README.md). Usage:

    bench/w6/driver.py [--build DIR] [--quick] [--rounds R] [--duration-s D] [--servers a,b]
                       [--build-tokio]

For each round, for each server (interleaved, so the machine's noise falls on
all of them alike): start a fresh server process pinned to CPU 0, run
echo_load pinned to CPU 1 for every message size x connection count, stop the
server with SIGTERM (it must exit 0). Then a table: per cell the median over
the rounds of requests/s, how much it moved (max - min, as % of the median),
and the medians of the rounds' p50 and p99 latencies. bench/run imports this
module and writes the table into docs/benchmarks.md.
"""
import argparse
import glob
import json
import os
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = "/usr/bin/python3"
ECHO_PY = os.path.join(ROOT, "bench/w6/echo_py.py")

# The Tokio anchor is a Cargo package, built offline from Debian's crate
# sources (librust-tokio-dev) into the build's bench/echo_tokio-target by
# build_tokio() (bench/run calls it; by hand: bench/w6/README.md).
TOKIO_DIR = os.path.join(ROOT, "bench/w6/echo_tokio")
DEBIAN_CRATES = "/usr/share/cargo/registry"
TOKIO_TARGET = "echo_tokio-target"
TOKIO_PROG = os.path.join(TOKIO_TARGET, "release", "echo_tokio")


def tokio_version():
    """The version of Debian's packaged tokio crate, or None."""
    found = sorted(glob.glob(os.path.join(DEBIAN_CRATES, "tokio-1.*")))
    return os.path.basename(found[-1])[len("tokio-"):] if found else None


def find_cargo():
    """cargo on PATH, else rustup's in ~/.cargo/bin, else None."""
    home = os.path.expanduser("~/.cargo/bin/cargo")
    return shutil.which("cargo") or (home if os.access(home, os.X_OK) else None)


def tokio_build_command(build, cargo="cargo"):
    """The cargo command, run in TOKIO_DIR (where .cargo/config.toml points it
    at Debian's crates, offline), that puts echo_tokio under build."""
    return [cargo, "build", "--release", "--offline", "--quiet",
            "--target-dir", os.path.relpath(os.path.join(build, TOKIO_TARGET), TOKIO_DIR)]


def build_tokio(build, timeout=900):
    """Builds echo_tokio into build. Returns None when it is built, else why
    not ("not built: ..."): no cargo, no Debian tokio crates, or the build failed."""
    cargo = find_cargo()
    if not cargo:
        return "not built: no cargo (bench/w6/README.md)"
    if not tokio_version():
        return f"not built: no tokio crate in {DEBIAN_CRATES} (apt-get install librust-tokio-dev)"
    try:
        p = subprocess.run(tokio_build_command(build, cargo), cwd=TOKIO_DIR, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"not built: cargo build did not finish in {timeout} s"
    if p.returncode != 0 or not os.access(os.path.join(build, TOKIO_PROG), os.X_OK):
        sys.stderr.write(f"W6: cargo build of echo_tokio failed ({p.returncode}):\n{p.stderr[-2000:]}\n")
        last = next((l.strip() for l in reversed(p.stderr.splitlines()) if l.strip()), "")
        return f"not built: cargo build failed ({last[:120]})"
    return None


# (key, label, program in the build's bench/ dir or a Python command, what is
# missing if it is absent). grove's server is bench/grove_echo, built from
# bench/w6/echo_grove.cpp (when that file exists: it needs grove's TCP layer).
SERVERS = [
    ("grove", "grove (`grove_echo`)", "grove_echo",
     "not built" if os.path.exists(os.path.join(ROOT, "bench/w6/echo_grove.cpp"))
     else "waits for grove's TCP layer (bench/w6/echo_grove.cpp)"),
    ("epoll", "raw epoll, C (`echo_epoll`)", "echo_epoll", "not built"),
    ("asio", "Boost.Asio 1.74, C++20 coroutines (`echo_asio`)", "echo_asio", "not built (no Boost headers)"),
    ("tokio", f"Tokio{' ' + tokio_version() if tokio_version() else ''}, `current_thread` runtime (`echo_tokio`)",
     TOKIO_PROG, "not built (`--build-tokio` or bench/run builds it)"),
    ("asyncio", "asyncio streams", [PY, ECHO_PY, "--impl", "asyncio"], None),
    ("uvloop", "uvloop, asyncio streams", [PY, ECHO_PY, "--impl", "uvloop"], None),
    ("trio", "Trio `serve_tcp`", [PY, ECHO_PY, "--impl", "trio"], None),
]
# grove::run ends a signal shutdown by re-raising the signal: for grove_echo,
# death by SIGTERM is the clean stop.
EXIT_BY_SIGTERM_OK = {"grove"}
SIZES = (64, 1024)
CONNS = (1, 16, 256)


def rel(c):
    return os.path.relpath(c, ROOT) if c.startswith(ROOT) else c


def quote(cmd):
    return " ".join(shlex.quote(rel(c)) for c in cmd)


def pin(cpu):
    """taskset prefix, or none on a machine with a single CPU."""
    return ["taskset", "-c", str(cpu)] if (os.cpu_count() or 1) >= 2 else []


def server_command(build, prog):
    if isinstance(prog, list):
        return prog
    path = os.path.join(build, prog)
    return [path] if os.access(path, os.X_OK) else None


class Server:
    """A server process pinned to CPU 0; its port is read from its "port N" line."""

    def __init__(self, cmd, timeout=15):
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(pin(0) + cmd + ["--port", "0"], stdout=subprocess.PIPE,
                                  stderr=self.err, text=True)
        self.port = None
        deadline = time.monotonic() + timeout
        while self.port is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.p.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = self.p.stdout.readline()
            if not line:
                break
            if line.startswith("port "):
                self.port = int(line.split()[1])
        if self.port is None:
            self.stop()
            raise RuntimeError(f"no 'port N' line within {timeout} s: {self.stderr()}")

    def stderr(self):
        self.err.seek(0)
        return self.err.read()[-500:]

    def stop(self, timeout=10, by_signal_ok=False):
        """SIGTERM; returns None when it exited 0 (or, if by_signal_ok, died
        by SIGTERM), else what went wrong."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return f"did not exit within {timeout} s of SIGTERM"
        finally:
            self.p.stdout.close()
        if rc == 0 or (by_signal_ok and rc == -signal.SIGTERM):
            return None
        return f"exited with status {rc} on SIGTERM: {self.stderr()}"


def load(build, port, conns, size, duration, warmup, commands):
    cmd = pin(1) + [os.path.join(build, "echo_load"), "--port", str(port), "--conns", str(conns),
                    "--size", str(size), "--duration-s", str(duration), "--warmup-s", str(warmup)]
    commands.append(quote(cmd).replace(f"--port {port}", "--port PORT"))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + warmup + 30)
    except subprocess.TimeoutExpired:
        return {"check": "echo_load did not finish"}
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        return {"check": f"echo_load failed ({p.returncode}): {p.stderr[-300:]}"}
    return json.loads(lines[-1])


def measure(build, sizes=SIZES, conns=CONNS, duration=1.0, warmup=0.25, rounds=3, only=None,
            log=print, commands=None, not_built=None):
    """Runs the matrix. not_built: {key: why} for servers not to run, whatever
    is in build (bench/run: a Tokio build that failed). Returns {"servers":
    {key: {"label", "note", "cells": {"size/conns": [runs]}}}, "config": {...}}."""
    commands = [] if commands is None else commands
    out = {"config": {"sizes": list(sizes), "conns": list(conns), "duration_s": duration,
                      "warmup_s": warmup, "rounds": rounds, "pinned": bool(pin(0))},
           "servers": {}}
    live = []
    for key, label, prog, missing in SERVERS:
        if only and key not in only:
            continue
        cmd = server_command(build, prog)
        if not_built and not_built.get(key):
            cmd, missing = None, not_built[key]
        out["servers"][key] = {"label": label, "note": None if cmd else missing, "cells": {},
                               "command": quote(pin(0) + cmd + ["--port", "0"]) if cmd else None}
        if cmd:
            live.append((key, cmd))
            commands.append(out["servers"][key]["command"])
    for r in range(rounds):
        for key, cmd in live:
            s = out["servers"][key]
            if s["note"] and s["note"].startswith("failed"):
                continue
            log(f"  W6 round {r + 1}/{rounds}: {key}", flush=True)
            try:
                server = Server(cmd)
            except RuntimeError as e:
                s["note"] = f"failed to start: {e}"
                continue
            for size in sizes:
                for c in conns:
                    res = load(build, server.port, c, size, duration, warmup, commands)
                    s["cells"].setdefault(f"{size}/{c}", []).append(res)
                    if server.p.poll() is not None:
                        break
            problem = server.stop(by_signal_ok=key in EXIT_BY_SIGTERM_OK)
            if problem:
                s["note"] = f"failed: {problem}"
    return out


def summarize(runs):
    """Median and movement over the rounds of one cell, or None if any failed."""
    good = [r for r in runs if r.get("check") == "ok"]
    if not good or len(good) != len(runs):
        bad = [r.get("check") for r in runs if r.get("check") != "ok"]
        return {"error": bad[0] if bad else "no run"}
    rps = [r["rps"] for r in good]
    med = statistics.median(rps)
    return {"rps": med, "moved": (max(rps) - min(rps)) / med if med else 0.0,
            "p50_us": statistics.median(r["p50_us"] for r in good),
            "p99_us": statistics.median(r["p99_us"] for r in good), "rounds": len(good)}


def fmt_rps(v):
    return f"{v / 1000:,.1f}k" if v >= 1000 else f"{v:,.0f}"


def fmt_us(v):
    return f"{v / 1000:,.1f} ms" if v >= 1000 else f"{v:,.0f} µs"


def table(result):
    """Markdown lines: one table per message size, a row per server."""
    cfg = result["config"]
    L = []
    grove_cells = {}
    g = result["servers"].get("grove")
    if g and not g["note"]:
        grove_cells = {k: summarize(v) for k, v in g["cells"].items()}
    for size in cfg["sizes"]:
        rounds = f"median of {cfg['rounds']} rounds" if cfg["rounds"] > 1 else "one round"
        L.append(f"**{size}-byte messages** (requests/s, {rounds}, "
                 "±: how much it moved across them; p50 / p99 latency)")
        L.append("")
        L.append("| server | " + " | ".join(f"{c} connection{'s' if c > 1 else ''}" for c in cfg["conns"]) + " |")
        L.append("|---|" + "---|" * len(cfg["conns"]))
        for key, s in result["servers"].items():
            cells = []
            for c in cfg["conns"]:
                k = f"{size}/{c}"
                if s["note"] and not s["cells"].get(k):
                    cells.append(s["note"] if not cells else "")
                    continue
                m = summarize(s["cells"].get(k, []))
                if "error" in m:
                    cells.append(f"failed: {m['error']}")
                    continue
                ratio = ""
                gm = grove_cells.get(k)
                if key != "grove" and gm and "rps" in gm and m["rps"]:
                    ratio = f" ×{gm['rps'] / m['rps']:,.2f}"
                cells.append(f"{fmt_rps(m['rps'])}/s{ratio} (±{m['moved'] * 50:.0f}%) · "
                             f"{fmt_us(m['p50_us'])} / {fmt_us(m['p99_us'])}")
            label = s["label"] + (f" ({s['note']})" if s["note"] and s["cells"] else "")
            L.append(f"| {label} | " + " | ".join(cells) + " |")
        L.append("")
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release", "bench"),
                    help="the build's bench/ directory (default: the release preset's)")
    ap.add_argument("--quick", action="store_true", help="64 B, 16 connections, 0.3 s, one round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration-s", type=float, default=1.0)
    ap.add_argument("--warmup-s", type=float, default=0.25)
    ap.add_argument("--servers", help="comma-separated subset of " + ",".join(k for k, *_ in SERVERS))
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--build-tokio", action="store_true",
                    help="first build echo_tokio (cargo, offline, Debian's crates), as bench/run does")
    a = ap.parse_args()
    if not os.access(os.path.join(a.build, "echo_load"), os.X_OK):
        sys.exit(f"driver: no echo_load in {a.build}: build the release preset first")
    only = set(a.servers.split(",")) if a.servers else None
    not_built = {}
    if a.build_tokio and (not only or "tokio" in only):
        not_built["tokio"] = build_tokio(a.build)
    kw = dict(sizes=(64,), conns=(16,), duration=0.3, warmup=0.1, rounds=1) if a.quick else \
        dict(duration=a.duration_s, warmup=a.warmup_s, rounds=a.rounds)
    t0 = time.monotonic()
    result = measure(a.build, only=only, not_built=not_built, **kw)
    print("\n".join(table(result)))
    print(f"(W6 took {time.monotonic() - t0:.0f} s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
