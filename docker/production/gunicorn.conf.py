"""gunicorn for the web service: threads for the many short requests of htmx polling, the app loaded once
before forking (torch and the parts are shared copy-on-write), workers recycled now and then."""

import os

bind = "0.0.0.0:8000"
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
preload_app = True
timeout = 60
graceful_timeout = 30
keepalive = 5
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
# gunicorn's own use of X-Forwarded-Proto (wsgi.url_scheme): the same proxies Django trusts.
forwarded_allow_ips = os.environ.get("DJANGO_TRUSTED_PROXIES", "127.0.0.1")
