"""Scoring the detectors against the simulator's ground truth (``mmradar score``).

* :mod:`.runner` — drive one simulated run through the production pipeline, in-process;
* :mod:`.matching` — one-to-one event matching of detected to truth episodes;
* :mod:`.scorecard` — precision/recall/latency/false-alert figures, proxy correlation, Markdown;
* :mod:`.stats` — the small statistics it needs (pure Python);
* :mod:`.plot` — the timeline PNG (matplotlib, imported on use);
* :mod:`.validation`, :mod:`.report` — CKS, Gould–Bonart and Avellaneda–Stoikov checks;
* :mod:`.command` — the ``mmradar score`` command.

The method is described in ``docs/scorecard.md``.
"""
