"""The few steps between the worker and `bwrap` that must happen in the sandbox's own process.

Run as  python3 -I -S bwrap_launch.py CONFIG_JSON BWRAP ARGS...  by the bwrap backend. In this order:
join the run's cgroups (so that every process the sandbox ever forks is counted and can be killed),
set the resource limits (inherited by bwrap and everything under it), drop to the unprivileged host uid
when started as root, and exec bwrap. A separate program rather than a `preexec_fn`, because the worker
is multi-threaded and a preexec_fn there can deadlock. Standard library only, nothing imported from the
project: it runs before any isolation exists.
"""

import json
import os
import resource
import sys


def main() -> None:
    config = json.loads(sys.argv[1])
    command = sys.argv[2:]
    pid = str(os.getpid())
    for procs in config.get("cgroup_procs", []):
        with open(procs, "w") as f:
            f.write(pid)
    for name, value in config.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    uid = config.get("uid")
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.geteuid() == 0 or os.getegid() == 0:
            raise SystemExit("could not drop root before starting bwrap")
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
