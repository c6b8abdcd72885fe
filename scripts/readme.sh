#!/usr/bin/env bash
# README.md is generated from nbs/index.ipynb. nbdev_readme needs Quarto, which is not installable everywhere;
# this renders the same notebook (after nbdev's own pre-processing, which drops #| hide cells) with nbconvert.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
python - "$tmp" <<'PY'
import sys, json, re
from pathlib import Path
nb = json.loads(Path("nbs/index.ipynb").read_text())
keep = []
for c in nb["cells"]:
    src = "".join(c["source"])
    if c["cell_type"] == "code" and re.search(r"^#\|\s*(hide|export)\b", src, re.M): continue
    if "google.colab" in src: continue  # the Colab set-up cell (the badge stays, without its "run the next cell" note)
    if c["cell_type"] == "markdown" and "colab-badge.svg" in src: c["source"] = src.split(") On Colab")[0] + ")"
    if c["cell_type"] == "code": c["source"] = "\n".join(l for l in src.split("\n") if not l.startswith("#|")).strip("\n")
    keep.append(c)
nb["cells"] = keep
Path(sys.argv[1], "index.ipynb").write_text(json.dumps(nb))
PY
jupyter nbconvert --log-level ERROR --to markdown "$tmp/index.ipynb" --output-dir "$tmp" >/dev/null
{ echo "<!-- generated from nbs/index.ipynb by scripts/readme.sh: edit the notebook, not this file -->"; echo; cat "$tmp/index.md"; } > README.md
