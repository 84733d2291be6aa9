"""Run one command; write its wall time and peak RSS as JSON: `python -S measure.py REPORT -- COMMAND...`.

A fresh, small process of its own, because Linux starts a child's peak-RSS accounting at its parent's
peak: measured from the benchmark process (which holds records it compares), every tap would seem at
least that big. From here the floor is this script's own few MiB. It imports nothing but the standard
library, and is run with `-S`, to stay small. The command inherits stdin, stdout, stderr, cwd, env.
"""

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    """Spawn the command, wait for it, write `{"seconds", "peak_rss_kib"}`, exit with its status."""
    report, separator, *command = argv
    if separator != "--" or not command:
        sys.stderr.write(__doc__.splitlines()[0] + "\n")
        return 2
    started = time.perf_counter()
    pid = os.posix_spawn(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    with open(report, "w") as out:
        json.dump({"seconds": seconds, "peak_rss_kib": usage.ru_maxrss}, out)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
