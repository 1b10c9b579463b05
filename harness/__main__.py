"""Entry point: `python -m harness [hydra overrides]` is the same as `ctxbench [overrides]`."""

from harness.cli import main

main()
