# commentsvc — `make run` serves the demo, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint typecheck pytest browser node postgres redis clean image-check bench bench-worker bench-imports bench-peers bench-soak bench-memory

# What running needs (make run), and on top of it what the checks need (make test).
RUN_STAMP := $(VENV)/.installed-run

$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	@touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	@touch $(STAMP)

## Serve the service with a demo site, moderator and token on http://$(HOST):$(PORT)
## (its settings in instance/commentsvc.env, which the commentsvc command reads too)
run: $(RUN_STAMP)
	HOST=$(HOST) PORT=$(PORT) BIN=$(BIN) ./scripts/run-demo.sh

## Lint, format check, type check and the whole test suite
## (with CI=true also the container image check)
test: $(STAMP) lint typecheck browser node pytest $(if $(filter true,$(CI)),image-check)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## Debian's Chromium for the browser tests (installed with apt-get when missing)
browser:
	./scripts/ensure-chromium.sh

## axe-core (pinned in package-lock.json) for the widget's accessibility tests
node:
	./scripts/ensure-node-deps.sh

## Build the container image and run it (as root on Debian: installs podman, buildah, debootstrap)
image-check: $(STAMP)
	./scripts/image-check.sh

## A private PostgreSQL for the tests on 127.0.0.1:55432 (installs Debian's postgresql when missing)
postgres:
	./scripts/ensure-postgres.sh >/dev/null

## A private Redis for the tests on 127.0.0.1:56379 (installs Debian's redis-server when missing)
redis:
	./scripts/ensure-redis.sh >/dev/null

## The suite twice: on SQLite, then on PostgreSQL (both with the private Redis; the
## browser tests in the SQLite run only)
pytest: $(STAMP)
	redis="$$(./scripts/ensure-redis.sh)" && \
	COMMENTSVC_TEST_REDIS_URL="$$redis" $(BIN)/pytest && \
	url="$$(./scripts/ensure-postgres.sh)" && \
	if [ -n "$$url" ]; then \
		COMMENTSVC_TEST_REDIS_URL="$$redis" COMMENTSVC_TEST_DATABASE_URL="$$url" $(BIN)/pytest; \
	fi

## The load benchmark on SQLite and PostgreSQL, then commentsvc beside Isso: each writes its
## report, with its targets table, to benchmarks/results/ and prints it (benchmarks/README.md);
## BENCH_ARGS adds options to the load benchmark, PEERS_ARGS to the peer benchmark
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		apt-get install -y -qq wrk >/dev/null; } || \
		{ echo "bench: wrk is missing and cannot be installed here: apt-get install wrk" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	url="$$(./scripts/ensure-postgres.sh)" && redis="$$(./scripts/ensure-redis.sh)" && \
	COMMENTSVC_TEST_DATABASE_URL="$$url" COMMENTSVC_TEST_REDIS_URL="$$redis" \
		$(BIN)/python -m benchmarks.load --database both $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.peers $(PEERS_ARGS)

clean:
	rm -rf $(VENV) instance node_modules .pytest_cache .ruff_cache .mypy_cache

## The outbox worker's deliveries per second and mail delay (benchmarks/README.md)
bench-worker: $(STAMP)
	$(BIN)/python -m benchmarks.worker $(BENCH_ARGS)

## commentsvc beside Isso alone (make bench runs it too), same data and gunicorn settings
## (benchmarks/peers); BENCH_ARGS adds options
bench-peers: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		apt-get install -y -qq wrk >/dev/null; } || \
		{ echo "bench-peers: wrk is missing and cannot be installed here: apt-get install wrk" >&2; exit 1; }
	$(BIN)/python -m benchmarks.peers $(BENCH_ARGS)

## WordPress import and JSON Lines export of 10k, 100k and 1M comments (benchmarks/README.md)
bench-imports: $(STAMP)
	$(BIN)/python -m benchmarks.imports $(BENCH_ARGS)

## Memory of gunicorn's master and 2 workers over 1,000,000 requests of readers (threads,
## their 304s, thread.html, counts, widget.js, submissions) on the load benchmark's 1M-comment
## SQLite database: < 200 MiB RSS, no growth (benchmarks/README.md); BENCH_ARGS adds options
bench-memory: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		apt-get install -y -qq wrk >/dev/null; } || \
		{ echo "bench-memory: wrk is missing and cannot be installed here: apt-get install wrk" >&2; exit 1; }
	$(BIN)/python -m benchmarks.memory $(BENCH_ARGS)

## Soak and faults over real HTTP (PostgreSQL, Redis, gunicorn, the outbox worker): 10 minutes
## clean, 10 with Redis, PostgreSQL and a gunicorn worker taken away (benchmarks/README.md);
## BENCH_ARGS adds options
bench-soak: $(STAMP)
	@command -v redis-server >/dev/null || ./scripts/ensure-redis.sh >/dev/null
	$(BIN)/python -m benchmarks.soak $(BENCH_ARGS)
