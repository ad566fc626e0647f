# The two commands a newcomer needs; each does the whole set-up first (idempotent, fast when done).
.PHONY: setup demo iso test test-iso lint bench

setup:
	@scripts/setup

demo: setup
	.venv/bin/obelisk demo

iso: setup
	.venv/bin/obelisk iso --output obelisk-live.iso

# Two workers, one test file each at a time: QEMU boots and mkfs waits overlap on two cores.
test: setup lint
	.venv/bin/python -m pytest -q -n 2 --dist loadfile

test-iso: setup
	OBELISK_ISO_TESTS=1 .venv/bin/python -m pytest -q tests/boot/test_iso_boot.py

lint: setup
	.venv/bin/ruff check installer screens storage tests bench
	.venv/bin/ruff format --check installer screens storage tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

bench: setup
	.venv/bin/python -m bench.deploy
	.venv/bin/python -m bench.memory
