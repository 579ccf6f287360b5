"""``kit bench``: any ASGI app on real servers under wrk, measured per request (requests/s,
latency, server CPU, memory), written as a JSON results file and a Markdown report."""
