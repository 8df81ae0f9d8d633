#!/bin/sh
# The TLS-terminating reverse proxy in front of gunicorn: nginx with the certificate from /tls (stack.sh
# init makes a self-signed one; put the site's own there). It tells the web the scheme and the client's
# address; the web believes them only from this proxy's address (DJANGO_TRUSTED_PROXIES).
set -eu
[ -s /tls/cert.pem ] && [ -s /tls/key.pem ] || { echo "no certificate in /tls (cert.pem, key.pem)" >&2; exit 1; }
sed -e "s|@UPSTREAM@|${PROXY_UPSTREAM:-web:8000}|" /usr/local/lib/dd2601/nginx.conf >/etc/nginx/conf.d/dd2601.conf
exec nginx -g 'daemon off;'
