"""Table 1 of the DDLS paper on the 25-Gaussian grid: generator alone, DRS, MH-GAN and DDLS on the
same trained pairs, mean ± std over seeds."""
import statistics

import torch

from .. import toy
from .._checks import positive_int
from ..energy import calibrate
from ..nets import MLPDiscriminator, MLPGenerator
from ..samplers import sample
from ..train import train_gan
from . import wgan as wgan_recipe

# A budget at which the generator alone is clearly imperfect, as in the paper: it finds every mode but
# puts only about half of its samples within 4 std of one (flanks, bridges between modes).
TRAIN = dict(steps=3000, batch_size=256, loss="ns", lr_g=5e-4, lr_d=5e-4, betas=(0.5, 0.9))
# The GAN's own D lags its G and, as a ReLU net, cannot carve a bowl as steep as the log ratio of the
# narrow modes (std 0.05). Calibration keeps D frozen and fits a Fourier-feature correction d + r
# against the frozen G (energy.ResidualLogit): exact samplers of p_t then keep more than 99% of their
# mass within 4 std of a mode, against a few percent less for a fine-tuned D (chapter 05 compares them).
CALIBRATION = dict(method="residual", steps=1000, batch_size=1024, residual={"scale": 0.5})
NETS = dict(latent_dim=2, hidden=128, depth=3, d_hidden=128)
# DDLS with the Metropolis correction (MALA). With a 2-D latent, a mode the generator rarely makes has a
# thin latent preimage, a narrow steep well of E(z); unadjusted Langevin steps overshoot such wells and
# its chains drift out of them, so ULA loses the rare modes that p_t keeps. MALA rejects those moves.
# The chains start at the paper's step size, 0.01, and halve it every 20 of their 160 steps: large early
# steps carry them off the bridges and out of shallow side wells, small late ones let them settle into
# the steep bottoms of the modes' wells, where a large step is mostly rejected.
SAMPLER_OPTIONS = {
    "generator": {},
    "drs": {"m_quantile": 0.99},
    "mh": {"steps": 50},
    "ddls": {"steps": 160, "step_size": 1e-2, "mala": True, "decay": 0.5, "decay_every": 20},
}
METHOD_NAMES = {"generator": "Generator only", "drs": "DRS", "mh": "MH-GAN", "ddls": "GAN w. DDLS",
                "wgan_generator": "WGAN-GP generator", "wgan_ddls": "WGAN critic + DDLS"}


def train_pair(seed, dataset="grid25", train=None, nets=None, progress=None):
    """Train an MLP generator/discriminator pair on a toy data set; returns (G, D, history).

    ``train`` and ``nets`` override entries of :data:`TRAIN` and :data:`NETS` (``hidden`` is the
    generator's width, ``d_hidden`` the discriminator's).
    """
    train, nets = {**TRAIN, **(train or {})}, {**NETS, **(nets or {})}
    torch.manual_seed(seed)
    G = MLPGenerator(latent_dim=nets["latent_dim"], hidden=nets["hidden"], depth=nets["depth"])
    D = MLPDiscriminator(hidden=nets["d_hidden"], depth=nets["depth"])
    history = train_gan(G, D, toy.dataset(dataset), seed=seed, progress=progress, **train)
    return G, D, history


# The WGAN rows (chapter 06): a WGAN-GP pair per seed, its critic calibrated the same way as the GAN's
# discriminator, then DDLS. A critic is not a log density ratio; calibration makes it one.
WGAN_METHODS = {"wgan_generator": "generator", "wgan_ddls": "ddls"}


def _run_seed(task):
    """One trained pair and its samplers: the unit of work of :func:`table1` (picklable, so it can run in
    a worker process). Returns (family, seed, {method: (mode_stats without counts, seconds)})."""
    family, seed, cfg = task
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    if family == "gan":
        G, D, _ = train_pair(seed, train=cfg["train"], nets=cfg["nets"], progress=cfg["progress"])
    else:
        G, D, _ = wgan_recipe.train_wgan_pair(seed, train=cfg["wgan_train"], nets=cfg["wgan_nets"],
                                              progress=cfg["progress"])
    d = calibrate(D, G, toy.sample_grid25, seed=seed, progress=cfg["progress"], **cfg["calibration"])
    results = {}
    for method in cfg["methods"]:
        sampler = WGAN_METHODS.get(method, method)
        out = sample(sampler, G, d, cfg["n_samples"], seed=1000 + seed, **cfg["options"][method])
        stats = toy.mode_stats(out.x)
        stats.pop("counts")
        results[method] = (stats, out.seconds)
    return family, seed, results


def table1(seeds=5, n_samples=10_000, methods=("generator", "drs", "mh", "ddls"), wgan=True, train=None,
           sampler_options=None, calibration=None, workers=1, progress=None):
    """Run every method on the same trained pair for each seed; returns a list of records.

    ``methods`` run on the GAN pairs of :func:`train_pair`; with ``wgan=True`` each seed also trains a
    WGAN-GP pair (``ebmlib.recipes.wgan.train_wgan_pair``) and adds the rows ``wgan_generator`` and
    ``wgan_ddls`` (DDLS on its calibrated critic). ``workers`` > 1 runs the trained pairs in that many
    processes with one thread each (small nets use a core better that way than with two threads); the
    numbers do not depend on it.

    Each record: ``method``, ``modes_mean``/``modes_std``, ``hq_mean``/``hq_std`` (fraction of
    high-quality samples), ``hq_sample_std_mean``/``hq_sample_std_std`` (std of the high-quality
    samples), ``seconds`` (sampling time per seed, mean), ``per_seed`` (raw mode_stats), and
    ``n_samples``, ``seeds``.
    """
    positive_int(seeds, "seeds"), positive_int(n_samples, "n_samples"), positive_int(workers, "workers")
    families = {"gan": tuple(methods)}
    if wgan:
        families["wgan"] = tuple(WGAN_METHODS)
    all_methods = [m for ms in families.values() for m in ms]
    options = {m: {**SAMPLER_OPTIONS.get(WGAN_METHODS.get(m, m), {}), **((sampler_options or {}).get(m, {}))}
               for m in all_methods}
    # everything a worker needs travels with the task: module-level settings are resolved here
    base = {"train": {**TRAIN, **(train or {})}, "nets": dict(NETS), "n_samples": n_samples,
            "wgan_train": dict(wgan_recipe.WGAN_TRAIN), "wgan_nets": dict(wgan_recipe.WGAN_NETS),
            "calibration": {**CALIBRATION, **(calibration or {})}, "options": options,
            "threads": 1 if workers > 1 else None, "progress": False if workers > 1 else progress}
    tasks = [(family, seed, {**base, "methods": ms}) for family, ms in families.items() for seed in range(seeds)]
    if workers > 1:
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            done = pool.map(_run_seed, tasks, chunksize=1)
    else:
        done = [_run_seed(task) for task in tasks]
    raw = {m: [] for m in all_methods}
    seconds = {m: [] for m in all_methods}
    for _, _, results in done:  # in task order: GAN seeds, then WGAN seeds (Pool.map keeps the order)
        for m, (stats, secs) in results.items():
            raw[m].append(stats)
            seconds[m].append(secs)
    records = []
    for m in all_methods:
        def col(key):
            values = [r[key] for r in raw[m]]
            return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

        (modes_mean, modes_std), (hq_mean, hq_std), (s_mean, s_std) = col("modes"), col("hq_fraction"), col("hq_std")
        records.append({"method": m, "name": METHOD_NAMES.get(m, m), "modes_mean": modes_mean,
                        "modes_std": modes_std, "hq_mean": hq_mean, "hq_std": hq_std,
                        "hq_sample_std_mean": s_mean, "hq_sample_std_std": s_std,
                        "seconds": statistics.fmean(seconds[m]), "per_seed": raw[m],
                        "n_samples": n_samples, "seeds": seeds, "options": options[m]})
    return records


def format_table(records):
    """Table 1 as text: recovered modes, % high quality, std of high-quality samples (mean ± std)."""
    head = f"{'':16s} {'# recovered modes':>18s} {'% high quality':>15s} {'std high quality':>17s} {'s/seed':>7s}"
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(f"{r['name']:16s} {r['modes_mean']:10.1f} ± {r['modes_std']:<5.1f} "
                     f"{100 * r['hq_mean']:8.1f} ± {100 * r['hq_std']:<4.1f} "
                     f"{r['hq_sample_std_mean']:9.3f} ± {r['hq_sample_std_std']:<5.3f} {r['seconds']:7.2f}")
    return "\n".join(lines)
