# The web (gunicorn + whitenoise), the grading workers (Celery) and beat: one image, three commands
# (docker-compose.yml). The code changes often; everything heavy is in dd2601-app-base below it.
FROM dd2601-app-base:latest
COPY app/ /app/
ENV PYTHONPATH=/app:/opt/site \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=courseware.settings \
    DD2601_VAR_DIR=/srv/dd2601/var \
    DD2601_ARCHIVE_ROOT=/srv/dd2601/archives
# Static files collected at build time (whitenoise serves them, compressed, from STATIC_ROOT).
RUN chmod -R a+rX /app && python3 -m compileall -q /app \
 && mkdir -p /srv/dd2601/var /srv/dd2601/archives \
 && DJANGO_SECRET_KEY=only-for-collectstatic python3 /app/manage.py collectstatic --noinput -v 0 \
 && chown -R dd2601:dd2601 /srv/dd2601
WORKDIR /app
USER dd2601
EXPOSE 8000
CMD ["python3", "-m", "gunicorn", "--config", "/app/docker/production/gunicorn.conf.py", "courseware.wsgi:application"]
