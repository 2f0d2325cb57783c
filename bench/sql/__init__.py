"""The SQL layer every other step stands on.

``engine`` is the one place the harness runs SQL (connections, quoting, literals,
temporary names, errors that carry the failing statement); ``graph`` holds the one
connected-components algorithm (pointer jumping in SQL) that matchers and the links-file
loader share. Plugins reach both through :mod:`bench.api`.
"""
