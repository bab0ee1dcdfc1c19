"""Table 1 of the DDLS paper on the 25-Gaussian grid: generator alone, DRS, MH-GAN and DDLS on the
same trained pairs, mean ± std over seeds."""
import statistics

import torch

from .. import toy
from .._checks import positive_int
from ..energy import calibrate
from ..nets import MLPDiscriminator, MLPGenerator
from ..samplers import SAMPLERS, reweight, sample
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
# ``ddls_paper`` is DDLS as the paper writes it: unadjusted Langevin at ε = 0.01, no decay, 1,000 steps
# (t = Nε/2 = 5 time units of the diffusion, several relaxation times of the prior's part of the energy).
# ``drs`` is Azadi et al.'s acceptance rule with their γ at the 95th percentile of F.
SAMPLER_OPTIONS = {
    "generator": {},
    "drs": {"shift_quantile": 0.95},
    "mh": {"steps": 50},
    "ddls_paper": {"steps": 1000, "step_size": 1e-2},
    "ddls": {"steps": 160, "step_size": 1e-2, "mala": True, "decay": 0.5, "decay_every": 20},
    "dot": {"space": "latent"},
    "dot_target": {"space": "target"},
}
METHOD_NAMES = {"generator": "Generator only", "drs": "DRS", "mh": "MH-GAN", "ddls_paper": "DDLS paper (ULA)",
                "ddls": "DDLS MALA (tuned)", "dot": "DOT (latent)",
                "dot_target": "DOT (target)", "reference": "p_t quadrature", "wgan_generator": "WGAN-GP generator",
                "wgan_ddls": "WGAN critic + DDLS", "wgan_reference": "WGAN p_t quadrature"}
# The sampler behind each row that is not named after one.
ROW_SAMPLER = {"ddls_paper": "ddls", "dot_target": "dot", "wgan_generator": "generator", "wgan_ddls": "ddls"}
# p_t's mode weights without any sampler: quadrature on two randomly shifted lattices over the 2-D latent
# space (samplers.reweight). Two shifts give the reference's own error.
REFERENCE = dict(n=600_000, lattice=True)


def reference_weights(G, d, seed=0, n_samples=10_000, **options):
    """p_t's 25 mode weights and how far to trust them, from two independent reference runs.

    Returns a dict: ``weights`` (25 floats, from the first run), ``reference_tv`` (total variation
    between the two runs: the reference's own error), ``sampling_floor`` (the total variation that
    ``n_samples`` exact draws from p_t show by chance), ``data_tv`` (p_t's distance from the data's
    equal weights), ``hq`` (p_t's share within 4 std of a mode) and ``ess`` (effective sample size).
    """
    options = {**REFERENCE, **options}
    runs = [reweight(G, d, seed=seed + k, **options) for k in (0, 1)]
    weights = [toy.mode_weights(r.x, r.info["weights"]) for r in runs]
    first = runs[0]
    near = torch.cdist(first.x.float().cpu(), toy.grid_centers()).min(dim=1).values
    hq = float(first.info["weights"][near < 4 * toy.GRID_STD].sum())
    return {"weights": weights[0].tolist(), "reference_tv": toy.total_variation(*weights),
            "sampling_floor": toy.multinomial_tv(weights[0], n_samples, seed=seed),
            "data_tv": toy.total_variation(weights[0], torch.full((25,), 1 / 25)), "hq": hq,
            "ess": first.info["ess"]}


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
WGAN_METHODS = ("wgan_generator", "wgan_ddls")
# The rows of the default table. ``ddls_paper`` (10,000 unadjusted chains of 1,000 steps a seed) and the
# WGAN rows cost more than all of these together; ``table1(methods=..., wgan=True)`` (the command line's
# ``--paper-ula --wgan``) adds them.
DEFAULT_METHODS = ("generator", "drs", "mh", "ddls", "dot", "dot_target")
# Rows are handed to the workers longest first, so that short ones fill the gaps at the end.
ROW_COST = {"ddls_paper": 10, "ddls": 4, "wgan_ddls": 4, "dot": 3, "dot_target": 2, "mh": 1}


def _fit_pair(task):
    """Train, calibrate and measure p_t for one seed: the first unit of work of :func:`table1` (picklable, so
    it can run in a worker process). Returns (family, seed, G, d, reference)."""
    family, seed, cfg = task
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    if family == "gan":
        G, D, _ = train_pair(seed, train=cfg["train"], nets=cfg["nets"], progress=cfg["progress"])
    else:
        G, D, _ = wgan_recipe.train_wgan_pair(seed, train=cfg["wgan_train"], nets=cfg["wgan_nets"],
                                              progress=cfg["progress"])
    d = calibrate(D, G, toy.sample_grid25, seed=seed, progress=cfg["progress"], **cfg["calibration"])
    reference = reference_weights(G, d, seed=10_000 + 2 * seed, n_samples=cfg["n_samples"], **cfg["reference"])
    return family, seed, G, d, reference


def _sample_row(task):
    """One sampler on one trained pair: the second unit of work of :func:`table1`. Returns (family, seed,
    method, mode statistics without counts, seconds)."""
    family, seed, method, G, d, reference, cfg = task
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    out = sample(ROW_SAMPLER.get(method, method), G, d, cfg["n_samples"], seed=1000 + seed, **cfg["options"][method])
    stats = toy.mode_stats(out.x)
    stats.pop("counts")
    weights = toy.mode_weights(out.x)
    stats["mode_tv"] = toy.total_variation(weights, reference["weights"])
    stats["data_tv"] = toy.total_variation(weights, torch.full((25,), 1 / 25))
    return family, seed, method, stats, out.seconds


def _row_tasks(pair, cfg):
    family, seed, G, d, reference = pair
    methods = sorted(cfg["methods"][family], key=lambda m: -ROW_COST.get(m, 0))
    return [(family, seed, m, G, d, reference, cfg) for m in methods]


def _run_tasks(fit_tasks, cfg, workers):
    """Every pair, then every row of it; in ``workers`` processes, rows start as soon as their pair is ready."""
    pairs, rows = [], []
    if workers == 1:
        for task in fit_tasks:
            pairs.append(_fit_pair(task))
            rows += [_sample_row(t) for t in _row_tasks(pairs[-1], cfg)]
        return pairs, rows
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        fitting = {pool.submit(_fit_pair, task) for task in fit_tasks}
        sampling = set()
        while fitting or sampling:
            done, _ = wait(fitting | sampling, return_when=FIRST_COMPLETED)
            for future in done & fitting:  # a pair is ready: its rows join the queue
                pairs.append(future.result())
                sampling |= {pool.submit(_sample_row, t) for t in _row_tasks(pairs[-1], cfg)}
            rows += [future.result() for future in done & sampling]
            fitting, sampling = fitting - done, sampling - done
    return pairs, rows


def table1(seeds=5, n_samples=10_000, methods=DEFAULT_METHODS, wgan=False, train=None, sampler_options=None,
           calibration=None, reference=None, workers=1, progress=None):
    """Run every method on the same trained pair for each seed; returns a list of records.

    ``methods`` run on the GAN pairs of :func:`train_pair` (:data:`DEFAULT_METHODS`; add ``"ddls_paper"``
    for DDLS as the paper writes it); with ``wgan=True`` each seed also trains a WGAN-GP pair
    (``ebmlib.recipes.wgan.train_wgan_pair``) and adds the rows ``wgan_generator`` and ``wgan_ddls``
    (DDLS on its calibrated critic). Each family also gets a sampler-free reference row (``reference``,
    ``wgan_reference``): p_t's own mode weights by quadrature (:func:`reference_weights`; ``reference``
    overrides entries of :data:`REFERENCE`). ``workers`` > 1 runs the pairs, then each row on its pair, in
    that many processes with one thread each (small nets use a core better that way than with two
    threads); the numbers do not depend on it.

    Each sampler's record: ``method``, ``modes_mean``/``modes_std``, ``hq_mean``/``hq_std`` (fraction of
    high-quality samples), ``hq_sample_std_mean``/``hq_sample_std_std`` (std of the high-quality
    samples), ``mode_tv_mean``/``mode_tv_std`` (total variation between the sampler's 25 mode weights
    and p_t's), ``data_tv_mean``/``data_tv_std`` (the same against the data's equal weights),
    ``seconds`` (sampling time per seed, mean), ``per_seed`` (raw statistics), ``n_samples``, ``seeds``,
    ``options``. A reference record has ``mode_tv_*`` = the two reference runs' distance (its own
    error), ``sampling_floor_*`` (what n_samples exact draws show by chance), ``data_tv_*``, ``hq_*``,
    ``ess_mean`` and ``per_seed`` (with p_t's mode weights).
    """
    positive_int(seeds, "seeds"), positive_int(n_samples, "n_samples"), positive_int(workers, "workers")
    families = {"gan": tuple(methods)}
    if wgan:
        families["wgan"] = WGAN_METHODS
    all_methods = [m for ms in families.values() for m in ms]
    unknown = [m for m in all_methods if ROW_SAMPLER.get(m, m) not in SAMPLERS]
    if unknown:
        raise ValueError(f"unknown Table 1 rows {unknown}; choose among {sorted(set(SAMPLER_OPTIONS) | set(ROW_SAMPLER))}")
    options = {m: {**SAMPLER_OPTIONS.get(m, SAMPLER_OPTIONS.get(ROW_SAMPLER.get(m), {})),
                   **((sampler_options or {}).get(m, {}))} for m in all_methods}
    # everything a worker needs travels with the task: module-level settings are resolved here
    cfg = {"train": {**TRAIN, **(train or {})}, "nets": dict(NETS), "n_samples": n_samples,
           "wgan_train": dict(wgan_recipe.WGAN_TRAIN), "wgan_nets": dict(wgan_recipe.WGAN_NETS),
           "calibration": {**CALIBRATION, **(calibration or {})}, "options": options,
           "reference": {**REFERENCE, **(reference or {})}, "methods": families,
           "threads": 1 if workers > 1 else None, "progress": False if workers > 1 else progress}
    fit_tasks = [(family, seed, cfg) for family in families for seed in range(seeds)]
    pairs, rows = _run_tasks(fit_tasks, cfg, workers)
    found = {(f, s, m): (stats, secs) for f, s, m, stats, secs in rows}
    for family, seed, _, _, ref in pairs:
        found[family, seed, "reference" if family == "gan" else "wgan_reference"] = (ref, 0.0)
    raw, seconds = {}, {}
    for family, ms in families.items():  # rows in the order asked for, seeds in order
        for m in ms + ("reference" if family == "gan" else "wgan_reference",):
            for seed in range(seeds):
                stats, secs = found[family, seed, m]
                raw.setdefault(m, []).append(stats)
                seconds.setdefault(m, []).append(secs)
    common = {"n_samples": n_samples, "seeds": seeds}
    records = []
    for m in raw:
        def col(key):
            values = [r[key] for r in raw[m]]
            return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

        record = {"method": m, "name": METHOD_NAMES.get(m, m)}
        if m in ("reference", "wgan_reference"):
            for key, name in [("reference_tv", "mode_tv"), ("sampling_floor", "sampling_floor"), ("data_tv", "data_tv"),
                              ("hq", "hq")]:
                record[f"{name}_mean"], record[f"{name}_std"] = col(key)
            record.update(ess_mean=col("ess")[0], per_seed=raw[m], options=dict(cfg["reference"]), **common)
        else:
            for key, name in [("modes", "modes"), ("hq_fraction", "hq"), ("hq_std", "hq_sample_std"),
                              ("mode_tv", "mode_tv"), ("data_tv", "data_tv")]:
                record[f"{name}_mean"], record[f"{name}_std"] = col(key)
            record.update(seconds=statistics.fmean(seconds[m]), per_seed=raw[m], options=options[m], **common)
        records.append(record)
    return records


def format_table(records):
    """Table 1 as text: recovered modes, % high quality, std of high-quality samples, total variation of the
    mode weights to p_t and to the data (mean ± std), seconds; then the reference's noise floor."""
    head = (f"{'':19s} {'# recovered modes':>18s} {'% high quality':>15s} {'std high quality':>17s} "
            f"{'TV to p_t':>14s} {'TV to data':>14s} {'s/seed':>7s}")
    lines = [head, "-" * len(head)]
    floors = []
    for r in records:
        tv = f"{r['mode_tv_mean']:7.3f} ± {r['mode_tv_std']:<4.3f}" if "mode_tv_mean" in r else f"{'':14s}"
        data_tv = f"{r['data_tv_mean']:7.3f} ± {r['data_tv_std']:<4.3f}" if "data_tv_mean" in r else f"{'':14s}"
        if "sampling_floor_mean" in r:
            lines.append(f"{r['name']:19s} {'':18s} {100 * r['hq_mean']:8.1f} ± {100 * r['hq_std']:<4.1f} "
                         f"{'':17s} {tv} {data_tv} {'':>7s}")
            floors.append(f"{r['name']}: two lattices differ by {r['mode_tv_mean']:.4f} (TV, mean over seeds); "
                          f"{r['n_samples']} exact draws from p_t differ from it by {r['sampling_floor_mean']:.3f} "
                          f"by chance; effective sample size {r['ess_mean']:.0f}")
            continue
        lines.append(f"{r['name']:19s} {r['modes_mean']:10.1f} ± {r['modes_std']:<5.1f} "
                     f"{100 * r['hq_mean']:8.1f} ± {100 * r['hq_std']:<4.1f} "
                     f"{r['hq_sample_std_mean']:9.3f} ± {r['hq_sample_std_std']:<5.3f} {tv} {data_tv} {r['seconds']:7.2f}")
    return "\n".join(lines + ["noise floor: " + f for f in floors])
