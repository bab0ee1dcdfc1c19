"""Table 1 of the DDLS paper on the 25-Gaussian grid: generator alone, DRS, MH-GAN and DDLS on the
same trained pairs, mean ± std over seeds."""
import statistics

import torch

from . import toy
from .energy import calibrate
from .nets import MLPDiscriminator, MLPGenerator
from .samplers import sample
from .train import train_gan

# A budget at which the generator alone is clearly imperfect (bridges between modes), as in the paper.
TRAIN = dict(steps=3000, batch_size=256, loss="ns", lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.9))
# The GAN's own D lags its G; fine-tuning a copy against the frozen G brings d close to log p_data/p_g.
CALIBRATION = dict(method="finetune", steps=2000, lr=1e-3, batch_size=1024)
# The discriminator is wider than the generator: the corrected distribution p_g e^d / Z0 is only as good
# as d, and d must carve a steep bowl around each of the 25 narrow modes (std 0.05). At width 128 the
# exact p_t keeps about 96% of its mass within 4 std of a mode; at 256, about 98%.
NETS = dict(latent_dim=2, hidden=128, depth=3, d_hidden=256)
# DDLS with the Metropolis correction (MALA). With a 2-D latent, a mode the generator rarely makes has a
# thin latent preimage, a narrow steep well of E(z); unadjusted Langevin steps overshoot such wells and
# its chains drift out of them, so ULA loses the rare modes that p_t keeps. MALA rejects those moves.
SAMPLER_OPTIONS = {
    "generator": {},
    "drs": {"m_quantile": 0.99},
    "mh": {"steps": 100},
    "ddls": {"steps": 300, "step_size": 1e-3, "mala": True},
}
METHOD_NAMES = {"generator": "Generator only", "drs": "DRS", "mh": "MH-GAN", "ddls": "GAN w. DDLS"}


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


def table1(seeds=5, n_samples=10_000, methods=("generator", "drs", "mh", "ddls"), train=None,
           sampler_options=None, calibration=None, progress=None):
    """Run every method on the same trained pair for each seed; returns a list of records.

    Each record: ``method``, ``modes_mean``/``modes_std``, ``hq_mean``/``hq_std`` (fraction of
    high-quality samples), ``hq_sample_std_mean``/``hq_sample_std_std`` (std of the high-quality
    samples), ``seconds`` (sampling time per seed, mean), ``per_seed`` (raw mode_stats), and
    ``n_samples``, ``seeds``.
    """
    options = {m: {**SAMPLER_OPTIONS.get(m, {}), **((sampler_options or {}).get(m, {}))} for m in methods}
    raw = {m: [] for m in methods}
    seconds = {m: [] for m in methods}
    for seed in range(seeds):
        G, D, _ = train_pair(seed, train=train, progress=progress)
        d = calibrate(D, G, toy.sample_grid25, seed=seed, progress=progress, **{**CALIBRATION, **(calibration or {})})
        for m in methods:
            out = sample(m, G, d, n_samples, seed=1000 + seed, **options[m])
            stats = toy.mode_stats(out.x)
            stats.pop("counts")
            raw[m].append(stats)
            seconds[m].append(out.seconds)
    records = []
    for m in methods:
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
