"""Pure, event-time measures and detectors computed from books and trades.

Nothing here reads a clock, does I/O or imports ``prometheus_client``:

* :mod:`.params` — :class:`~.params.SignalSettings`, every ``[signals]`` parameter and default;
* :mod:`.baselines` — time-decayed EWMA, bucketed median/MAD, robust z, rolling windows;
* :mod:`.alerts` — the IDLE → PENDING → FIRING → COOLDOWN alert state machine;
* :mod:`.flow` — order-flow imbalance (CKS), trade-flow imbalance, the dealer-inventory proxy;
* :mod:`.detectors` — one class per symptom (definitions and defaults in its docstring);
* :mod:`.engine` — :class:`~.engine.SignalEngine`, one per instrument: drives all of the above
  on a 1-s stat clock, emits :class:`~.episodes.EpisodeEvent` s, forms ``dealer_pressure``;
* :mod:`.episodes` — the episode event contract; :mod:`.market` — taker volume, realized
  volatility.
"""
