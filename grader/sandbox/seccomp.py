"""The sandbox's system-call filter, one policy for both isolating backends.

It starts from Docker's default profile as it applies to a container with no capabilities (an allowlist,
everything else fails with EPERM), and removes what a student's PyTorch code never needs and what has
been the way out of containers before:

- no debugging of other processes: ptrace, process_vm_readv/writev, kcmp, pidfd_getfd (Docker's default
  allows ptrace on kernels >= 4.8);
- no new namespaces or mounts: unshare, setns, mount, umount2, pivot_root, chroot, open_tree, fsopen …,
  and clone only without CLONE_NEW* flags (clone3 answers ENOSYS so that glibc falls back to clone,
  whose flags a classic seccomp filter can read);
- no kernel keyrings (keyctl, add_key, request_key), no bpf, no perf_event_open, no userfaultfd,
  no io_uring (its own syscall surface, which seccomp cannot see into), no name_to_handle_at,
  no mknod, no fanotify, no modify_ldt, no personality flags beyond the harmless ones;
- sockets only of the families AF_UNIX, AF_INET and AF_INET6 (no netlink, packet, vsock, AF_ALG …);
  the network itself is off anyway (network none / unshared network namespace);
- only the native architecture: a 32-bit (int 0x80) or x32 system call kills the process.

`docker_profile()` renders the policy as the JSON that Docker takes in `security_opt`
("seccomp=<json>"); `bpf_program()` compiles the same policy with libseccomp (through ctypes, the
library is part of every Debian install) into the BPF program that `bwrap --seccomp FD` loads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import json
import os
import platform
import tempfile
from dataclasses import dataclass

# Docker's default allowlist (moby profiles/seccomp/default.json, rules that apply without capabilities),
# minus the entries listed in REMOVED below. Names this kernel or libseccomp does not know are skipped.
ALLOWED = (
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod",
    "chown", "clock_adjtime", "clock_getres", "clock_gettime", "clock_nanosleep", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex", "futex_waitv",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresuid", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
    "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getxattr", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat", "listen",
    "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack",
    "membarrier", "memfd_create", "mincore", "mkdir", "mkdirat", "mlock", "mlock2", "mlockall", "mmap",
    "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
    "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal",
    "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "prctl", "pread64",
    "preadv", "preadv2", "prlimit64", "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages", "removexattr",
    "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
    "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid",
    "setgid", "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid",
    "setreuid", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address",
    "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "socketpair", "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime",
    "timerfd_settime", "times", "tkill", "truncate", "umask", "uname", "unlink", "unlinkat", "utime",
    "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write", "writev",
    # architecture-specific entries of Docker's default that apply on x86-64 / arm64
    "arch_prctl",
)

# In Docker's default allowlist (or allowed there on modern kernels), denied here.
REMOVED = (
    "ptrace", "process_vm_readv", "process_vm_writev",  # allowed by Docker's default on kernels >= 4.8
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "name_to_handle_at", "mknod", "mknodat", "fanotify_mark", "memfd_secret", "process_mrelease",
    "modify_ldt", "personality (other than the values Docker allows)", "socket (other families)",
)

# Never allowed (not in the allowlist): named so that tests and the README can check them one by one.
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "mount", "umount2",
    "unshare", "setns", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsmount", "fspick",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
    "name_to_handle_at", "open_by_handle_at", "kexec_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "sethostname", "setdomainname",
    "settimeofday", "clock_settime", "iopl", "ioperm", "mbind", "set_mempolicy", "migrate_pages",
    "move_pages", "lookup_dcookie", "vhangup", "modify_ldt", "mknod",
)

CLONE_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
SOCKET_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6
PERSONALITY_VALUES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE…, query


@dataclass(frozen=True)
class Rule:
    name: str
    action: str  # "allow" | "errno"
    errno: int = 0
    args: tuple[tuple[int, str, int, int], ...] = ()  # (index, op, value, value_two)


def rules() -> list[Rule]:
    out = [Rule(name, "allow") for name in ALLOWED]
    out.append(Rule("clone", "allow", args=((0, "SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_FLAGS, 0),)))
    out.append(Rule("clone3", "errno", errno=errno.ENOSYS))
    out += [Rule("socket", "allow", args=((0, "SCMP_CMP_EQ", family, 0),)) for family in SOCKET_FAMILIES]
    out += [Rule("personality", "allow", args=((0, "SCMP_CMP_EQ", value, 0),)) for value in PERSONALITY_VALUES]
    return out


def _native_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64", "arm64": "SCMP_ARCH_AARCH64"}.get(
        machine, "SCMP_ARCH_NATIVE")


@functools.cache
def docker_profile() -> str:
    """The policy as a Docker seccomp profile (JSON text for security_opt "seccomp=<json>")."""
    syscalls: list[dict] = []
    plain = [r.name for r in rules() if r.action == "allow" and not r.args]
    syscalls.append({"names": plain, "action": "SCMP_ACT_ALLOW"})
    for rule in rules():
        if rule.action == "allow" and not rule.args:
            continue
        entry: dict = {"names": [rule.name],
                       "action": "SCMP_ACT_ALLOW" if rule.action == "allow" else "SCMP_ACT_ERRNO"}
        if rule.action == "errno":
            entry["errnoRet"] = rule.errno
        if rule.args:
            entry["args"] = [{"index": i, "value": v, "valueTwo": v2, "op": op} for i, op, v, v2 in rule.args]
        syscalls.append(entry)
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        "architectures": [_native_arch()] if _native_arch() != "SCMP_ARCH_NATIVE" else [],
        "syscalls": syscalls,
    }
    return json.dumps(profile, separators=(",", ":"))


# ---- libseccomp, for the bubblewrap backend -----------------------------------------------------

_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
        "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_ACT_ALLOW = 0x7FFF0000


def _act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class SeccompUnavailable(RuntimeError):
    pass


def _libseccomp():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompUnavailable(f"libseccomp is not installed ({exc}); apt-get install libseccomp2") from exc
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    return lib


@functools.cache
def bpf_program() -> bytes:
    """The policy compiled to a classic BPF program (struct sock_filter[]) for `bwrap --seccomp`.
    libseccomp adds the architecture check itself: a foreign-ABI system call kills the process."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(_act_errno(errno.EPERM))
    if not ctx:
        raise SeccompUnavailable("seccomp_init failed")
    try:
        for rule in rules():
            nr = lib.seccomp_syscall_resolve_name(rule.name.encode())
            if nr < 0:
                continue  # not a system call on this architecture (or unknown to this libseccomp)
            action = _ACT_ALLOW if rule.action == "allow" else _act_errno(rule.errno)
            cmps = (_ArgCmp * max(1, len(rule.args)))()
            for i, (index, op, value, value_two) in enumerate(rule.args):
                cmps[i] = _ArgCmp(index, _OPS[op], value, value_two)
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(rule.args), cmps)
            if rc < 0:
                raise SeccompUnavailable(f"libseccomp refused the rule for {rule.name}: {os.strerror(-rc)}")
        with tempfile.TemporaryFile() as out:
            rc = lib.seccomp_export_bpf(ctx, out.fileno())
            if rc < 0:
                raise SeccompUnavailable(f"seccomp_export_bpf failed: {os.strerror(-rc)}")
            out.seek(0)
            program = out.read()
    finally:
        lib.seccomp_release(ctx)
    if not program or len(program) % 8:
        raise SeccompUnavailable("libseccomp produced no BPF program")
    return program
