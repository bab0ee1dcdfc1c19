"""Table 1 on images: generator, DRS, MH-GAN, DDLS and DOT on the same trained pairs, judged by countable modes.

For each seed, one SN-GAN pair is trained on a data set with a per-channel classifier (stacked digits:
1,000 modes), its discriminator is calibrated against the frozen generator, and every row draws the
same number of samples from that pair. The digit classifier, trained once and never on samples, reads
each sample's mode: the table reports the modes recovered (of 1,000), the KL divergence of the samples'
mode histogram from the data's (uniform), the fraction of high-quality samples (every channel read with
confidence above 0.9), the Fréchet classifier distance to the training split, and the sampling time.

The pipeline's own functions do the work (``ebmlib.recipes.pipeline``): a run folder a seed, so that a
pair can be inspected, resumed or sampled again from the command line.
"""
import statistics
import tempfile
import time
from pathlib import Path

import torch

from .. import images, metrics
from .._checks import positive_int
from .._runtime import progress_bar
from ..samplers import sample
from . import pipeline

# A CPU budget: under two minutes of training a seed on 2 cores. At this budget the generator still
# over-weights some modes and makes many digits the classifier is unsure of: room for a sampler.
TRAIN = dict(steps=2000, n_dis=1, batch_size=64, loss="hinge", lr_g=4e-4, lr_d=4e-4, betas=(0.0, 0.9),
             lr_decay="linear", ema=0.999, checkpoint_every=10 ** 9, sample_every=500, log_every=100)
NETS = dict(arch="cnn", latent_dim=32, ch=32)
# Calibration: the discriminator fine-tuned as a logistic classifier of real images against the frozen
# generator's samples (the pipeline's CIFAR-10 default, PAPER_CALIBRATION, fits a logistic head instead).
CALIBRATION = dict(method="finetune", steps=500, batch_size=256, lr=2e-4)
# The rows: (sampler, options). "drs" is Azadi et al.'s acceptance rule with their γ at the 95th percentile
# of F, as in the toy table; "ddls_paper" is the paper's DDLS (unadjusted Langevin, step size 0.01); "ddls"
# is MALA at a larger step, chosen on a separate tuning pair (not one of the table's seeds); "dot" is
# Tanaka's discriminator optimal transport in the latent space with his settings (Adam, lr 0.01, k_eff from
# 100 pairs), 100 steps.
ROWS = {
    "generator": ("generator", {}),
    "drs": ("drs", {"shift_quantile": 0.95}),
    "mh": ("mh", {"steps": 20}),
    "ddls_paper": ("ddls", {"steps": 100, "step_size": 0.01}),
    "ddls": ("ddls", {"steps": 50, "step_size": 0.3, "mala": True}),
    "dot": ("dot", {"space": "latent"}),
}
ROW_NAMES = {"generator": "Generator only", "drs": "DRS (Azadi, γ q0.95)", "mh": "MH-GAN",
             "ddls_paper": "DDLS (paper: ULA 0.01)", "ddls": "DDLS (MALA 0.3)", "dot": "DOT (latent)",
             "p_t": "p_t by weights e^d"}
COLUMNS = ("modes", "kl", "high_quality", "fcd", "seconds")


def target_weights(G_samples, d, extractor, batch_size=1000):
    """The mode weights of the target p_t = p_g e^d / Z without sampling it: the generator's samples (N, C, H, W),
    each weighted by e^{d(x)} (self-normalised importance weights). A reference that does not depend on any
    sampler. Returns {"kl", "high_quality" (weighted), "ess" (effective sample size of the weights),
    "modes" (those of the samples)}."""
    with torch.no_grad():
        logits = torch.cat([d(x) for x in G_samples.split(batch_size)]).double().cpu()
    weights = torch.softmax(logits, 0)
    _, _, probs = metrics.extract(extractor, G_samples)
    _, confidence, modes = metrics.channel_predictions(probs, extractor.channels, extractor.n_classes)
    coverage = metrics.mode_coverage(modes, extractor.n_classes ** extractor.channels, weights=weights)
    sure = (confidence > metrics.HIGH_QUALITY_CONFIDENCE).all(1).double()
    return {"modes": coverage["modes"], "kl": coverage["kl"], "high_quality": float((weights * sure).sum()),
            "ess": float(1 / weights.square().sum()), "logit_std": float(logits.std())}


def train_pair(run, seed, dataset="stacked-digits", root=None, train=None, nets=None, calibration=None,
               progress=False):
    """Train and calibrate one pair into the run folder ``run``; returns (G, d) in eval mode."""
    nets = {**NETS, **(nets or {})}
    pipeline.train(run, dataset=dataset, root=root, progress=progress, **nets, **{**TRAIN, **(train or {}), "seed": seed})
    pipeline.calibrate(run, seed=seed, progress=progress, **{**CALIBRATION, **(calibration or {})})
    return pipeline.load_calibrated(run)


def image_table(dataset="stacked-digits", seeds=3, n_samples=5000, root=None, runs=None, rows=None, train=None,
                nets=None, calibration=None, progress=None):
    """Every row of :data:`ROWS` (or ``rows``: {name: (sampler, options)}) on the same pair for each seed.

    ``runs``: the folder that keeps a run folder a seed (``seed_<i>``; default: a temporary folder,
    removed at the end). Returns {"rows": [record...], "target": {...}, "meta": {...}}; each record has
    ``row``, ``name``, ``sampler``, ``options``, for each column of :data:`COLUMNS` its ``<col>_mean`` and
    ``<col>_std`` over seeds, and ``per_seed`` (the scores of each seed). ``target``: the same for
    :func:`target_weights` on the generator row's samples (kl, high_quality, ess, logit_std): what an
    exact sampler of p_t would reach, to judge the samplers against.
    """
    positive_int(seeds, "seeds"), positive_int(n_samples, "n_samples")
    info = images.dataset(dataset)
    if not info.classifier_on:
        raise ValueError(f"the image table counts modes with a per-channel classifier; {dataset!r} has none "
                         f"(choose one of {sorted(k for k, v in images.DATASETS.items() if v.classifier_on)})")
    rows = dict(ROWS if rows is None else rows)
    extractor = pipeline.extractor("classifier", dataset, root=root, progress=False)
    reference = metrics.reference_stats(images.load_images(dataset, root)[0], extractor)
    per_seed, target = {name: [] for name in rows}, []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(runs) if runs is not None else Path(scratch)
        bar = progress_bar(total=seeds * (1 + len(rows)), progress=progress, desc="image table")
        for seed in range(seeds):
            bar.set_postfix_str(f"seed {seed}: training")
            G, d = train_pair(folder / f"seed_{seed}", seed, dataset, root, train, nets, calibration)
            bar.update()
            for name, (sampler, options) in rows.items():
                bar.set_postfix_str(f"seed {seed}: {name}")
                out = sample(sampler, G, d, n_samples, seed=1000 + seed, **options)
                scores = metrics.score(out.x, reference, extractor)
                per_seed[name].append({**{k: scores[k] for k in COLUMNS if k != "seconds"}, "seconds": out.seconds,
                                       "accept_rate": out.info.get("accept_rate")})
                if sampler == "generator" and not options:
                    target.append(target_weights(out.x, d, extractor))
                bar.update()
        bar.close()
    records = []
    for name, (sampler, options) in rows.items():
        record = {"row": name, "name": ROW_NAMES.get(name, name), "sampler": sampler, "options": options,
                  **_mean_std(per_seed[name], COLUMNS), "per_seed": per_seed[name]}
        records.append(record)
    target = {"row": "p_t", "name": ROW_NAMES["p_t"], **_mean_std(target, ("kl", "high_quality", "ess", "logit_std")),
              "per_seed": target} if target else None
    meta = {"dataset": dataset, "seeds": seeds, "n_samples": n_samples, "n_reference": reference["n"],
            "extractor": extractor.name, "threshold": metrics.HIGH_QUALITY_CONFIDENCE,
            "kl_floor": (info.n_classes - 1) / (2 * n_samples), "train": {**TRAIN, **(train or {})},
            "nets": {**NETS, **(nets or {})}, "calibration": {**CALIBRATION, **(calibration or {})},
            "total_seconds": time.perf_counter() - start, "torch": torch.__version__, "device": "cpu",
            "threads": torch.get_num_threads()}
    return {"rows": records, "target": target, "meta": meta}


def _mean_std(per_seed, columns):
    out = {}
    for col in columns:
        values = [s[col] for s in per_seed]
        out[f"{col}_mean"] = statistics.fmean(values)
        out[f"{col}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def format_table(table):
    """The image table as text: modes, KL, % high quality, Fréchet classifier distance, seconds (mean ± std)."""
    head = (f"{'':24s} {'modes (of 1000)':>16s} {'KL(q || uniform)':>17s} {'% high quality':>15s} "
            f"{'FCD':>14s} {'s/seed':>7s}")
    lines = [head, "-" * len(head)]
    for r in table["rows"]:
        lines.append(f"{r['name']:24s} {r['modes_mean']:8.1f} ± {r['modes_std']:<5.1f} "
                     f"{r['kl_mean']:9.3f} ± {r['kl_std']:<5.3f} {100 * r['high_quality_mean']:7.1f} ± "
                     f"{100 * r['high_quality_std']:<4.1f} {r['fcd_mean']:7.1f} ± {r['fcd_std']:<4.1f} "
                     f"{r['seconds_mean']:7.1f}")
    t = table.get("target")
    if t:
        lines.append(f"{t['name']:24s} {'':16s} {t['kl_mean']:9.3f} ± {t['kl_std']:<5.3f} "
                     f"{100 * t['high_quality_mean']:7.1f} ± {100 * t['high_quality_std']:<4.1f}   "
                     f"(the generator's samples weighted by e^d: effective sample size {t['ess_mean']:,.0f})")
    meta = table["meta"]
    lines.append(f"{meta['n_samples']} samples a row and seed, mean ± std over {meta['seeds']} seeds; "
                 f"KL floor of {meta['n_samples']} uniform draws ~ {meta['kl_floor']:.3f}")
    return "\n".join(lines)
