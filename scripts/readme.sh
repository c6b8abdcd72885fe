#!/usr/bin/env bash
# README.md is generated from nbs/index.ipynb. Its result cells read results/ and bench/results/, so the notebook is executed first
# (in place: the docs site shows the same tables), then rendered: `#| hide` and `#| export` cells are dropped, `#| echo: false`
# cells keep only their output. nbdev_readme needs Quarto, which is not installable everywhere; this uses execnb and nbconvert.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${POISON_NB_VENV:-.venv}"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$VENV/bin/python" ]; then . "$VENV/bin/activate"; fi
tmp="$(mktemp -d)"
python - "$tmp" <<'PY'
import sys, json, re, os
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
skip = lambda c: c.cell_type == "code" and (re.search(r"^#\|\s*eval:\s*false", c.source, re.M) or "nbdev_export" in c.source)
nb = read_nb("nbs/index.ipynb")
os.chdir("nbs"); CaptureShell().run_all(nb, exc_stop=True, preproc=skip); os.chdir("..")
write_nb(nb, "nbs/index.ipynb")
nb = json.loads(Path("nbs/index.ipynb").read_text())
keep = []
for c in nb["cells"]:
    src = "".join(c["source"])
    if c["cell_type"] == "code" and re.search(r"^#\|\s*(hide|export)\b", src, re.M): continue
    if "google.colab" in src: continue  # the Colab set-up cell (the badge stays, without its "run the next cell" note)
    if c["cell_type"] == "markdown" and "colab-badge.svg" in src: c["source"] = src.split(") On Colab")[0] + ")"
    if c["cell_type"] == "code" and re.search(r"^#\|\s*echo:\s*false", src, re.M):  # only the output, as markdown
        md = [o["data"].get("text/markdown") or o["data"].get("text/plain") for o in c.get("outputs", []) if "data" in o]
        keep.append({"cell_type": "markdown", "metadata": {}, "source": "\n".join("".join(x) for x in md if x)}); continue
    if c["cell_type"] == "code": c["source"] = "\n".join(l for l in src.split("\n") if not l.startswith("#|")).strip("\n")
    keep.append(c)
nb["cells"] = keep
Path(sys.argv[1], "index.ipynb").write_text(json.dumps(nb))
PY
nbdev_clean --fname nbs/index.ipynb
jupyter nbconvert --log-level ERROR --to markdown "$tmp/index.ipynb" --output-dir "$tmp" >/dev/null
{ echo "<!-- generated from nbs/index.ipynb by scripts/readme.sh: edit the notebook, not this file -->"; echo; cat "$tmp/index.md"; } > README.md
