"""Step 3 of the data flow: raw outputs + truth -> metrics.

``core`` holds the metric registry and the partition metrics from the contingency table;
``tables`` builds the shared evaluation tables; ``pairs``, ``anonymous``, ``business``,
``hazards`` and ``temporal`` each compute one family; ``evaluate`` runs them all for a
stored run; ``aggregate`` summarises repeats into means and intervals.
"""
