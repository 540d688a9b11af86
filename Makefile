# midol: every command creates .venv on first use and installs the pinned environment into it.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.midol-installed
PRESET ?= cpu
JOBS ?= 1

.PHONY: install demo test test-slow reproduce lab docs clean-runs outputs

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install midol with its pinned dependencies

demo: install      ## the main job: pretrain on the embedded default (SynthMed-5, cpu preset) via papermill
	@mkdir -p runs
	$(BIN)/papermill -k python3 --cwd nbs nbs/03_pretrain.ipynb runs/03_pretrain.ipynb

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

test: install      ## notebooks clean, library in sync, driver notebooks' tests (nbdev-test), pytest, and the other notebooks re-run against their stored outputs (nbval)
	@$(BIN)/python tools/check_sync.py
	$(BIN)/nbdev-test --n-workers 2 --file-re '$(shell $(BIN)/python tools/make_outputs.py --drivers-re)'
	$(BIN)/python -m pytest -q tests nbs $(NBVAL)

test-slow: install ## the slow notebook cells and slow pytest tests
	$(BIN)/nbdev-test --n-workers 1 --flags slow
	$(BIN)/python -m pytest -q -m slow

reproduce: install ## every table and figure: make reproduce PRESET=cpu JOBS=2 (JOBS: pretraining runs at once; PRESET=paper on GPUs)
	@mkdir -p runs
	$(BIN)/papermill -k python3 --cwd nbs nbs/06_reproduce.ipynb runs/06_reproduce.ipynb -p preset $(PRESET) -p jobs $(JOBS)

lab: install       ## open the notebooks in JupyterLab
	$(BIN)/jupyter lab --ServerApp.root_dir=. nbs/index.ipynb

docs: install      ## the documentation site in docs/ (Sphinx + MyST-NB, offline; open docs/index.html): every notebook with its stored outputs, API pages, search
	$(BIN)/python tools/build_docs.py docs

clean-runs:
	rm -rf runs

.PHONY: medmnist
medmnist: install  ## the real-data recipe on every MedMNIST 2-D file of a folder: make medmnist DATA=<folder> [PRESET=cpu JOBS=2 OVERRIDES='{"balance": "source"}']
	@test -n "$(DATA)" || { echo "give the folder of MedMNIST .npz files: make medmnist DATA=<folder>"; exit 2; }
	@mkdir -p runs
	$(BIN)/papermill -k python3 --cwd nbs nbs/06b_medmnist.ipynb runs/06b_medmnist-$(PRESET).ipynb -p folder $(abspath $(DATA)) -p preset $(PRESET) -p jobs $(JOBS) $(if $(OVERRIDES),-p overrides '$(OVERRIDES)')

.PHONY: student
student: install   ## the students' copy in student/ (git ignores it): nbgrader's release of the exercises, no solutions/ or classroom/, its HTML pages in student/docs
	$(BIN)/python tools/make_student.py student --docs

.PHONY: grade release
release: install   ## the nbgrader course of the exercises in runs/grading (release/exercises/ holds the students' notebooks)
	$(BIN)/python classroom/grade.py release runs/grading

grade: install     ## autograde the students' notebooks with nbgrader: make grade SUBMISSIONS=<folder of <student>/<notebook>.ipynb>; writes runs/grading/grades.csv
	@test -n "$(SUBMISSIONS)" || { echo "give the folder of submissions: make grade SUBMISSIONS=<folder>/<student>/<notebook>.ipynb"; exit 2; }
	$(BIN)/python classroom/grade.py grade $(abspath $(SUBMISSIONS)) runs/grading

outputs: install   ## execute every notebook and store its outputs in nbs/ (drivers on the committed runs): make outputs MEDMNIST=<folder> [NBS="02b_routing 05_figures"]
	@test -f runs/pretrain/cpu-midol/checkpoint.pt || $(MAKE) demo
	$(BIN)/python tools/make_outputs.py $(NBS) $(if $(MEDMNIST),--medmnist $(abspath $(MEDMNIST)))
