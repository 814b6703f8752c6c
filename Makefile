# Two commands for a fresh machine (Python >= 3.11; PostgreSQL optional):
#   make demo   set up, load demo data, create users, serve the console on 127.0.0.1:8000
#   make test   set up, lint, check, run the suite on SQLite and on a throwaway PostgreSQL
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test setup

setup:
	@scripts/setup.sh "$(PYTHON)" "$(VENV)"

demo: setup
	$(VENV)/bin/python manage.py migrate --no-input
	$(VENV)/bin/python manage.py demo_setup
	@# Once the server is up, post live signed Twilio callbacks to it (duplicated, shuffled).
	@(sleep 5; $(VENV)/bin/python manage.py sms_delivery_simulate --messages 25 --delay 0.1) &
	$(VENV)/bin/python manage.py runserver 127.0.0.1:8000

test: setup
	@VENV="$(VENV)" scripts/test.sh
