"""Write notebooks 01-03 and 06 from the cell sources below (outputs stripped, execution counts null).

    python scripts/build_notebooks.py   # rewrites notebooks/01_quickstart.ipynb ... 03, 06_your_data_to_figure.ipynb

Edit the cells here, not in the .ipynb files, so that the notebooks stay reviewable as code. The
notebooks are executed in CI by tests/test_notebooks.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}

QUICKSTART = [
    ("md", """# Quickstart: which AlexNet layer looks most like IT?

We score every layer of AlexNet against two recordings of the same 92 object images (Kiani et al. 2007;
Kriegeskorte et al. 2008, shipped with rsa-bridge): **IT** (one RDM from 674 macaque IT neurons) and **hIT**
(human IT fMRI, 4 subjects x 2 sessions). The network is *untrained* (`weights="none"`: runs offline,
nothing to download) - a control that shows what the architecture alone gives. With the ImageNet weights in your
torch cache, use `weights="default"`. Runs in well under a minute on a laptop CPU."""),
    ("code", """import extractors
import rsa_bridge
from rsa_bridge.datasets import area_rdms
from rsa_bridge.figures import layer_profile
from rsa_bridge import NetworkOptions, StatsOptions, compare_model
from rsa_bridge.app.report import format_table, short_title
from stimuli import load_stimulus_set"""),
    ("md", """## The data

An RDM dataset is an `xarray.Dataset` with one variable per area; each RDM holds the dissimilarity
(1 - Pearson r of the response patterns) of every pair of images. The images and their category labels
come with it."""),
    ("code", """brain = rsa_bridge.load_dataset("kriegeskorte2008_92images")
images = load_stimulus_set(brain.attrs["stimuli_path"])
categories = images.labels("category")
print(brain[["IT", "hIT"]])
categories.value_counts(sort=False)"""),
    ("md", """## Score every layer

`compare_model` extracts the layer activations, computes a correlation-distance RDM per layer, compares each
with each area's RDMs (Spearman r, matched by `stimulus_id`) and adds the statistics: 200 bootstrap samples over
stimuli for 95% CIs and the best layer, and the Nili et al. (2014) noise ceiling of hIT (IT has a single RDM,
so it has none)."""),
    ("code", """model = extractors.load_model("alexnet", weights="none")
result = compare_model("alexnet", dataset="kriegeskorte2008_92images", network=NetworkOptions(models=[model]),
                       progress=False, stats=StatsOptions(bootstrap=200, seed=0))
print(format_table(result))"""),
    ("md", """## Layer x area profile

Bars: 95% bootstrap CI; band: the hIT noise ceiling (lower to upper bound). A model that reached the lower bound
would explain the hIT RDMs as well as the subjects explain each other."""),
    ("code", """fig, ax, handles = layer_profile(result.table, title=short_title(result))"""),
    ("code", """ceiling = result.table.drop_duplicates("area").set_index("area")[["ceiling_lower", "ceiling_upper"]]
best = result.best[result.best["is_best"]][["area", "layer", "similarity", "p_best"]]
display(ceiling, best)"""),
    ("md", """## RDMs side by side

Model layer next to brain area, each shown as percentiles of its dissimilarities (one colour scale for all),
images grouped by category. Faces cluster in both IT RDMs; ask whether they do in the layer."""),
    ("code", """from analyses.figures.rdm_panels import rdm_panels

layer_rdms = result.model_rdms["alexnet|kriegeskorte2008_92images"]
panels = {"alexnet fc7": layer_rdms.sel(layer="fc7"), "IT": area_rdms(brain, "IT").mean("replicate"),
          "hIT (mean of 8)": area_rdms(brain, "hIT").mean("replicate")}
fig, axes, handles = rdm_panels(panels, categories)"""),
    ("md", """## MDS of the IT RDM

Classical (Torgerson) multidimensional scaling places the 92 images in 2-D so that their distances follow the
IT dissimilarities: double-centre the squared dissimilarities and keep the two leading eigenvectors
(`method="metric"` runs scikit-learn's SMACOF instead). Pass `images` to draw each image in place of its dot."""),
    ("code", """from rsa_bridge.figures import mds_plot

fig, ax, handles = mds_plot(brain["IT"], categories, title="macaque IT, 92 images (classical MDS)")"""),
]

YOUR_OWN_MODEL = [
    ("md", """# Your own model

Any `torch.nn.Module` can be scored: name its layers by module path and say how images become tensors. This
notebook scores a small hand-written network, then a local weights file, then compares two models on the
same bootstrap samples. Data: the shipped 92-image set (macaque IT, human IT). Runs in under a minute on a CPU."""),
    ("code", """import tempfile
from pathlib import Path

import torch
from torch import nn
from torchvision import transforms

import extractors
from rsa_bridge import NetworkOptions, StatsOptions, compare_model, compare_models"""),
    ("md", """## A network of your own

An untrained three-block CNN, initialised from a fixed seed (the global torch RNG is left as it was)."""),
    ("code", """class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.head = nn.Linear(256, 10)

    def forward(self, x):
        return self.head(self.block3(self.block2(self.block1(x))).flatten(1))


with torch.random.fork_rng():
    torch.manual_seed(0)
    net = TinyNet().eval()
preprocess = transforms.Compose([transforms.Resize(64), transforms.CenterCrop(64), transforms.ToTensor(),
                                 transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])"""),
    ("md", """## Score it: three lines

Layers are module paths (`extractors.list_layers(net)` lists them); `transform` turns a PIL image into a
tensor (3, H, W)."""),
    ("code", """network = NetworkOptions(models=[net], layers=["block1", "block2", "block3", "head"], transform=preprocess)
result = compare_model("tinynet", ["IT", "hIT"], dataset="kriegeskorte2008_92images", network=network,
                       progress=False)
result.table[["layer", "area", "similarity", "sem", "ceiling_lower", "ceiling_upper"]]"""),
    ("md", """## A local weights file

`weights=PATH` loads a `torch.save(model.state_dict(), PATH)` file into the torchvision architecture (strictly:
every key must match) and records its SHA-256 in the results. Here the file holds an AlexNet initialised with
another seed - with a trained checkpoint of your own the call is the same."""),
    ("code", """folder = Path(tempfile.mkdtemp())
weights_file = folder / "alexnet_seed1.pt"
torch.save(extractors.load_model("alexnet", weights="none", seed=1).state_dict(), weights_file)

result = compare_model("alexnet", ["IT"], dataset="kriegeskorte2008_92images", progress=False,
                       network=NetworkOptions(weights=str(weights_file), layers=["conv1", "conv3", "conv5", "fc7"]))
print(result.results.attrs["weights_sha256"])
result.table[["layer", "area", "similarity"]]"""),
    ("md", """## Compare two models

Both models are scored on the same bootstrap samples of the stimuli, so the difference between their best
layers has a paired CI and p-value. Attaching a `ModelInfo` to your module gives it default layers and its own
preprocessing, so it can sit next to a torchvision model in one call."""),
    ("code", """net.rsa_bridge_info = extractors.ModelInfo(
    name="tinynet", weights="none (seed 0)", transform=preprocess, preprocessing="resize 64, centre-crop 64",
    default_layers=["block1", "block2", "block3", "head"])
alexnet = extractors.load_model("alexnet", weights="none")

both = compare_models(["tinynet", "alexnet"], ["IT", "hIT"], dataset="kriegeskorte2008_92images",
                      network=NetworkOptions(models=[net, alexnet]), progress=False,
                      stats=StatsOptions(bootstrap=200, seed=0))
both.model_differences"""),
    ("code", """both.best[both.best["is_best"]][["model", "area", "layer", "similarity", "p_best"]]"""),
]

NEURAL_DATA = [
    ("md", """# Neural data: from firing rates to RDMs you can trust

The shipped recording of Cowley et al. (2023): 50 macaque V4 neurons, 640 images, 6-10 repetitions each.
We take it through the shapes labs keep data in (a numpy array, a MATLAB file, a CSV table), into
rsa-bridge's firing-rate schema, ask how reliable its neurons and its RDM are, save and reload it, and hand
it to rsatoolbox and Brain-Score. Runs in well under a minute."""),
    ("code", """import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

import rsa_bridge
from rsa_bridge.neural import (export_rates, from_array, load_rates, neuroid_reliability, rates_to_rdm,
                               rdm_reliability, read_neural, save_rates, to_array, to_long_table)
from rsa_bridge.neural.exporters import to_brainscore
from rsa_bridge.neural.rsatoolbox_io import from_rsatoolbox_dataset, rdms_to_rsatoolbox, to_rsatoolbox_dataset
from rsa_bridge.stats import noise_ceiling

work = Path(tempfile.mkdtemp())"""),
    ("md", """## The schema

Firing rates are an `xarray.DataArray` `presentation x neuroid` (Brain-Score's layout): one presentation is one
showing of one stimulus, with coordinates `stimulus_id` and `repetition`; neuroids carry `neuroid_id`,
`region`, `animal`, `session`; `attrs["units"]` names the unit."""),
    ("code", """rates = read_neural("cowley2023_v4_210325_rates").data
print(rates.attrs["units"])
rates"""),
    ("md", """## Import from numpy, .mat and CSV

A lab's array is often neurons x images x repeat slots, NaN where an image was shown fewer times. Stimulus ids
are never taken from positions: say what each image is."""),
    ("code", """array, stimulus_ids, neuroid_ids = to_array(rates)      # (neuroid, stimulus, repetition), NaN-padded
print(array.shape, f"{np.isnan(array).mean():.1%} padding")
np.save(work / "v4.npy", array)
(work / "ids.txt").write_text("\\n".join(stimulus_ids))

from_numpy = from_array(np.load(work / "v4.npy"), stimulus_ids=stimulus_ids, neuroid_ids=neuroid_ids,
                        region="V4", units=rates.attrs["units"])
print(from_numpy.sizes)"""),
    ("code", """export_rates(rates, work / "v4.mat", "mat")
export_rates(rates, work / "v4.csv", "csv")
from_mat = read_neural(work / "v4.mat", stimulus_ids=str(work / "ids.txt"), neuroid_ids=neuroid_ids,
                       region="V4").data
from_csv = read_neural(work / "v4.csv").data
print(open(work / "v4.csv").read().splitlines()[:3])

def same_numbers(a, b):
    # the same rate for every (stimulus, repetition, neuroid), whatever the order of presentations
    key = ["stimulus_id", "repetition", "neuroid_id"]
    ta, tb = (to_long_table(r).sort_values(key).reset_index(drop=True) for r in (a, b))
    return ta[key].astype(str).equals(tb[key].astype(str)) and np.array_equal(ta["rate"], tb["rate"])

print("numpy, mat, csv give the same rates:", all(same_numbers(rates, x) for x in (from_numpy, from_mat, from_csv)))"""),
    ("md", """## Reliability and noise ceilings

Split-half reliability: split each image's repetitions at random into halves (seeded), correlate the halves,
correct to the full data with Spearman-Brown. Per neuron, and for the RDM as a whole - the RDM's reliability
is the ceiling for any model of this one-animal recording."""),
    ("code", """per_neuron = neuroid_reliability(rates, n_splits=20, seed=0)
rdm_rel = rdm_reliability(rates, "correlation", n_splits=20, seed=0)
print(f"neuron reliability median {float(per_neuron.median()):.3f}; "
      f"RDM reliability {rdm_rel.mean:.3f} (SD over splits {rdm_rel.sd:.3f})")
reliable = rates_to_rdm(rates, "correlation", reliability_threshold=0.7, n_splits=20, seed=0)
print(f"{reliable.attrs['neuroid_selection']}: {reliable.attrs['n_neuroids_selected']} of "
      f"{reliable.attrs['n_neuroids_total']} neurons kept (the rule and the excluded ids are in reliable.attrs)")"""),
    ("md", """With several subjects, the Nili et al. (2014) noise ceiling bounds how well any model can do: here the
human IT RDMs of the 92-image set, leaving out one subject (both sessions) at a time."""),
    ("code", """hit = rsa_bridge.load_dataset("kriegeskorte2008_92images")["hIT"]
ceiling = noise_ceiling(hit, "spearman", groups="subject")
print(f"hIT noise ceiling: lower {ceiling.lower:.3f}, upper {ceiling.upper:.3f} ({ceiling.n_rdms} RDMs)")"""),
    ("md", """## Save and load NetCDF

One file with the rates, every coordinate and the provenance; loading validates it."""),
    ("code", """save_rates(rates, work / "v4_rates.nc")
again = load_rates(work / "v4_rates.nc")
xr.testing.assert_equal(again, rates)
print("round trip exact:", bool((again.values == rates.values).all()), f"{(work / 'v4_rates.nc').stat().st_size / 1e6:.2f} MB")"""),
    ("md", """## rsatoolbox and Brain-Score

`to_rsatoolbox_dataset` gives an `rsatoolbox.data.Dataset` (observations = presentations, channels = neurons);
RDM DataArrays convert to `rsatoolbox.rdm.RDMs`. `to_brainscore` gives Brain-Score's in-memory layout
(MultiIndex `presentation` / `neuroid`)."""),
    ("code", """rsa_ds = to_rsatoolbox_dataset(rates)
print(type(rsa_ds).__name__, rsa_ds.n_obs, "observations x", rsa_ds.n_channel, "channels")
back = from_rsatoolbox_dataset(rsa_ds)
print("rsatoolbox round trip:", same_numbers(rates, back))

rdm = rates_to_rdm(rates, "correlation")
rsa_rdms = rdms_to_rsatoolbox(rdm)
print(type(rsa_rdms).__name__, rsa_rdms.n_rdm, "RDM over", rsa_rdms.n_cond, "images")"""),
    ("code", """assembly = to_brainscore(rates)
print(assembly.indexes["presentation"].names)
print("one stimulus selects", assembly.sel(stimulus_id=stimulus_ids[0]).shape)"""),
]


YOUR_DATA_TO_FIGURE = [
    ("md", """# From your images and recordings to a publication figure
A lab has a folder of images and a table of firing rates. This notebook takes both to journal-ready figures:
a stimulus set with a manifest, a CSV of rates read into rsa-bridge's schema, one RDM per animal (so the noise
ceiling can be estimated), layer-by-layer scores of a network and two image-statistics controls with bootstrap
CIs, and four figures saved as vector PDF + PNG at journal width. The images and rates here are synthetic (so the
notebook runs anywhere, in well under a minute); with your own, only the first two steps change."""),
    ("code", """import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

import rsa_bridge
from rsa_bridge.figures import layer_profile, mds_plot, model_comparison, rdm_with_icons, save_figure
from rsa_bridge.neural import rates_to_rdm_dataset, rdm_reliability, read_neural
from rsa_bridge import NetworkOptions, StatsOptions, compare_models
from rsa_bridge.app.report import format_table, write_outputs
from stimuli import load_stimulus_set

work = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)"""),
    ("md", """## 1. Your images
A stimulus set is a folder of images and a `manifest.csv` with one row per image: `stimulus_id`, `filename`,
and any label columns (here `category`). Your own folder needs only the manifest. The 24 images drawn here
come in three categories: coloured blobs, gratings and checkerboards."""),
    ("code", """size = 96
yy, xx = np.mgrid[0:size, 0:size] / size

def blob(r):
    cx, cy, s = r.uniform(0.3, 0.7), r.uniform(0.3, 0.7), r.uniform(0.08, 0.2)
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s ** 2))[..., None] * r.uniform(0.3, 1.0, 3)

def stripes(r):
    theta, freq = r.uniform(0, np.pi), r.uniform(4, 10)
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)))
    return np.repeat(grating[..., None], 3, axis=2)

def checks(r):
    n = int(r.integers(3, 9))
    return ((np.floor(xx * n) + np.floor(yy * n)) % 2)[..., None] * r.uniform(0.4, 1.0, 3)

folder = work / "images"
folder.mkdir()
manifest = []
for category, draw in {"blob": blob, "stripes": stripes, "checks": checks}.items():
    for k in range(8):
        sid = f"{category}_{k}"
        Image.fromarray((255 * np.clip(draw(rng), 0, 1)).astype(np.uint8)).save(folder / f"{sid}.png")
        manifest.append({"stimulus_id": sid, "filename": f"{sid}.png", "category": category})
pd.DataFrame(manifest).to_csv(folder / "manifest.csv", index=False)

images = load_stimulus_set(folder)          # checks every file exists and is an image
categories = images.labels("category")      # stimulus_id -> category
print(len(images), "images;", categories.value_counts(sort=False).to_dict())"""),
    ("md", """## 2. Your neural data as CSV
The long table every acquisition system can write: one row per (`stimulus_id`, `neuroid_id`, `repetition`) with
its `rate`; optional `region`, `animal`, `session`, `units`. Rows are matched to images by `stimulus_id`, never by
position. Here two monkeys x 15 simulated IT neurons respond to the category and to the pixels, 4 repetitions
each. (Other formats - numpy, MATLAB, Brain-Score NetCDF - are read the same way: see notebook 03.)"""),
    ("code", """ids = images.stimulus_ids
onehot = pd.get_dummies(categories.loc[ids]).to_numpy(float)                       # (24 images, 3)
pixels = np.stack([np.asarray(Image.open(p).resize((8, 8))).ravel() / 255 for p in images.paths])
features = np.hstack([3 * onehot, pixels @ rng.normal(size=(pixels.shape[1], 4)) / 8])
rows = []
for animal in ("monkey_A", "monkey_B"):
    tuning = rng.normal(size=(features.shape[1], 15))
    mean_rate = np.log1p(np.exp(features @ tuning))                                # (24, 15) spikes/s, > 0
    for rep in range(4):
        counts = rng.poisson(5 * mean_rate) / 5
        for i, sid in enumerate(ids):
            for j in range(15):
                rows.append((sid, f"{animal}_n{j:02d}", rep, counts[i, j], "IT", animal))
csv = work / "it_rates.csv"
pd.DataFrame(rows, columns=["stimulus_id", "neuroid_id", "repetition", "rate", "region", "animal"]).to_csv(
    csv, index=False)
print(*open(csv).read().splitlines()[:3], sep="\\n")"""),
    ("md", """## 3. Rates -> RDMs, one per animal
`read_neural` validates the table (duplicates, non-numeric rates, mixed units are one-line errors).
The split-half reliability of the RDM says how much signal there is to explain; one RDM per animal gives the
Nili et al. (2014) noise ceiling (leave one animal out)."""),
    ("code", """rates = read_neural(csv, units="spikes/s").data
reliability = rdm_reliability(rates, "correlation", n_splits=20, seed=0)
print(dict(rates.sizes), f"RDM split-half reliability {reliability.mean:.2f} (SD {reliability.sd:.2f})")
brain = rates_to_rdm_dataset(rates, "correlation", by="animal", name="my_lab_it")
dataset_file = rsa_bridge.save_dataset(brain, work / "my_lab_it.nc")
brain"""),
    ("md", """## 4. Score a network and two controls
Every AlexNet layer (untrained here: `weights="none"`; use `"default"` with ImageNet weights in your torch
cache), the raw pixels and a Gabor-filter bank, on the same 500 bootstrap samples of the images. A progress bar
shows in Jupyter and on a terminal; `progress=False` (or `rsa_bridge.set_progress(False)`) turns every bar off."""),
    ("code", """result = compare_models(["alexnet", "pixels", "gabor"], ["IT"], dataset=str(dataset_file),
                        network=NetworkOptions(stimuli=folder, weights="none", cache=False),
                        stats=StatsOptions(bootstrap=500, seed=0))
print(format_table(result))"""),
    ("md", """## 5. The figures
**Layer profile**: similarity by layer, 95% bootstrap CIs, the IT noise ceiling as a band in IT's colour, the
controls as labelled reference lines."""),
    ("code", """fig_profile, ax, handles = layer_profile(result.table, title="untrained AlexNet vs IT of two monkeys")"""),
    ("md", """**Model comparison**: each model's best layer, with brackets over the pairs that differ (two-sided paired
bootstrap test, Holm-corrected over the pairs) - the figure rsatoolbox's `plot_model_comparison` draws."""),
    ("code", """fig_models, ax, handles = model_comparison(result, "IT")
pd.DataFrame(handles["pairs"])"""),
    ("md", """**What the neurons see**: the IT RDM (mean over the two animals) as an MDS map with the images as icons,
and as a matrix with the images along its axes."""),
    ("code", """it_rdm = brain["IT"].mean("animal")
fig_mds, ax, handles = mds_plot(it_rdm, categories, images, title="IT, mean of 2 monkeys")
fig_rdm, ax, handles = rdm_with_icons(it_rdm, images, title="IT, mean of 2 monkeys")"""),
    ("md", """## 6. Save for the journal
`save_figure` writes a vector PDF (TrueType fonts embedded) and a 300 dpi PNG at the figure's print size: 85 mm
(single column) or 180 mm (double). The same figures come from the command line:

    rsa-bridge compare --model alexnet --model pixels --model gabor --dataset my_lab_it.nc --stimuli images --out results
    rsa-bridge figure model_comparison --results results --area IT"""),
    ("code", """written = []
for name, fig in {"profile": fig_profile, "models": fig_models, "mds": fig_mds, "rdm": fig_rdm}.items():
    written += save_figure(fig, work / f"figure_{name}")
print([f"{p.name} ({p.stat().st_size // 1024} kB)" for p in written])

write_outputs(result, work / "results")     # what `rsa-bridge compare --out results` writes
from rsa_bridge.app.cli import main as rsa_bridge_cli
code = rsa_bridge_cli(["figure", "model_comparison", "--results", str(work / "results"), "--area", "IT"])  # prints what it wrote
assert code == 0  # the exit status: 0 = success, 2 = a user error said in one line on stderr"""),
]


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A v4 notebook with no outputs and null execution counts."""
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    for k, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = f"cell-{k:02d}"  # fixed ids: rebuilding gives the same file
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


NOTEBOOK_CELLS = {"01_quickstart.ipynb": QUICKSTART, "02_your_own_model.ipynb": YOUR_OWN_MODEL,
                  "03_neural_data.ipynb": NEURAL_DATA, "06_your_data_to_figure.ipynb": YOUR_DATA_TO_FIGURE}


def main() -> int:
    for name, cells in NOTEBOOK_CELLS.items():
        path = NOTEBOOKS / name
        nbformat.write(build(cells), path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
