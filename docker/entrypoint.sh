#!/bin/sh
# Container entrypoint: with COMMENTSVC_MIGRATE_ON_START=1, bring the database schema up to
# date first (`commentsvc db upgrade`), then run the command (by default gunicorn).
# Migrating on start suits one container; with several replicas, migrate once per release
# as a separate step (`commentsvc db upgrade` in a one-off container) instead.
set -eu

case "$(printf '%s' "${COMMENTSVC_MIGRATE_ON_START:-0}" | tr '[:upper:]' '[:lower:]')" in
    1 | true | yes | on)
        echo "entrypoint: applying database migrations (commentsvc db upgrade)" >&2
        commentsvc db upgrade
        ;;
esac

exec "$@"
