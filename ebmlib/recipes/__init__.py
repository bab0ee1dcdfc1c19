"""The papers' experiments, built from the library's modules.

- ``table1``: Table 1 of the DDLS paper on the 25-Gaussian grid (generator, DRS, MH-GAN, DDLS; WGAN rows).
- ``image_table``: Table 1 on stacked digits (modes of 1,000, KL, quality), with the sampler-free p_t reference.
- ``wgan``: a WGAN pair on toy data, for DDLS with its critic as the energy.
- ``pipeline``: the image pipeline train -> calibrate -> sample -> evaluate on a registered data set.
- ``ranks``: sampling and scoring shared among the ranks of ``torchrun``, with the results of one process.
- ``bench``: GPU throughput of image training and DDLS, eager fp32 against the optimized path.
"""
