# The two commands of the README: `make demo` and `make test`. Everything else serves them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
LAB_HOSTS ?= 3
COLLECTION_LINK := .collections/ansible_collections/bulwark/hardening
# Scenarios run side by side, two at a time on the 2 cores the CI machine has.
MOLECULE_JOBS ?= 2
SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_FORCE_COLOR ?= 0

.PHONY: help venv collection lab-images lab-key lab lab-down demo test lint unit sanity molecule docs bench clean

help:
	@echo "make demo   bring up a lab of $(LAB_HOSTS) Debian hosts and harden them (LAB_HOSTS=N to change)"
	@echo "make test   linters, unit tests, sanity, then every Molecule scenario on lab hosts"
	@echo "make lab | lab-down | lab-images | docs | bench | molecule SCENARIOS='sshd'"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The checkout is the collection: link it where Ansible looks for bulwark.hardening.
collection: $(COLLECTION_LINK)
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

lab-images: venv
	$(BIN)/python -m tests.lab images

lab: venv collection
	$(BIN)/python -m tests.lab up --hosts $(LAB_HOSTS)

lab-key: venv
	$(BIN)/python -m tests.lab key >/dev/null

lab-down: venv
	$(BIN)/python -m tests.lab down

demo: lab
	$(BIN)/ansible-playbook -i inventories/lab playbooks/harden.yml
	$(BIN)/ansible-playbook -i inventories/lab playbooks/summary.yml

test: venv collection
	tests/stages.sh lint unit sanity molecule

lint: venv collection
	$(BIN)/ruff check plugins tests tools molecule
	$(BIN)/ruff format --check plugins tests tools molecule
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/python tools/role_docs.py --check

unit: venv collection
	$(BIN)/pytest -q tests/unit

sanity: venv collection
	tests/sanity.sh

molecule: venv collection lab-images lab-key
	printf '%s\n' $(SCENARIOS) | xargs -P $(MOLECULE_JOBS) -I{} \
	  bash -c 'tests/molecule_scenario.sh {}'

docs: venv
	$(BIN)/python tools/role_docs.py

# Figures, not timed tests: the firewall with a 10,000-entry allowlist, then harden.yml's no-change
# re-run on one and on BENCH_HOSTS lab hosts (it brings up that lab; `make lab-down` removes it).
BENCH_HOSTS ?= 10
bench: venv collection lab-images
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench.harden --hosts $(BENCH_HOSTS)

clean: lab-down
	rm -rf .collections tests/output
