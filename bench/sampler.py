"""A tiny sampling profiler for the bot under the benchmark (`bench.py --sample DIR`).

cProfile counts every resumption of a coroutine as a call and charges greenlet switches
oddly, so its figures for an asyncio + SQLAlchemy process are hard to read; a sampling thread
only gets the GIL where the main thread releases it (I/O), so it sees little else. This takes
a SIGPROF every 2 ms of the process's CPU time instead and records the main thread's stack;
when the bot exits it writes where the time went: by package (the innermost frame), by
function (innermost), and inclusive; SIGUSR1 and SIGUSR2 mark the window to keep (the
benchmark sends them around what it measures). Run as `python bench/sampler.py OUT -m bot.cli run`.
"""

from __future__ import annotations

import atexit
import collections
import runpy
import signal
import sys
from pathlib import Path
from types import FrameType

INTERVAL = 0.002
ROOT = str(Path(__file__).resolve().parents[1])


def package(filename: str) -> str:
    if "site-packages/" in filename:
        rest = filename.split("site-packages/", 1)[1]
        return rest.split("/", 1)[0]
    if filename.startswith(ROOT):
        parts = filename[len(ROOT) + 1 :].split("/")
        return "/".join(parts[:2]) if len(parts) > 1 else parts[0]
    if "/lib/python3" in filename:
        parts = filename.split("/lib/python3", 1)[1].split("/", 1)
        name = parts[1] if len(parts) > 1 else filename
        return "stdlib:" + name.split("/", 1)[0].removesuffix(".py")
    return filename


def main() -> None:
    out = Path(sys.argv[1])
    if sys.argv[2] != "-m":
        raise SystemExit("usage: sampler.py OUT -m module args...")
    module = sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    sys.path[0] = ROOT  # as `python -m` would have it: this checkout, not bench/
    self_pkg: collections.Counter[str] = collections.Counter()
    self_fn: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = [0]

    def where(frame: FrameType) -> str:
        code = frame.f_code
        return f"{package(code.co_filename)}:{code.co_name}"

    def sample(_signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes, so any Python code can be caught
        # (a sampling thread only ever gets the GIL where the main thread releases it).
        if frame is None:
            return
        total[0] += 1
        code = frame.f_code
        if code.co_name in {"select", "poll"} and "selectors" in code.co_filename:
            self_pkg["(idle: main thread waiting, another thread used the CPU)"] += 1
            return
        self_pkg[package(code.co_filename)] += 1
        self_fn[where(frame)] += 1
        seen: set[str] = set()
        f: FrameType | None = frame
        while f is not None:
            if f.f_code.co_filename.startswith(ROOT) or "site-packages" in f.f_code.co_filename:
                name = where(f)
                if name not in seen:
                    seen.add(name)
                    incl[name] += 1
            f = f.f_back

    def report() -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        n = max(1, total[0])
        lines = [f"samples {n} (one per {INTERVAL * 1000:.0f} ms of CPU)", "", "by package (self):"]
        lines += [f"  {100 * c / n:5.1f}%  {k}" for k, c in self_pkg.most_common(25)]
        lines += ["", "by function (self):"]
        lines += [f"  {100 * c / n:5.1f}%  {k}" for k, c in self_fn.most_common(40)]
        lines += ["", "inclusive:"]
        lines += [f"  {100 * c / n:5.1f}%  {k}" for k, c in incl.most_common(120)]
        out.write_text("\n".join(lines) + "\n")

    def window(signum: int, _frame: FrameType | None) -> None:
        # SIGUSR1: forget what came before (start-up, warming up); SIGUSR2: stop sampling.
        if signum == signal.SIGUSR1:
            for counter in (self_pkg, self_fn, incl):
                counter.clear()
            total[0] = 0
        else:
            signal.setitimer(signal.ITIMER_PROF, 0, 0)

    signal.signal(signal.SIGPROF, sample)
    signal.signal(signal.SIGUSR1, window)
    signal.signal(signal.SIGUSR2, window)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)
    atexit.register(report)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
