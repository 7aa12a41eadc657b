#!/usr/bin/env bash
# Migrate, create a demo site, moderator and API token, then serve with gunicorn.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
DEMO_EMAIL=demo@example.com
DEMO_PASSWORD=demo-password

export COMMENTSVC_ENV=${COMMENTSVC_ENV:-development}
export COMMENTSVC_SESSION_COOKIE_SECURE=${COMMENTSVC_SESSION_COOKIE_SECURE:-false}
# One line per request, for reading by eye (gunicorn's access log would add the query
# strings, which the service never logs).
export COMMENTSVC_LOG_FORMAT=${COMMENTSVC_LOG_FORMAT:-text}

"$BIN/commentsvc" db upgrade
if ! "$BIN/commentsvc" sites list | grep -q '^demo\b'; then
  "$BIN/commentsvc" sites add demo --name "Demo site" \
    --origin "http://$HOST:$PORT" --origin "http://localhost:$PORT" \
    --origin "http://$HOST:$((PORT + 1))" --origin "http://localhost:$((PORT + 1))"
fi
if ! "$BIN/commentsvc" moderators list 2>/dev/null | grep -q "^$DEMO_EMAIL\b"; then
  printf '%s\n' "$DEMO_PASSWORD" | "$BIN/commentsvc" moderators add "$DEMO_EMAIL" --admin --password-stdin
fi
TOKEN=$("$BIN/commentsvc" tokens create "$DEMO_EMAIL" --name "make run" | awk '{print $NF}')
BASE="http://$HOST:$PORT"

cat <<INFO

  commentsvc is starting on $BASE

  Moderation panel: $BASE/moderation/
  Moderator login:  $DEMO_EMAIL / $DEMO_PASSWORD
  API token:        $TOKEN

  Try it:
    curl -s -X POST $BASE/api/v1/sites/demo/comments -H 'Content-Type: application/json' \\
      -d '{"page": "/hello", "body": "First!", "author_name": "Ada", "author_email": "ada@example.com"}'
    curl -s -H 'Authorization: Bearer $TOKEN' $BASE/api/v1/moderation/comments?status=pending
    curl -s -X PATCH -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' \\
      -d '{"status": "approved"}' $BASE/api/v1/moderation/comments/1
    curl -s '$BASE/api/v1/sites/demo/comments?page=/hello'

  Demo article (another origin, embeds the widget): http://$HOST:$((PORT + 1))/article.html
  Demo article list with comment counts:             http://$HOST:$((PORT + 1))/

  API description: $BASE/openapi.json     Stop with Ctrl-C.

INFO
"$BIN/python" scripts/demo_site.py --host "$HOST" --port "$((PORT + 1))" --api "$BASE" --site demo &
DEMO_PID=$!
trap 'kill $DEMO_PID 2>/dev/null' EXIT INT TERM
"$BIN/gunicorn" --workers 2 --bind "$HOST:$PORT" wsgi:app
