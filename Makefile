# Two commands for a fresh machine (Python >= 3.11; PostgreSQL optional):
#   make demo   set up, load demo data, create users, serve the console on 127.0.0.1:$(PORT)
#   make test   set up, lint, type-check, run the suite on SQLite and on a throwaway PostgreSQL
#   make bench-console   time every console page at 1 M messages (docs/performance.md)
#   make bench-operations   time reconcile, replay, erase, purge, health at 1 M (docs/operations.md)
#   make bench-ingest [BEFORE=<rev>]   webhook throughput against the floor (docs/performance.md)
#   make bench-cpu BEFORE=<rev>   CPU a webhook request costs, against a revision, the floor, the hand-written views
#   make bench-footprint [BEFORE=<rev>]   a worker's memory and start-up by provider (docs/performance.md)
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000

.PHONY: demo test setup bench-console bench-operations bench-ingest bench-cpu bench-footprint

setup:
	@scripts/setup.sh "$(PYTHON)" "$(VENV)"

demo: setup
	$(VENV)/bin/python manage.py migrate --no-input
	$(VENV)/bin/python manage.py demo_setup --port $(PORT)
	@# Once the server is up, post live signed Twilio callbacks to it (duplicated, shuffled).
	@($(VENV)/bin/python manage.py sms_delivery_simulate --url http://127.0.0.1:$(PORT) --wait 60 --messages 25 --delay 0.1) &
	$(VENV)/bin/python manage.py runserver 127.0.0.1:$(PORT)

test: setup
	@VENV="$(VENV)" scripts/install-browser.sh
	@VENV="$(VENV)" scripts/test.sh

bench-console: setup
	@VENV="$(VENV)" scripts/bench.sh console

bench-operations: setup
	@VENV="$(VENV)" scripts/bench.sh operations

bench-ingest: setup
	@VENV="$(VENV)" scripts/bench-ingest.sh

bench-cpu: setup
	@VENV="$(VENV)" scripts/bench-ingest.sh cpu

bench-footprint: setup
	@VENV="$(VENV)" scripts/bench-footprint.sh
