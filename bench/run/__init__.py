"""Step 2 of the data flow: suite -> runs -> stored records.

``suite`` reads a suite file; ``registry`` finds matchers by entry point; ``runner``
plans runs with deterministic keys and has ``supervisor`` start and watch one ``worker``
process per run, which uses ``execution`` to load, fit, match and validate; ``results``
stores each run record and its raw outputs atomically; ``environment`` records versions
and commit; ``scale`` builds scaling sweeps in code.
"""
