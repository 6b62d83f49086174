"""The GPU proof: one command that measures on a GPU what the project claims (``benchmarks/gpu_proof.py`` runs
:func:`gpu_proof.cli.main`; its ``--help`` says what it measures).

Imports go one way only, so that each module can be read without the ones above it:
``cli`` -> ``phases`` -> ``record`` -> ``inputs``; ``phases`` -> ``video`` -> ``parts``; ``record`` -> ``parts``,
``report``. ``parts`` and ``report`` import nothing of the package.
"""
