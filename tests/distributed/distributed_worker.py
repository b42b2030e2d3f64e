"""Run several gpaco trainings in one torchrun launch (one process start for many runs).

Usage: python -m torch.distributed.run ... distributed_worker.py SPEC.json
SPEC.json: [{"folder": ..., "overrides": [...], "recipe": ...}, ...]; a run starts from its
"recipe" (default: the default recipe).
"""

import json
import sys
from pathlib import Path

from gpaco import distributed as gdist
from gpaco import run as C
from gpaco.train import run_dir as rd
from gpaco import run as T
from gpaco.train import trainer


def main(spec_path: str) -> None:
    gdist.init_from_env("cpu")
    try:
        for run in json.loads(Path(spec_path).read_text()):
            cfg = C.load_config(run.get("recipe", "default"), overrides=run["overrides"])
            folder = Path(run["folder"])
            if gdist.is_main():
                rd.prepare(folder, resume=False, overwrite=True)
            gdist.barrier()
            T.train(cfg, folder)
            gdist.barrier()
    finally:
        gdist.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
