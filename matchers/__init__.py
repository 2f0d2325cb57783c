"""Built-in matchers, registered through the ``idbench.matchers`` entry points."""
