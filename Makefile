# Every target bootstraps .venv itself: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8080
STAMP  := $(VENV)/.installed

.PHONY: run test contracts live drift bench bench-peers soak lint lint-spec docs generate clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[mock,dev]"
	touch $(STAMP)

# Start the mock, both pods, on 127.0.0.1:$(PORT) (make run PORT=9000). ARGS passes more flags.
run: $(STAMP)
	$(BIN)/kaleyra-mock --port $(PORT) $(ARGS)

# The whole check: lint (code and spec), types, every test. The dashboard's browser tests drive
# Debian's chromium, and the Redis store's tests a real redis-server: both installed here where
# missing (about 40 s on a fresh machine, as root).
test: $(STAMP) lint-spec docs
	@command -v chromium >/dev/null || { echo "test: chromium is missing, installing Debian's"; \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	@command -v redis-server >/dev/null || { echo "test: redis-server is missing, installing Debian's"; \
		apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
	$(BIN)/ruff check mock_server kaleyra_rcs tests contracts benchmarks soak tools examples
	$(BIN)/ruff format --check mock_server kaleyra_rcs tests contracts benchmarks soak tools examples
	$(BIN)/mypy
	$(BIN)/pytest -q

# The contract suites over HTTP against the real server (both pods), plus schemathesis' CLI;
# JUnit XML, schemathesis reports and the coverage table land in reports/.
contracts: $(STAMP)
	$(BIN)/python -m contracts.serve

# The live smoke suite and the doc-drift report (reports/drift.md, .json) against a real pod:
# KALEYRA_API_KEY, KALEYRA_SID, KALEYRA_POD, KALEYRA_AGENT_NUMBER (see README). Read-only unless
# KALEYRA_ALLOW_DESTRUCTIVE=1 and ARGS=--destructive.
live: $(STAMP)
	$(BIN)/pytest contracts --target live $(ARGS)

# The same drift report from recorded exchanges, with no network and no credentials: a cassette of
# `make live` (reports/live-cassette.jsonl) or of `kaleyra-mock --record`. AGENT=N names the
# configured agent (default: the first documented testers GET answered 200); ARGS=--out DIR.
drift: $(STAMP)
	@test -n "$(CASSETTE)" || { echo "usage: make drift CASSETTE=FILE [AGENT=N] [ARGS='--out DIR']"; exit 2; }
	$(BIN)/python -m contracts.live.cassette $(CASSETTE) $(if $(AGENT),--agent $(AGENT)) $(ARGS)

# The benchmark figures (needs wrk: apt-get install wrk); results in benchmarks/results/.
# Prism and WireMock are measured beside the mock when npm (and Java, for WireMock) are here.
bench: $(STAMP)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory bench-peers; \
	else echo "bench: npm is missing, Prism, WireMock and Mockoon are skipped (Debian: apt-get install npm)"; fi
	$(BIN)/python -m benchmarks.run $(ARGS)

# The peers, pinned by benchmarks/peers/package-lock.json (about 210 MB in node_modules).
bench-peers: benchmarks/peers/node_modules/.installed
benchmarks/peers/node_modules/.installed: benchmarks/peers/package-lock.json
	cd benchmarks/peers && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The long reliability runs (fuzzing over a socket, 100k-request memory, races, SIGTERM under load,
# kill -9 of the state file, stop times of Ctrl-C and SIGTERM), about 2 minutes; figures in reports/soak.json.
soak: $(STAMP)
	$(BIN)/python -m soak.run $(ARGS)

# openapi.yaml through Spectral (spectral:oas, .spectral.yaml) and Redocly (recommended,
# redocly.yaml): any error fails. Both pinned by tools/lint/package-lock.json (about 85 MB).
LINTERS := tools/lint/node_modules/.installed
$(LINTERS): tools/lint/package-lock.json
	@command -v npm >/dev/null || { echo "lint-spec: npm is missing, installing Debian's"; \
		apt-get update -qq && apt-get install -y -qq npm >/dev/null; }
	cd tools/lint && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint-spec: $(LINTERS)
	tools/lint/node_modules/.bin/spectral lint --fail-severity error --display-only-failures openapi.yaml
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true tools/lint/node_modules/.bin/redocly lint \
		--format summary openapi.yaml

lint: $(STAMP) lint-spec
	$(BIN)/ruff check mock_server kaleyra_rcs tests contracts benchmarks soak tools examples
	$(BIN)/ruff format --check mock_server kaleyra_rcs tests contracts benchmarks soak tools examples
	$(BIN)/mypy

# The README's generated sections (the scenario table) from openapi.yaml; `make test` runs it first,
# so a scenario added to the spec is listed without a second edit.
docs: $(STAMP)
	$(BIN)/python tools/readme.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis benchmarks/peers/node_modules tools/lint/node_modules

# Regenerate the client from openapi.yaml (a test regenerates into a temp dir and fails on drift).
generate: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/openapi-python-client generate --path openapi.yaml --meta none \
		--config opc.yaml --output-path kaleyra_rcs/_generated --overwrite --fail-on-warning
	rm -rf kaleyra_rcs/_generated/.ruff_cache
