"""The GPU proof's command, kept at this path for the docs and notes that name it; the code is the package
``gpu_proof/`` beside this file (``gpu_proof.cli``):

    PYTHONPATH=src python benchmarks/gpu_proof.py --data gpu-data --out $OUT --work /tmp/gpu-proof-work
    PYTHONPATH=src python benchmarks/gpu_proof.py --smoke
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the package, which Python finds before this file of the same name
if importlib.util.find_spec("ino") is None:  # a plain checkout without PYTHONPATH=src
    sys.path.append(str(HERE.parent / "src"))

from gpu_proof.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
