# The two commands of the README: `make demo` and `make test`. Everything else serves them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
LAB_HOSTS ?= 3
COLLECTION_LINK := .collections/ansible_collections/bulwark/hardening
# Scenarios run side by side, two at a time on the 2 cores the CI machine has.
MOLECULE_JOBS ?= 2
# The longest scenarios start first, so that the last one to start is a short one (xargs takes them in order).
LONGEST_FIRST := firewall bootstrap harden
SCENARIOS ?= $(LONGEST_FIRST) \
  $(filter-out $(LONGEST_FIRST),$(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))))

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_FORCE_COLOR ?= 0

# The support matrix besides .venv's ansible-core 2.19 on Python 3.11 (README, "Support matrix"): one
# virtualenv per row from requirements-matrix-<core>.txt, each on the Python that row names.
MATRIX := 2.20 2.21
MATRIX_PYTHON_2.20 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
MATRIX_PYTHON_2.21 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3.13)
# The end-to-end scenario also runs on the newest row (the oldest is .venv's, in `make molecule`).
MATRIX_NEWEST := 2.21

.PHONY: help venv collection lab-images lab-key lab lab-down demo test lint unit adversarial package sanity molecule docs \
  changelog matrix-venvs matrix bench clean

help:
	@echo "make demo   bring up a lab of $(LAB_HOSTS) Debian hosts and harden them (LAB_HOSTS=N to change)"
	@echo "make test   linters, unit tests, the adversarial suite, the tarball, sanity, every Molecule scenario,"
	@echo "            the support matrix"
	@echo "make lab | lab-down | lab-images | docs | changelog | package | matrix | bench | molecule SCENARIOS='sshd'"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

matrix-venvs: $(foreach core,$(MATRIX),$(VENV)/matrix-$(core)/.installed)
$(VENV)/matrix-%/.installed: requirements-matrix-%.txt
	$(MATRIX_PYTHON_$*) -m venv $(VENV)/matrix-$*
	$(VENV)/matrix-$*/bin/pip install --quiet --disable-pip-version-check -r $<
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

# The end-to-end scenario on the newest row joins the other scenarios' two slots (harden@2.21), and the
# matrix's unit tests and sanity (about 5 min a row) run beside the scenarios, which mostly wait on their
# hosts: one after the other they would add about 10 min to the run.
test: venv collection matrix-venvs
	SCENARIOS="$(filter $(LONGEST_FIRST),$(SCENARIOS)) harden@$(MATRIX_NEWEST) \
	  $(filter-out $(LONGEST_FIRST),$(SCENARIOS))" tests/stages.sh lint unit adversarial package sanity molecule+matrix

lint: venv collection
	$(BIN)/ruff check plugins tests tools molecule
	$(BIN)/ruff format --check plugins tests tools molecule
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/python tools/role_docs.py --check
	$(BIN)/python tools/version_added.py
	$(BIN)/antsibull-changelog lint
	$(BIN)/python tools/changelog.py --check

unit: venv collection
	$(BIN)/pytest -q tests/unit tests/tools

# The adversarial suite (tests/adversarial/README.md): real nft, iptables, sshd, visudo, wg-quick against
# hostile input, killed runs and racing users, in private network and mount namespaces of its own.
adversarial: venv collection
	PYTEST=$(BIN)/pytest tests/adversarial/run.sh

# The tarball a user installs: what is in it, and that it documents itself and runs by FQCN once installed.
package: venv
	tests/package.sh

sanity: venv collection
	tests/sanity.sh

molecule: venv collection lab-images lab-key $(if $(findstring @,$(SCENARIOS)),matrix-venvs)
	printf '%s\n' $(SCENARIOS) | xargs -P $(MOLECULE_JOBS) -I{} \
	  bash -c 'tests/molecule_scenario.sh {}'

docs: venv
	$(BIN)/python tools/role_docs.py

# CHANGELOG.rst for the version in galaxy.yml, from changelogs/fragments (`make lint` checks it is current).
changelog: venv
	$(BIN)/python tools/changelog.py

# Unit tests and sanity on every other row of the support matrix (`make molecule SCENARIOS=harden@2.21` is
# the end-to-end scenario on the newest; `make test` runs it with the other scenarios).
matrix: venv collection matrix-venvs
	tests/matrix.sh $(MATRIX)

# Figures, not timed tests: the firewall with a 10,000-entry allowlist, then one table of harden.yml
# on one and on BENCH_HOSTS fresh lab hosts (first run, no-change re-run, check mode, module calls per
# host, the ratio); it brings up those labs, `make lab-down` removes them.
BENCH_HOSTS ?= 10
bench: venv collection lab-images
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench.harden --hosts $(BENCH_HOSTS)

clean: lab-down
	rm -rf .collections tests/output
