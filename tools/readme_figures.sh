#!/usr/bin/env bash
# The README's pictures of the edits and of the real-photo workflow, made by the CLI itself on
# the bundled demo model (MSE loss, 1000 steps). Run from the repository root with i2s
# installed (and dlib, for the photo part): bash tools/readme_figures.sh
set -euo pipefail
OUT=out/readme
EX=examples/images
mkdir -p "$OUT" docs
python - <<'PY'
import skimage.data
from PIL import Image
Image.fromarray(skimage.data.astronaut()).save("out/readme/astronaut.png")
PY

# Embed four held-out faces once; the edits reuse the latents.
i2s embed $EX/faces/face_seed101.png $EX/faces/face_seed104.png $EX/faces/face_seed110.png \
    $EX/faces/face_seed113.png --loss mse --steps 1000 --batch-size 4 --out "$OUT/embed" -q
L="$OUT/embed"
i2s morph "$L/face_seed101/latent.npz" "$L/face_seed104/latent.npz" --frames 9 --format gif \
    --out "$OUT/morph" -q
i2s style-transfer "$L/face_seed110/latent.npz" "$L/face_seed113/latent.npz" --sweep \
    --out "$OUT/style" -q
# No photo pair of one person with and without an expression ships offline: the "expressive"
# image is the mirrored face, so what is transferred is the left-right turn of the head.
python - <<'PY'
import numpy as np
from PIL import Image
face = np.asarray(Image.open("examples/images/faces/face_seed104.png"))
Image.fromarray(face[:, ::-1].copy()).save("out/readme/face_seed104_mirrored.png")
PY
i2s expression --target "$L/face_seed110/latent.npz" --neutral $EX/faces/face_seed104.png \
    --expressive "$OUT/face_seed104_mirrored.png" --loss mse --steps 1000 --sweep \
    --normalise source --strengths 0,0.5,1,1.5 --out "$OUT/expression" -q

# A real photo: align -> embed -> edit -> paste back.
i2s align "$OUT/astronaut.png" --size 64 --out "$OUT/align"
i2s embed "$OUT/astronaut.png" --align --loss mse --steps 1000 --out "$OUT/photo" -q
i2s style-transfer "$OUT/photo/astronaut/latent.npz" "$L/face_seed113/latent.npz" \
    --layers 5- --paste-back "$OUT/astronaut.png" --out "$OUT/photo_edit" -q
i2s paste-back "$OUT/photo/astronaut/reconstruction.png" --into "$OUT/astronaut.png" \
    --transform "$OUT/photo/astronaut/transform.json" --out "$OUT/photo/pasted.png"

python - <<'PY'
import shutil
import numpy as np
from PIL import Image
from i2s.media.grid import labelled_grid

o = "out/readme"
shutil.copy(f"{o}/morph/strip.png", "docs/edit_morph.png")
shutil.copy(f"{o}/morph/morph.gif", "docs/edit_morph.gif")
shutil.copy(f"{o}/style/sweep.png", "docs/edit_style_sweep.png")
shutil.copy(f"{o}/expression/sweep.png", "docs/edit_expression.png")
load = lambda p: np.asarray(Image.open(p).convert("RGB"))
small = [load(f"{o}/align/astronaut.png"), load(f"{o}/photo/astronaut/reconstruction.png"),
         load(f"{o}/photo_edit/result.png")]
Image.fromarray(labelled_grid([small], None, ["aligned", "W+ (demo)", "edited"])).save(
    "docs/photo_small.png")
big = [load(f"{o}/astronaut.png"), load(f"{o}/photo/pasted.png"),
       load(f"{o}/photo_edit/result_pasted.png")]
big = [np.asarray(Image.fromarray(b).resize((256, 256), Image.LANCZOS)) for b in big]
Image.fromarray(labelled_grid([big], None, ["original", "reconstruction pasted back",
                                            "edit pasted back"])).save("docs/photo_pasted.png")
print("wrote docs/edit_*.png, docs/photo_*.png")
PY
