# ctxbench. The two commands a newcomer needs: `make bench` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
RUN ?=
COMPARE ?=
# Machines without an NVIDIA driver get PyTorch's CPU build (plain `torch` is a multi-GB CUDA build).
TORCH_CPU ?= torch==2.13.0
# Extra pip options, e.g. an offline GPU box: PIP_OPTS="--no-index --find-links wheelhouse"
PIP_OPTS ?=
PY_VERSION ?= 3.12
# Extras installed into .venv. An offline GPU box takes EXTRAS=dev: its wheelhouse skips the browser
# test and keeps the box's own transformers.
EXTRAS ?= dev,browser,hf
WHEELHOUSE ?= wheelhouse
STAMP := $(VENV)/.installed

.PHONY: install bench report test test-gpu lint wheelhouse peers clean

install: $(STAMP)

# The venv also sees the invoking interpreter's packages (a GPU box's CUDA torch and triton),
# behind its own: we add that interpreter's site-packages as a .pth file.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PYTHON) -c "import site; print('\n'.join(site.getsitepackages()))" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/parent-site.pth"
	if ! command -v nvidia-smi >/dev/null 2>&1 && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		$(BIN)/pip install -q $(PIP_OPTS) $(TORCH_CPU); fi
	$(BIN)/pip install -q $(PIP_OPTS) -e '.[$(EXTRAS)]'
	touch $@

bench: install
	$(BIN)/python -m harness $(ARGS)

report: install
	@test -n "$(RUN)" || { echo "usage: make report RUN=results/<run-id> [COMPARE=results/<other>]"; exit 2; }
	$(BIN)/python -m harness.report $(RUN) $(if $(COMPARE),--compare $(COMPARE))

test: install
	$(BIN)/python -m pytest -q -m "not gpu" $(ARGS)

test-gpu: install
	$(BIN)/python -m pytest -q -m gpu $(ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Offline wheels for a GPU box with no network (its own torch/triton/CUDA stay as they are).
wheelhouse: install
	$(BIN)/python -m harness.wheelhouse --python-version $(PY_VERSION) --dest $(WHEELHOUSE) $(ARGS)

# The kernels suite's peers on a GPU box: mamba-ssm's and causal-conv1d's CUDA built for this GPU
# alone (minutes, not the ~9 of their own setup), their Python packages and fla, importable
# from .venv. Sources from `make wheelhouse ARGS=--peers` (or pip download on a connected box).
peers: install
	$(BIN)/python scripts/build_cuda_peers.py --sdists $(WHEELHOUSE) --out $(VENV)/peers --pth
	$(BIN)/pip install -q $(PIP_OPTS) --find-links $(WHEELHOUSE) --no-deps \
		$$($(BIN)/python -c "from harness.wheelhouse import PEER_WHEELS; print(*PEER_WHEELS)")

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
