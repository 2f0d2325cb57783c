"""Step 4 of the data flow: stored run records -> report and figures.

A pure function of what :mod:`bench.run.results` stored; nothing here runs a matcher.
"""
