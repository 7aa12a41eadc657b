# commentsvc: gunicorn serving wsgi:app as an unprivileged user.
#   docker build -t commentsvc .
#   docker run -e COMMENTSVC_SECRET_KEY=… -e COMMENTSVC_MIGRATE_ON_START=1 \
#     -v commentsvc-data:/data -p 8000:8000 commentsvc
# compose.yaml runs it with PostgreSQL; scripts/image-check.sh builds and tests it.

# --- builder: the application and its dependencies in a virtualenv -----------------------
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY commentsvc ./commentsvc
# A regular (not editable) install: the final stage copies /opt/venv and nothing of /src.
# The service needs neither pip nor setuptools at run time.
RUN pip install --no-cache-dir '/src[postgres]' \
    && pip uninstall --yes pip setuptools

# --- final: the venv, the WSGI entry point, the migrations --------------------------------
FROM python:3.11-slim-bookworm

# A release build adds its version: --label org.opencontainers.image.version=X.Y.Z
LABEL org.opencontainers.image.title="commentsvc" \
      org.opencontainers.image.description="Self-hosted comment moderation service" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    COMMENTSVC_DATABASE_URL=sqlite:////data/commentsvc.db \
    COMMENTSVC_MIGRATIONS_DIR=/app/migrations \
    PORT=8000

# A fixed uid/gid, so a bind-mounted /data can be prepared with `chown 10001:10001`.
RUN groupadd --system --gid 10001 commentsvc \
    && useradd --system --uid 10001 --gid commentsvc --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin commentsvc \
    && mkdir /data \
    && chown commentsvc:commentsvc /data

COPY --from=builder /opt/venv /opt/venv
# Flask puts an installed package's instance folder at <prefix>/var/commentsvc-instance;
# point it at the volume: the app writes nothing into the root-owned venv.
RUN mkdir /opt/venv/var && ln -s /data /opt/venv/var/commentsvc-instance

WORKDIR /app
COPY migrations ./migrations
COPY wsgi.py gunicorn.conf.py ./
COPY docker/entrypoint.sh /usr/local/bin/commentsvc-entrypoint

USER 10001:10001
# The SQLite database and its -wal and -shm files live together in this one directory.
VOLUME /data
EXPOSE 8000

# Liveness through the port gunicorn binds (PORT); no curl in the slim image. The proxy
# handler is emptied so an HTTP_PROXY in the environment cannot intercept the probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.build_opener(r.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

ENTRYPOINT ["commentsvc-entrypoint"]
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "wsgi:app"]
