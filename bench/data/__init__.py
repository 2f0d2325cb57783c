"""Step 1 of the data flow: recipe -> dataset.

``recipes`` (generated presets with their knobs), ``datagen/`` (the synthetic world),
``sources/`` (your own labelled files and the FEBRL sets), ``dataset`` (the on-disk
layout, manifests and fingerprints) and ``labels`` (the seeded training sample of
persons a supervised matcher may see, which the evaluation leaves out).
"""
