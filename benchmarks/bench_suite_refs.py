"""The reference side of ``bench_suite.py``: CropMAE's propagation and scorers, run as they are, in other processes.

Nothing here imports the reference code: it is run by ``--reference-python`` from a checkout under ``--reference``.
Two stand-ins are written into the work folder at run time (``shims/``), because CropMAE has no command that runs
one task's propagation or its PCK scorer alone:

- ``cropmae_propagate.py`` builds the arguments CropMAE's ``downstreams/propagation/start.py`` builds
  (``_label_propagation``: ``batch_size=5, workers=4, no_l2=False, norm_mask=False, long_mem=[0]``, the task's
  temperature, top-k, radius, context and crop size from ``util.py``'s parser defaults, read from the checkout) and
  calls ``src/test.py``'s ``main``. ``start.py`` itself also imports wandb and the DAVIS toolkit and always scores
  after propagating; ``python -m src.test`` stops on ``utils.arguments``, which nothing imports.
- ``cropmae_pck.py`` calls ``src/eval/eval_pck.py``'s ``main`` with ``start.py``'s ``feat_res=[20, 20]``: the
  script's own entry point never runs (``if "__name__" == "__main__"`` compares two constants).

``src/eval/eval_vip.py`` runs as it is (``-g`` ground truth, ``-p`` predictions).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ino.data.jhmdb import keypoints_path, write_keypoints

PROPAGATION = Path("downstreams") / "propagation"
#: what CropMAE's propagation and scorers import, beyond the standard library
IMPORTS = "import torch, timm, cv2, imageio, scipy.io, skimage.io, matplotlib, PIL"
#: CropMAE's JHMDB scorer maps grid coordinates to pixels with this (start.py ``_evaluation_jhmdb``)
FEAT_RES = 20
SETUP_HINT = "fetch alexandre-eymael/CropMAE into references/CropMAE (see the docstring of benchmarks/bench_suite.py)"

PROPAGATE_SHIM = '''"""Stand-in for CropMAE's start.py _label_propagation: one task, start.py's arguments."""
import argparse
import sys

propagation, task, checkpoint, filelist, save_path = sys.argv[1:6]
sys.path.insert(0, propagation)
import torch  # noqa: E402
import util  # noqa: E402  CropMAE's downstreams/propagation/util.py: the per-task defaults
from src import test  # noqa: E402

defaults = util.get_args_parser().parse_args([])
args = argparse.Namespace(
    model_type="vits16", resume=checkpoint, save_path=save_path, filelist=filelist,
    temperature=getattr(defaults, f"{task}_temperature"), topk=getattr(defaults, f"{task}_topk"),
    radius=getattr(defaults, f"{task}_radius"), video_len=getattr(defaults, f"{task}_video_len"),
    crop_size=getattr(defaults, f"{task}_crop_size"),
    batch_size=5, workers=4, seed=0, no_l2=False, norm_mask=False, long_mem=[0],
    device="cuda" if torch.cuda.is_available() else "cpu",
)
args.img_size = args.crop_size
test.main(args)
'''

PCK_SHIM = '''"""Stand-in for CropMAE's start.py _evaluation_jhmdb: eval_pck.main, printed as one JSON line."""
import argparse
import json
import sys

eval_dir, filelist, src_folder = sys.argv[1:4]
sys.path.insert(0, eval_dir)
import eval_pck  # noqa: E402

pck = eval_pck.main(argparse.Namespace(filelist=filelist, src_folder=src_folder, feat_res=[20, 20]))
print("PCK " + json.dumps({str(k): float(v[0]) for k, v in pck.items()}))
'''


@dataclass(frozen=True)
class CropMAE:
    """A usable CropMAE checkout and the Python that runs it; ``shims`` holds the stand-ins."""

    root: Path
    python: str
    shims: Path

    @property
    def propagation(self) -> Path:
        return self.root / PROPAGATION

    def propagate_command(self, task: str, checkpoint: Path, filelist: str, save: Path) -> list[str]:
        """Run from the folder holding ``filelist`` (a relative name: CropMAE picks the task by substrings of it)."""
        shim = str(self.shims / "cropmae_propagate.py")
        return [self.python, shim, str(self.propagation), task, str(checkpoint), filelist, str(save)]

    def scorer_command(self, task: str, filelist: str, predictions: Path, gt_dir: Path) -> list[str]:
        eval_dir = self.propagation / "src" / "eval"
        if task == "jhmdb":
            return [self.python, str(self.shims / "cropmae_pck.py"), str(eval_dir), filelist, str(predictions)]
        return [self.python, str(eval_dir / "eval_vip.py"), "-g", str(gt_dir), "-p", str(predictions)]


def find_cropmae(reference: Path, python: str, work: Path) -> CropMAE | str:
    """The checkout, or one line saying why it cannot be used and how to get it."""
    root = reference / "CropMAE"
    if not (root / PROPAGATION / "src" / "test.py").is_file():
        return f"no CropMAE checkout at {root}: timing the ino side only; {SETUP_HINT}"
    probe = subprocess.run([python, "-c", IMPORTS], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"{python} cannot run CropMAE ({last}): timing the ino side only; {SETUP_HINT}"
    shims = work / "shims"
    shims.mkdir(parents=True, exist_ok=True)
    (shims / "cropmae_propagate.py").write_text(PROPAGATE_SHIM)
    (shims / "cropmae_pck.py").write_text(PCK_SHIM)
    return CropMAE(root.resolve(), python, shims)


def write_list(task: str, root: Path, names: list[str], folder: Path) -> str:
    """CropMAE's list file, named as it expects (``jhmdb_vallist.txt``: joint file, frames; ``vip_vallist.txt``:
    frames, labels); returns the name, relative to ``folder``."""
    if task == "jhmdb":
        rows = [f"{root / 'joint_positions' / n / 'joint_positions.mat'} {root / 'Rename_Images' / n}" for n in names]
    else:
        rows = [f"{root / 'Images' / n} {root / 'Annotations' / 'Category_ids' / n}" for n in names]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{task}_vallist.txt").write_text("".join(f"{row}\n" for row in rows))
    return f"{task}_vallist.txt"


def clear_label_caches(vip_root: Path) -> int:
    """Delete the one-hot ``.npy`` files CropMAE caches next to VIP's annotations, so every run starts cold."""
    caches = list((vip_root / "Annotations" / "Category_ids").glob("*/*.npy"))
    for path in caches:
        path.unlink()
    return len(caches)


def dat_to_keypoints(predictions: Path, jhmdb_root: Path, names: list[str], out: Path) -> Path:
    """CropMAE's ``<i>.dat`` (2, 15, T) grid coordinates as ``ino``'s keypoint files, mapped as eval_pck.py maps them.

    ``x * W / 20`` and ``y * H / 20`` with the first frame's size; a joint marked lost (x < 0) becomes NaN.
    """
    for index, name in enumerate(names):
        grid = np.load(predictions / f"{index}.dat", allow_pickle=True)
        width, height = Image.open(jhmdb_root / "Rename_Images" / name / "00001.png").size
        joints = np.stack([grid[0] / FEAT_RES * width, grid[1] / FEAT_RES * height], axis=-1).transpose(1, 0, 2)
        joints[grid[0].T < 0] = np.nan
        write_keypoints(keypoints_path(out, name), name, joints)
    return out


def parse_scores(task: str, stdout: str) -> dict[str, float]:
    """The reference scorer's numbers: PCK at 0.1 ... 0.5 (percent) or VIP mIoU (a fraction, as ``ino``'s)."""
    if task == "jhmdb":
        line = next(line for line in stdout.splitlines() if line.startswith("PCK "))
        return {f"PCK@{key}": value for key, value in json.loads(line.removeprefix("PCK ")).items()}
    match = re.search(r">>> mean IU ([-\d.eE]+|nan)", stdout)
    if match is None:
        raise ValueError("eval_vip.py printed no mean IU")
    return {"mIoU": float(match.group(1))}
