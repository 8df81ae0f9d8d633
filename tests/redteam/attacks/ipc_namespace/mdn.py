# Attack: look at System V shared memory, message queues and semaphores: with the host's IPC namespace,
# another process's (or sandbox's) shared memory could be read or written.
import ctypes


def fit(x, y, *, seed, max_seconds):
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{kind}") as f:
            keys = [line.split()[0] for line in f.read().splitlines()[1:] if line.strip()]
        print(f"IPC {kind} keys {keys}")
    libc = ctypes.CDLL(None, use_errno=True)
    segment = libc.shmget(0x2601, 4096, 0o1000 | 0o600)  # IPC_CREAT in our own namespace works
    print(f"SHMGET own segment {segment}")
    raise RuntimeError("this submission only looks at System V IPC")
