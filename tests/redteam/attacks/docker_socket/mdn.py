# Attack: find a container engine's socket (Docker, containerd) and connect to it: with it, a sandbox
# could start a privileged container and own the host.
import os
import socket
import stat

CANDIDATES = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
              "/var/run/docker/containerd/containerd.sock", "/run/docker/containerd/containerd.sock",
              "/tmp/docker.sock", "/run/podman/podman.sock"]


def fit(x, y, *, seed, max_seconds):
    found = [p for p in CANDIDATES if os.path.exists(p)]
    for root, dirs, files in os.walk("/", onerror=lambda e: None):
        if root.startswith(("/proc", "/sys", "/opt/site", "/usr")):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(root, name)
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    found.append(path)
            except OSError:
                pass
    print(f"SOCKETS FOUND {sorted(set(found))}")
    for path in sorted(set(found)):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.sendall(b"GET /version HTTP/1.0\r\n\r\n")
            print(f"CONNECTED {path}: {s.recv(200)!r}")
        except OSError as exc:
            print(f"refused {path}: {exc}")
    with open("/proc/net/unix") as f:
        print(f"UNIX SOCKETS {f.read()}")
    raise RuntimeError("this submission only looks for engine sockets")
