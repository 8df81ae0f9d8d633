"""Print a fresh env file for the production stack (`stack.sh init` writes it once, mode 0600).

Secrets are new random tokens (URL-safe, so they sit in database and broker URLs as they are). Every
other value has a default for a one-host install and can be given in the environment when running
`stack.sh init` (e.g. DD2601_HOSTNAMES=lab.example.kth.se DD2601_HTTPS_PORT=443 GRADER_SLOTS=4).
"""

from __future__ import annotations

import os
import secrets


def setting(name: str, default: str) -> str:
    return os.environ.get(name, default)


def main() -> None:
    cores = len(os.sched_getaffinity(0))
    hostnames = setting("DD2601_HOSTNAMES", "localhost,127.0.0.1")
    https_port = setting("DD2601_HTTPS_PORT", "443")
    suffix = "" if https_port == "443" else f":{https_port}"
    origins = ",".join(f"https://{h}{suffix}" for h in hostnames.split(",") if h)
    db_password, redis_password = secrets.token_hex(24), secrets.token_hex(24)
    values = {
        "COMPOSE_PROJECT_NAME": setting("COMPOSE_PROJECT_NAME", "dd2601"),
        "DJANGO_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": hostnames,
        "DJANGO_CSRF_TRUSTED_ORIGINS": origins,
        "POSTGRES_PASSWORD": db_password,
        "REDIS_PASSWORD": redis_password,
        "DATABASE_URL": f"postgres://dd2601:{db_password}@postgres:5432/dd2601",
        "CELERY_BROKER_URL": f"redis://:{redis_password}@redis:6379/0",
        "GRADER_ARCHIVE_KEY": secrets.token_urlsafe(32),
        "GRADER_BACKEND": "docker",
        # A slot per two cores: every LAB1 part declares 2 CPUs (grader/slots.py).
        "GRADER_SLOTS": setting("GRADER_SLOTS", str(max(1, cores // 2))),
        "GRADER_GPUS": setting("GRADER_GPUS", ""),
        "GRADER_LEASE_SECONDS": setting("GRADER_LEASE_SECONDS", "90"),
        "GRADER_SWEEP_SECONDS": setting("GRADER_SWEEP_SECONDS", "60"),
        "DD2601_METRICS_ALLOWED": setting("DD2601_METRICS_ALLOWED", "127.0.0.1"),
        "DD2601_WORK_DIR": setting("DD2601_WORK_DIR", "/var/lib/dd2601/work"),
        "DD2601_PUBLIC_ADDR": setting("DD2601_PUBLIC_ADDR", "0.0.0.0"),
        "DD2601_HTTPS_PORT": https_port,
        "DD2601_HTTP_PORT": setting("DD2601_HTTP_PORT", "80"),
        "DD2601_SERVICES_ADDR": setting("DD2601_SERVICES_ADDR", "127.0.0.1"),
        "DD2601_POSTGRES_PORT": setting("DD2601_POSTGRES_PORT", "5432"),
        "DD2601_REDIS_PORT": setting("DD2601_REDIS_PORT", "6379"),
        "DD2601_FRONT_SUBNET": setting("DD2601_FRONT_SUBNET", "172.29.26.0/24"),
        "DD2601_PROXY_ADDR": setting("DD2601_PROXY_ADDR", "172.29.26.10"),
        "GUNICORN_WORKERS": setting("GUNICORN_WORKERS", str(min(8, 2 * cores + 1))),
    }
    print("# The DD2601 production stack (docker/production/stack.sh). Secrets: keep this file private.")
    for name, value in values.items():
        print(f"{name}={value}")


if __name__ == "__main__":
    main()
