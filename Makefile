# feereg: two commands do all set-up on a fresh machine.
#   make run    install, migrate, load the demo registry, serve on http://127.0.0.1:5000/
#   make test   install, then run the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
# Debian packages the project needs (installed as root with apt-get when missing).
# PDFs (WeasyPrint): Pango lays out text; a CJK font so Chinese prints as Chinese (WenQuanYi
# Micro Hei, 1.6 MB, against 56 MB for Noto CJK) and fontconfig to find it (only recommended
# by the font, and we install without recommends); libharfbuzz-subset0 subsets fonts in C,
# without it WeasyPrint falls back to fontTools and writing a PDF is up to 15x slower.
# End-to-end tests: Debian's Chromium, driven by Playwright through its executable path
# (Playwright's own browser download is never used).
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-wqy-microhei chromium

.PHONY: run test install system python i18n migrate demo serve messages clean

run: install migrate demo serve

test: install
	$(BIN)/python -m pytest

install: system python i18n

system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "please install as root: apt-get install$$missing"; exit 1; fi; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall only when the declared dependencies change.
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

python: $(VENV)/.installed

i18n: python
	$(BIN)/feereg i18n compile

migrate: install
	$(BIN)/feereg db upgrade

demo: migrate
	$(BIN)/feereg demo --if-empty

serve:
	$(BIN)/feereg serve --host $(HOST) --port $(PORT)

# For developers: refresh the message catalog after changing user-visible text.
messages: python
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o /tmp/feereg-messages.pot .
	$(BIN)/pybabel update -i /tmp/feereg-messages.pot -d feereg/translations -l zh --no-fuzzy-matching

clean:
	rm -rf $(VENV) instance .pytest_cache
