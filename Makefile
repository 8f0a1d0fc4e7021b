# The README's two commands: `make book` (PROFILE=smoke|quick|paper) and `make test`.
PROFILE ?= quick
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
TINY    := $(if $(filter smoke,$(PROFILE)),--tiny,)

.PHONY: book test data check-book bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[book,test]'
	@rm -f $(VENV)/.installed-* && touch $@

data: $(STAMP)
	$(PY) -m cgt.data build $(TINY)

book: data
	$(PY) -m cgt.book build --profile $(PROFILE)

test: $(STAMP)
	$(PY) -m cgt.data build --tiny
	$(PY) -m pytest

check-book: $(STAMP)
	$(PY) -m cgt.book check

bench: $(STAMP)
	$(PY) -m cgt.bench

clean:
	rm -rf _build
