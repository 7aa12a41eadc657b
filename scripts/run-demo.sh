#!/usr/bin/env bash
# Serve the service with a demo site, moderator and API token (`make run`).
#
# The demo's settings live in instance/commentsvc.env, which the service and the
# `commentsvc` command both read: after a first `make run`, `. .venv/bin/activate` and every
# `commentsvc …` command works on the demo. The API token is kept in instance/demo-token and
# printed again on each run; a new one is made only when that one no longer works.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
DEMO_EMAIL=demo@example.com
DEMO_PASSWORD=demo-password
# The settings file the service reads by default, unless COMMENTSVC_ENV_FILE names another.
ENV_FILE=${COMMENTSVC_ENV_FILE:-instance/commentsvc.env}
TOKEN_FILE=$(dirname "$ENV_FILE")/demo-token

mkdir -p "$(dirname "$ENV_FILE")"
if [ ! -e "$ENV_FILE" ]; then
  (
    umask 077
    cat >"$ENV_FILE" <<SETTINGS
# Settings of the demo that \`make run\` serves; read by the service and the commentsvc
# command (the environment wins). See the configuration table in README.md.
COMMENTSVC_ENV=development
COMMENTSVC_SECRET_KEY=$("$BIN/python" -c 'import secrets; print(secrets.token_hex(32))')
# Plain HTTP on this machine: cookies without Secure.
COMMENTSVC_SESSION_COOKIE_SECURE=false
# One line per request, for reading by eye (gunicorn's access log would add the query
# strings, which the service never logs).
COMMENTSVC_LOG_FORMAT=text
SETTINGS
  )
  echo "make run: wrote the demo's settings to $ENV_FILE"
fi

"$BIN/commentsvc" db upgrade
# The demo site allows the service's and the demo article's origins, on this PORT too.
ORIGINS=()
for port in "$PORT" "$((PORT + 1))"; do
  ORIGINS+=(--origin "http://$HOST:$port" --origin "http://localhost:$port")
done
if ! "$BIN/commentsvc" sites list | grep -q '^demo\b'; then
  "$BIN/commentsvc" sites add demo --name "Demo site" "${ORIGINS[@]}"
fi
# Comments in Markdown, with Write / Preview in the widget (README, "Markup, editing, order");
# giving the markup again, as every run does, changes nothing.
"$BIN/commentsvc" sites set demo "${ORIGINS[@]/#--origin/--add-origin}" --markup markdown >/dev/null
if ! "$BIN/commentsvc" moderators list | grep -q "^$DEMO_EMAIL\b"; then
  printf '%s\n' "$DEMO_PASSWORD" | "$BIN/commentsvc" moderators add "$DEMO_EMAIL" --admin --password-stdin
fi
if [ ! -s "$TOKEN_FILE" ] || ! "$BIN/commentsvc" tokens check <"$TOKEN_FILE" >/dev/null 2>&1; then
  (
    umask 077
    "$BIN/commentsvc" tokens create "$DEMO_EMAIL" --name "make run" | awk '{print $NF}' >"$TOKEN_FILE"
  )
fi
TOKEN=$(cat "$TOKEN_FILE")
BASE="http://$HOST:$PORT"
DEMO="http://$HOST:$((PORT + 1))"

# Mail and webhooks end to end: the demo site catches the service's mail (an SMTP server on
# PORT + 2) and receives the demo site's webhooks; gunicorn runs the outbox worker itself.
export COMMENTSVC_SMTP_URL="smtp://$HOST:$((PORT + 2))"
export COMMENTSVC_PUBLIC_URL="$BASE"
export COMMENTSVC_MAIL_FROM="Demo comments <comments@example.com>"
export COMMENTSVC_WEBHOOK_ALLOW_PRIVATE=true
export COMMENTSVC_RUN_WORKER=true
HOOK_URL="$DEMO/webhook"
SECRET_FILE=$(dirname "$ENV_FILE")/demo-webhook-secret
if [ ! -s "$SECRET_FILE" ] || ! "$BIN/commentsvc" webhooks list --site demo | grep -qF "$HOOK_URL"; then
  # The demo's webhooks of earlier runs (other ports) go; one to this run's demo site comes.
  "$BIN/commentsvc" webhooks list --site demo | awk -v host="http://$HOST:" \
    'index($3, host) == 1 && $3 ~ /\/webhook$/ {print $1}' |
    while read -r old; do "$BIN/commentsvc" webhooks remove "$old" >/dev/null; done
  (
    umask 077
    "$BIN/commentsvc" webhooks add demo "$HOOK_URL" | awk '{print $NF}' >"$SECRET_FILE"
  )
fi

cat <<INFO

  commentsvc is starting on $BASE

  Moderation panel: $BASE/moderation/
  Moderator login:  $DEMO_EMAIL / $DEMO_PASSWORD
  API token:        $TOKEN

  Try it:
    curl -s -X POST '$BASE/api/v1/sites/demo/comments' -H 'Content-Type: application/json' \\
      -d '{"page": "/hello", "body": "First!", "author_name": "Ada", "author_email": "ada@example.com"}'
    curl -s -H 'Authorization: Bearer $TOKEN' '$BASE/api/v1/moderation/comments?status=pending'
    curl -s -X PATCH -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' \\
      -d '{"status": "approved"}' '$BASE/api/v1/moderation/comments/1'
    curl -s '$BASE/api/v1/sites/demo/comments?page=/hello'

  The commentsvc command, in another terminal of this folder:
    . .venv/bin/activate
    commentsvc sites list

  Demo article (another origin, embeds the widget): $DEMO/article.html
  The widget in German (?lang=fr, ja, zh-Hans…):     $DEMO/article.html?lang=de
  Demo article list with comment counts:             $DEMO/
  Mail the service sends (moderators, replies):      $DEMO/mail/
  Webhook calls of the demo site:                    $DEMO/webhooks/

  API description: $BASE/openapi.json     Stop with Ctrl-C.

INFO
"$BIN/python" scripts/demo_site.py --host "$HOST" --port "$((PORT + 1))" --api "$BASE" --site demo \
  --smtp-port "$((PORT + 2))" --webhook-secret-file "$SECRET_FILE" &
DEMO_PID=$!
trap 'kill $DEMO_PID 2>/dev/null' EXIT INT TERM
"$BIN/gunicorn" --workers 2 --bind "$HOST:$PORT" wsgi:app
