"""The embedded Binance venue's REST router: the depth snapshot endpoint on the websocket port,
its request-weight budget per clock minute and forced 429/418 rejections with ``Retry-After``."""

from __future__ import annotations

import email.utils
import http
import math
import urllib.parse
from collections import deque
from collections.abc import Iterable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .binance_ws import Clock, _dumps, _WebsocketProtocol
from .plan import ReplayPlan
from .truth import TruthBook

_SPOT_DEPTH_LIMIT_MAX = 5000
_USDM_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_MINUTE_NS = 60_000_000_000


class _RestRouter(_WebsocketProtocol):
    """The HTTP side of :class:`~mmradar.embedded.binance.EmbeddedBinance`."""

    _clock: Clock
    _plan: ReplayPlan | None
    _truth: TruthBook | None
    _truth_E: int | None
    _truth_T: int | None
    _weight_budget: int
    _weight_minute: int
    _weight_used: int
    _forced: deque[tuple[int, int]]
    _n_rest: int
    _n_rest_rejected: int

    def _require_plan(self) -> ReplayPlan:
        if self._plan is None:
            raise RuntimeError("venue not started")
        return self._plan

    # -- HTTP: REST on the same port ---------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if self._ws_route(path, query) is None:
                return self._json(404, {"code": -1, "msg": f"Not found: {path}"})
            return None
        return self._rest(path, query)

    def _json(self, status: int, body: Any, extra: Iterable[tuple[str, str]] = ()) -> Response:
        content = _dumps(body)
        headers = Headers(
            [
                ("Date", email.utils.formatdate(usegmt=True)),
                ("Connection", "close"),
                ("Content-Type", "application/json;charset=UTF-8"),
                ("Content-Length", str(len(content))),
                ("X-MBX-USED-WEIGHT-1M", str(self._weight_used)),
                *extra,
            ]
        )
        return Response(status, http.HTTPStatus(status).phrase, headers, content)

    def _rest(self, path: str, query: str) -> Response:
        self._n_rest += 1
        prefix = "/api/v3" if self._market == "spot" else "/fapi/v1"
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        now_ns = self._clock()
        minute = now_ns // _MINUTE_NS
        if minute != self._weight_minute:
            self._weight_minute, self._weight_used = minute, 0

        if path == f"{prefix}/depth":
            checked = self._depth_request(params)
            if isinstance(checked, Response):
                return checked
            limit, weight = checked
        elif path in (f"{prefix}/ping", f"{prefix}/time"):
            limit, weight = 0, 1
        else:
            return self._json(404, {"code": -1, "msg": f"Not found: {path}"})

        if self._forced:
            status, retry_after = self._forced.popleft()
            return self._reject(status, retry_after, now_ns)
        if self._weight_used + weight > self._weight_budget:
            retry_after = max(1, math.ceil(((minute + 1) * _MINUTE_NS - now_ns) / 1e9))
            return self._reject(429, retry_after, now_ns)
        self._weight_used += weight

        if path.endswith("/ping"):
            return self._json(200, {})
        if path.endswith("/time"):
            return self._json(200, {"serverTime": now_ns // 1_000_000})
        return self._json(200, self._snapshot_body(limit))

    def _reject(self, status: int, retry_after_s: int, now_ns: int) -> Response:
        self._n_rest_rejected += 1
        if status == 418:
            until = now_ns // 1_000_000 + retry_after_s * 1000
            msg = (
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            )
        else:
            msg = (
                f"Too much request weight used; current limit is {self._weight_budget} "
                "request weight per 1 MINUTE. Please use WebSocket Streams for live "
                "updates to avoid polling the API."
            )
        return self._json(
            status, {"code": -1003, "msg": msg}, [("Retry-After", str(retry_after_s))]
        )

    def _depth_request(self, params: dict[str, str]) -> tuple[int, int] | Response:
        symbol = params.get("symbol", "")
        if not symbol:
            msg = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            return self._json(400, {"code": -1102, "msg": msg})
        if symbol != self._require_plan().symbol:
            return self._json(400, {"code": -1121, "msg": "Invalid symbol."})
        raw = params.get("limit")
        if self._market == "spot":
            if raw is None:
                limit = 100
            elif not raw.isdigit() or len(raw) > 20:
                msg = (
                    "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."
                )
                return self._json(400, {"code": -1100, "msg": msg})
            else:
                limit = min(max(int(raw), 1), _SPOT_DEPTH_LIMIT_MAX)
            weight = 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
            return limit, weight
        if raw is None:
            limit = 500
        elif raw.isdigit() and int(raw) in _USDM_DEPTH_LIMITS:
            limit = int(raw)
        else:
            legal = ", ".join(str(n) for n in _USDM_DEPTH_LIMITS)
            msg = f"Illegal characters found in parameter 'limit'; legal range is '{legal}'."
            return self._json(400, {"code": -1100, "msg": msg})
        weight = 2 if limit <= 50 else 5 if limit == 100 else 10 if limit == 500 else 20
        return limit, weight

    def _snapshot_body(self, limit: int) -> dict[str, Any]:
        truth = self._truth
        assert truth is not None
        bids, asks = truth.top(limit)
        body: dict[str, Any] = {"lastUpdateId": truth.last_update_id}
        if self._market == "usdm":
            body["E"] = self._truth_E
            body["T"] = self._truth_T
        body["bids"] = [list(level) for level in bids]
        body["asks"] = [list(level) for level in asks]
        return body
