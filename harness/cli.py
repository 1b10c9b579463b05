"""ctxbench command line (Hydra). Examples:

    ctxbench                                        # suite=auto: GPU default, or smoke on CPU
    ctxbench suite=kernels 'sweep.context=[4k,64k,1m]'
    ctxbench -m size=370m,1.3b                      # Hydra multirun: one run per size
    python -m harness suite=selftest                # same entry point

Bad configuration exits with status 2 before anything runs, naming the field and valid choices.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness import config as C
from harness.env import REPO_ROOT

CONF_DIR = REPO_ROOT / "conf"
EXIT_CONFIG = 2


def _pick_suite(cfg: DictConfig) -> DictConfig:
    """suite=auto: recompose with the GPU default suite or `smoke`, and say which."""
    from harness.env import detect

    hw = detect(cfg.hardware.device, cfg.hardware.gpus)
    picked = cfg.suite.gpu if hw.device == "cuda" else cfg.suite.cpu
    why = f"CUDA GPU found: {hw.name}" if hw.device == "cuda" else "no CUDA GPU"
    print(f"suite=auto: picked '{picked}' ({why}); choose with suite=<name>")
    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith("suite=")]
    return hydra.compose(config_name="config", overrides=[*overrides, f"suite={picked}"])


def _choice(name: str) -> str:
    return HydraConfig.get().runtime.choices.get(name) or ""


def _app(cfg: DictConfig) -> None:
    from harness import session

    try:
        if cfg.suite.name == "auto":
            cfg = _pick_suite(cfg)
        prepared = session.prepare(cfg, C.to_object(cfg), size=_choice("size"))
    except C.ConfigError as exc:
        print(f"ctxbench: config error: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    if cfg.run.dry_run:
        from harness.dryrun import describe

        print(describe(prepared, cfg.run.results_dir))
        return
    session.execute(prepared)


def main() -> None:
    C.register()
    hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)(_app)()


if __name__ == "__main__":
    main()
