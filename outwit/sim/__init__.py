"""People and Spaces without people: the DADC simulation and its shifted pool, hand-style drawings, a visitor in
Chromium, and the app as its own process. What the benchmarks and tests share."""
