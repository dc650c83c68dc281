#!/usr/bin/python3
"""Writes a random-weight lens checkpoint at a real model's shapes for `npm run bench -- --preset`.

Run with Debian's Python, which has python3-torch (1.13):

    /usr/bin/python3 bench/write_lens_checkpoint.py OUT.pt '<family as JSON>'

The family JSON has the fields of the fixture writer's FAMILIES entries
(scripts/fixtures/make_lens_checkpoints.py) with `dtype` as a string. The checkpoint is built by the
end-to-end fixture writer (make_lens_e2e_checkpoints.build): the predecessor's training layout,
real `torch.save`, the values a trained lens has (projections near the identity, prompt rows at
embedding scale), an optimizer state beside them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
import make_lens_e2e_checkpoints as e2e  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def main() -> None:
    out, spec = Path(sys.argv[1]), json.loads(sys.argv[2])
    family = dict(spec, dtype=DTYPES[spec["model_dtype"]], views=False, compiled=False)
    family["models_keys"] = tuple(family["models_keys"])
    e2e.E2E["bench"] = family
    e2e.fx.FAMILIES["bench"] = family
    ckpt, _dec, _enc = e2e.build("bench", 90)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    torch.save(ckpt, tmp)
    tmp.rename(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
