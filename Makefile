# Two commands on a fresh machine (see README.md):
#   make book   create .venv if missing, install requirements.txt, build the web book
#   make test   run the whole test suite in the same environment
# and the developer loop:
#   make check  the unit and property tests only (no notebooks, book, browser or grader runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: book test check env lab student student-check handout grade pin clean

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going
	@echo
	@echo "The book is built. Open: file://$(CURDIR)/_build/html/index.html"
	@echo "(or serve it: $(BIN)/python -m http.server -d _build/html 8000, then http://localhost:8000)"

# Each notebook runs once, top to bottom, in the smoke profile:
#   lessons/*            by nbval: the student versions, what a student runs in Colab;
#   book/* in the toc    by the book build in tests/test_book.py (allow_errors false,
#                        _config.yml): the concept pages' student versions;
#   book/figures_check   by nbval: the one book/ notebook outside the table of contents.
# A master (masters/) differs from its student version only in its solutions:
# tests/test_exercises.py runs each solution against its check, test_records ties every
# lesson's recorded full run to its master's exact source, and tests/test_grader_workflow.py
# runs a lesson master top to bottom in the grader. Each notebook costs 7-10 s of kernel
# start and imports before its first line of work, so none runs twice.
# One torch thread per pytest worker: two workers with two threads each on two cores
# contend (test_yolo_learns_one_batch, two copies at once: 9.0-9.3 s each with two threads,
# 4.2-5.2 s with one).
# pytest's exit code 5 (no tests collected) is not a failure.
NBVAL_NOTEBOOKS = $(wildcard lessons book/figures_check.ipynb)
test: $(STAMP)
	VIZLIB_PROFILE=smoke OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadscope --durations=25 \
	  --nbval-lax --nbval-current-env -p no:cacheprovider tests $(NBVAL_NOTEBOOKS); \
	  rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

# Markers in pyproject.toml; the browser and book markers also follow the fixtures
# (tests/conftest.py), so no test here starts Chromium or builds the book.
check: $(STAMP)
	$(BIN)/python -m pytest -q -n $(JOBS) -p no:cacheprovider -m "not slow and not browser and not book" tests

lab: $(STAMP)
	$(BIN)/jupyter lab

# Instructors (see book/for_instructors.md):
#   make student               rewrite the committed student versions from masters/
#   make student OUT=handout   the same files under handout/, to hand out
#   make student-check         write nothing; fail if a student version is missing or stale
#   make grade SUBMISSIONS=dir ASSIGNMENT=masters/lessons/fcn.ipynb [OUT=grades]
#              [SECRET=file] [HIDDEN=dir]   the secret of the hidden cases, your own cases
# (MASTERS=dir reads other masters than masters/.)
OUT ?=
MASTERS ?=
STUDENT_ARGS = $(if $(MASTERS),--masters $(MASTERS)) $(if $(OUT),--out $(OUT))
# "make student --check" is make's own --check-symlink-times (the L flag), not a check:
# refuse it rather than rewrite the student versions and say all is well.
student: $(STAMP)
	@case "$(firstword -$(MAKEFLAGS))" in -*L*) \
	  echo "make student --check is make's own option; to check, run: make student-check"; \
	  exit 2;; esac
	$(BIN)/python -m vizlib.exercises.student $(STUDENT_ARGS)

student-check: $(STAMP)
	$(BIN)/python -m vizlib.exercises.student --check $(STUDENT_ARGS)

# make handout [OUT=handout]: the student versions under OUT and OUT.zip of them with a
# HANDOUT.md, to post on a course site (each first cell installs this vizlib release).
HANDOUT = $(or $(OUT),handout)
handout: $(STAMP)
	$(BIN)/python -m vizlib.exercises.student $(if $(MASTERS),--masters $(MASTERS)) \
	  --out $(HANDOUT) --archive $(HANDOUT).zip

# After a version bump (vizlib/__init__.py) or in a fork (_config.yml's repository.url):
# rewrite every notebook's Colab install block for this release (tools/colab_install.py).
pin: $(STAMP)
	$(BIN)/python tools/colab_install.py

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" -a -n "$(ASSIGNMENT)" || \
	  { echo "usage: make grade SUBMISSIONS=<folder of .ipynb> ASSIGNMENT=<master notebook> [OUT=grades] [SECRET=<file>] [HIDDEN=<folder>] [ONLY=<names>]"; exit 2; }
	$(BIN)/python -m vizlib.exercises.grade $(SUBMISSIONS) --assignment $(ASSIGNMENT) --out $(or $(OUT),grades) \
	  $(if $(SECRET),--secret-file $(SECRET)) $(if $(HIDDEN),--hidden $(HIDDEN)) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf _build
