"""Step 4 of the data flow: stored run records -> report and figures.

A pure function of what :mod:`bench.run.results` stored; nothing here runs a matcher.
:mod:`.records` is the view of the stored runs every part reads (labels, colours and
lens from :mod:`.style`); :mod:`.build` writes the report from :mod:`.sections`,
:mod:`.results_section` and :mod:`.tables` through the document model of
:mod:`.document`; :mod:`.figures` draws one module per figure; numbers are formatted
by :mod:`.format` (the console uses it too).
"""
