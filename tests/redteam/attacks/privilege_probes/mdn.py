# Attack: every way up: become root, new namespaces (a user namespace makes us "root" inside), mount,
# ptrace, kernel keyrings, bpf, perf, userfaultfd, io_uring, raw sockets, chroot. x86-64 numbers.
import ctypes
import errno
import os
import platform
import socket

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {"ptrace": 101, "unshare": 272, "mount": 165, "keyctl": 250, "add_key": 248, "bpf": 321,
      "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "chroot": 161, "setns": 308,
      "pivot_root": 155, "process_vm_readv": 310, "kcmp": 312, "name_to_handle_at": 303,
      "open_by_handle_at": 304, "personality": 135, "init_module": 175, "kexec_load": 246, "acct": 163,
      "swapon": 167, "reboot": 169, "modify_ldt": 154, "mknod": 133}
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID = 0x10000000, 0x00020000, 0x40000000, 0x20000000


def probe(name, *args):
    result = libc.syscall(NR[name], *args)
    code = ctypes.get_errno()
    if result == -1:
        print(f"PROBE {name}: DENIED {errno.errorcode.get(code, code)}")
    else:
        print(f"PROBE {name}: ALLOWED {result}")


def try_call(name, func):
    try:
        func()
        print(f"PROBE {name}: ALLOWED")
    except OSError as exc:
        print(f"PROBE {name}: DENIED {errno.errorcode.get(exc.errno, exc.errno)}")


def fit(x, y, *, seed, max_seconds):
    print(f"ARCH {platform.machine()}")
    try_call("setuid", lambda: os.setuid(0))
    try_call("setgid", lambda: os.setgid(0))
    try_call("setgroups", lambda: os.setgroups([0]))
    probe("unshare", CLONE_NEWUSER)
    probe("unshare", CLONE_NEWNS)
    probe("unshare", CLONE_NEWNET | CLONE_NEWPID)
    os.makedirs("/tmp/mnt", exist_ok=True)
    probe("mount", b"none", b"/tmp/mnt", b"tmpfs", 0, None)
    probe("ptrace", 0, 0, 0, 0)  # PTRACE_TRACEME
    probe("ptrace", 16, 1, 0, 0)  # PTRACE_ATTACH to pid 1
    probe("process_vm_readv", 1, None, 0, None, 0, 0)
    probe("kcmp", 1, os.getpid(), 0, 0, 0)
    probe("keyctl", 1, 0, 0, 0, 0)  # KEYCTL_JOIN_SESSION_KEYRING
    probe("add_key", b"user", b"k", b"v", 1, -3)
    probe("bpf", 5, None, 0)  # BPF_PROG_LOAD with no attributes: EFAULT if the call were allowed
    probe("perf_event_open", None, 0, -1, -1, 0)
    probe("userfaultfd", 0)
    probe("io_uring_setup", 1, None)
    probe("chroot", b"/tmp")
    probe("setns", 0, 0)
    probe("pivot_root", b"/tmp", b"/tmp/mnt")
    probe("name_to_handle_at", -100, b"/tmp", None, None, 0)
    probe("open_by_handle_at", -100, None, 0)
    probe("personality", 0x0400000)  # READ_IMPLIES_EXEC
    probe("init_module", None, 0, b"")
    probe("kexec_load", 0, 0, None, 0)
    probe("acct", b"/tmp/acct")
    probe("swapon", b"/tmp/swap", 0)
    probe("reboot", 0xfee1dead, 672274793, 0x4321fedc, None)  # LINUX_REBOOT_CMD_POWER_OFF
    probe("modify_ldt", 0, None, 0)
    probe("mknod", b"/tmp/dev-null", 0o20666, os.makedev(1, 3))
    for family, kind, label in [(16, socket.SOCK_RAW, "netlink"), (17, socket.SOCK_RAW, "packet"),
                                (40, socket.SOCK_STREAM, "vsock"), (38, socket.SOCK_SEQPACKET, "alg"),
                                (socket.AF_INET, socket.SOCK_RAW, "raw-inet")]:
        try_call(f"socket-{label}", lambda f=family, k=kind: socket.socket(f, k).close())
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    print("STATUS " + " ".join(f"{k}={','.join(status.get(k, '?').split())}" for k in
                               ("Uid", "NoNewPrivs", "Seccomp", "CapEff", "CapPrm", "CapBnd", "CapAmb")))
    raise RuntimeError("this submission only probes for privileges")
