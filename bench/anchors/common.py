"""What the anchors share: the command line, the W3 checks and the JSON line.
The workloads themselves stay in each library's own script."""
import argparse
import json
import os
import resource
import signal
import sys


def parse_args(doc, add_options=None, workloads=("w1", "w2", "w2s", "w3")):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--workload", required=True, choices=list(workloads))
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--c", type=int, default=None,
                    help="slots (w2, w2s default 1000, required for w3, ignored by w1 and w7)")
    ap.add_argument("--repeat", type=int, default=1, help="runs; the best one is reported")
    ap.add_argument("--timeout-s", type=int, default=120,
                    help="w3: abort (exit 124) if the cancel phase takes longer; 0 = off")
    if add_options:
        add_options(ap)
    a = ap.parse_args()
    if a.workload in ("w1", "w7"):
        a.c = None
    elif a.workload in ("w2", "w2s") and a.c is None:
        a.c = 1000
    elif a.workload == "w3" and a.c is None:
        ap.error("--c is required for w3")
    if a.n < 1 or (a.c is not None and a.c < 1):
        ap.error("--n and --c must be >= 1")
    if a.workload == "w3" and a.c > a.n:
        ap.error("w3 needs c <= n (the storm fires when c jobs are running)")
    return a


def raise_nofile(needed):
    """w7 needs 2 descriptors per task. Raises the soft RLIMIT_NOFILE to the
    hard limit, and the hard one too if that is still short and the process
    may (CAP_SYS_RESOURCE). Returns (problem or None, the limits as a dict),
    as grove_bench does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    info = {"needed": needed, "soft_before": soft, "hard_before": hard}
    target = max(needed, soft) if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(needed, hard)))
            info["raised_hard"] = True
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    info["soft"], info["hard"] = soft, hard
    if soft < needed:
        return (f"RLIMIT_NOFILE: hard limit {hard} < {needed} descriptors needed "
                "(raising it needs CAP_SYS_RESOURCE: ulimit -Hn or prlimit as root)"), info
    return None, info


def install_alarm(name):
    """w3 arms SIGALRM with --timeout-s just before the self-kill."""
    def on_alarm(signum, frame):
        sys.stderr.write(f"{name}: w3 cancel phase exceeded --timeout-s, aborting\n")
        sys.stderr.flush()
        os._exit(124)  # same status as coreutils timeout
    signal.signal(signal.SIGALRM, on_alarm)


def w3_outcome(t, started, cleaned, exited, n, c, problems=()):
    """The W3 result from the recorded times (kill, sig, done) and counts."""
    problems = list(problems)
    if started != c:
        problems.append(f"started={started} != c={c}")
    if cleaned != c:
        problems.append(f"cleaned={cleaned} != c={c}")
    if exited != n or exited - started != n - c:
        problems.append(f"exited={exited}, never-started={exited - started}, want n={n}, n-c={n - c}")
    if problems:
        return {"value": None, "unit": "ms", "from_kill_ms": None, "check": "; ".join(problems)}
    return {"value": (t["done"] - t["sig"]) * 1e3, "unit": "ms",
            "from_kill_ms": (t["done"] - t["kill"]) * 1e3, "check": "ok"}


def repeat(times, run_once):
    """Calls run_once() up to `times` times (stopping at a failed check);
    each result gets its run's page faults (getrusage, this process)."""
    results = []
    for _ in range(times):
        before = resource.getrusage(resource.RUSAGE_SELF)
        r = run_once()
        after = resource.getrusage(resource.RUSAGE_SELF)
        r["minflt"] = after.ru_minflt - before.ru_minflt
        r["majflt"] = after.ru_majflt - before.ru_majflt
        results.append(r)
        if r["check"] != "ok":
            break
    return results


def report(impl, name, a, results, extra=None):
    """Prints the one JSON line (the best run, or the first failed one), as
    grove_bench does: cold (the first run in this fresh process) and warm
    (the best later run), the page faults of each run and of the process
    (interpreter start-up and imports included) and its peak RSS
    (getrusage); `extra` is merged in."""
    failed = [r for r in results if r["check"] != "ok"]
    best = failed[0] if failed else min(results, key=lambda r: r["value"])
    out = {"impl": impl, "workload": a.workload, "n": a.n, "c": a.c,
           "value": best["value"], "unit": best["unit"]}
    for k in ("from_kill_ms", "cancel_call_ms"):
        if k in best:
            out[k] = best[k]
    out["check"] = best["check"]
    out["runs"] = [r["value"] for r in results]
    if not failed:
        out["cold"] = results[0]["value"]
        out["warm"] = min(r["value"] for r in results[1:]) if len(results) > 1 else None
    out["runs_minflt"] = [r.get("minflt") for r in results]
    out["runs_majflt"] = [r.get("majflt") for r in results]
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["minflt"], out["majflt"], out["maxrss_kb"] = ru.ru_minflt, ru.ru_majflt, ru.ru_maxrss
    out.update(extra or {})
    print(json.dumps(out), flush=True)
    if failed:
        sys.exit(f"{name}: check FAILED for {a.workload}: {best['check']}")
