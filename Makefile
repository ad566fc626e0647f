# The two commands a newcomer needs; each does the whole set-up first (idempotent, fast when done).
.PHONY: setup demo test lint bench

setup:
	@scripts/setup

demo: setup
	.venv/bin/obelisk demo

test: setup lint
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check installer screens storage tests bench
	.venv/bin/ruff format --check installer screens storage tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

bench: setup
	.venv/bin/python -m bench.deploy
	.venv/bin/python -m bench.memory
