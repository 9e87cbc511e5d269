"""Bot API transport for python-telegram-bot, built on aiohttp.

Why this exists: PTB's default ``HTTPXRequest`` collapses under concurrent updates (about
300-450 updates/s for a bare echo bot against about 3,600 with aiohttp on the same machine; see
DESIGN.md), so safebot talks to the Bot API through one ``aiohttp.ClientSession`` per
``AiohttpRequest``.

Rules this module keeps:

1. **Same wire format as PTB's default.** Calls without files are sent as
   ``application/x-www-form-urlencoded`` built from ``RequestData.json_parameters``, calls with
   files as ``multipart/form-data``, exactly as ``HTTPXRequest`` does, so a Bot API server (or
   the local emulator) that accepts stock PTB accepts us too.
2. **Same error contract.** Timeouts raise ``telegram.error.TimedOut``, every other transport
   failure ``telegram.error.NetworkError``. HTTP error statuses are *returned*, not raised:
   ``BaseRequest`` turns 400/403/409/429 payloads into ``BadRequest``/``Forbidden``/
   ``Conflict``/``RetryAfter`` itself.
3. **No secrets in errors or logs.** The request URL carries the bot token in its path, and
   aiohttp puts the URL into some exception messages (``ConnectionTimeoutError`` does). Error
   texts are redacted and never chained to the aiohttp exception, because PTB logs exceptions
   with their causes. Response bodies are never logged (they can contain message text).

Timeouts follow ``BaseRequest``'s convention: an argument left at ``DEFAULT_NONE`` takes the
value given to the constructor, an explicit ``None`` means "no limit". aiohttp's knobs differ
from httpx's, so they are mapped as follows:

* ``connect_timeout`` -> ``sock_connect`` (establishing a new connection);
* ``pool_timeout + connect_timeout`` -> ``connect`` (aiohttp's ``connect`` also covers waiting
  for a free connection in the pool);
* ``read_timeout`` -> ``sock_read`` (the longest silence while waiting for the answer, which is
  what long polling needs: PTB passes ``read_timeout = default + getUpdates timeout``);
* ``write_timeout``: aiohttp has none, so for POST calls the whole call is bounded by the sum of
  the four budgets instead. A stalled upload therefore still ends, a little later than httpx
  would end it. GET (file downloads) gets no overall bound, as a large file may legitimately
  take longer than the sum.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import aiohttp
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

if TYPE_CHECKING:
    # PTB exposes the timeout argument type only from a private module; it is needed solely so
    # that the override keeps BaseRequest's signature.
    from telegram._utils.types import ODVInput

__all__ = ["AiohttpRequest"]

_LOGGER = logging.getLogger(__name__)

_REDACTED = "<bot-api-url>"


class AiohttpRequest(BaseRequest):
    """A ``telegram.request.BaseRequest`` that sends Bot API calls with aiohttp.

    Use one instance for ordinary calls and a second one for ``getUpdates``, as PTB does::

        Bot(token, request=AiohttpRequest(), get_updates_request=AiohttpRequest(1))

    The session is opened by :meth:`initialize` and closed by :meth:`shutdown` (PTB calls both
    from ``Bot.initialize``/``Bot.shutdown``); both are idempotent, so one instance may serve as
    both requests of a bot.

    Environment proxy variables are ignored (``trust_env=False``): a deployment that needs a
    proxy should say so explicitly rather than inherit one from the environment.

    Args:
        connection_pool_size: The most connections open to the Bot API at once. Calls beyond
            that wait up to ``pool_timeout`` for a free connection.
        read_timeout: Default seconds to wait for (each part of) an answer.
        write_timeout: Default seconds for sending a call without files.
        connect_timeout: Default seconds to establish a connection.
        pool_timeout: Default seconds to wait for a free connection.
        media_write_timeout: Default seconds for sending a call that uploads files (used instead
            of ``write_timeout``, as ``HTTPXRequest`` does).
    """

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The read timeout used when a call does not pass its own."""
        return self._read_timeout

    @property
    def connection_pool_size(self) -> int:
        """The most connections this transport opens at once."""
        return self._pool_size

    async def initialize(self) -> None:
        """Open the HTTP session (a no-op if it is already open)."""
        if self._session is not None and not self._session.closed:
            return
        connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.USER_AGENT},
            # Timeouts are set per call; a session-wide default would silently cap long polls.
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
            raise_for_status=False,
        )

    async def shutdown(self) -> None:
        """Close the HTTP session (a no-op if it is not open)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one call and return ``(HTTP status, body)``; see ``BaseRequest.do_request``."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("AiohttpRequest is not initialized; call initialize() first")

        has_files = request_data is not None and request_data.contains_files
        default_write = self._media_write_timeout if has_files else self._write_timeout
        timeout = _client_timeout(
            read=_resolve(read_timeout, self._read_timeout),
            write=_resolve(write_timeout, default_write),
            connect=_resolve(connect_timeout, self._connect_timeout),
            pool=_resolve(pool_timeout, self._pool_timeout),
            bounded=method.upper() != "GET",
        )

        try:
            async with session.request(
                method, url, data=_body(request_data), timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            # Checked before ClientError: aiohttp's timeout errors derive from both.
            raise TimedOut(_describe(exc, url)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(_describe(exc, url)) from None

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        """Parse a Bot API answer; unlike PTB's version, never log the body (it may hold text)."""
        try:
            parsed: dict[str, Any] = json.loads(payload.decode("utf-8", "replace"))
        except ValueError:
            _LOGGER.warning("Bot API answer is not JSON (%d bytes)", len(payload))
            raise TelegramError("Invalid server response") from None
        return parsed


def _resolve(value: object, default: float | None) -> float | None:
    """Apply BaseRequest's convention: DEFAULT_NONE means the default, None means no limit."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    # Anything else is PTB's DefaultValue sentinel.
    return default


def _client_timeout(
    *,
    read: float | None,
    write: float | None,
    connect: float | None,
    pool: float | None,
    bounded: bool,
) -> aiohttp.ClientTimeout:
    phases = (read, write, connect, pool)
    total = sum(p for p in phases if p is not None) if bounded and None not in phases else None
    return aiohttp.ClientTimeout(
        total=total,
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    if request_data is None:
        return None
    fields = request_data.json_parameters
    if not request_data.contains_files:
        # aiohttp encodes a plain dict as application/x-www-form-urlencoded, like httpx does.
        return fields
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    # A file handle (only with InputFile(read_file_handle=False)) is read and then closed by
    # aiohttp after sending, so such an upload cannot be retried; PTB's default reads files into
    # bytes up front, which retries fine.
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form


def _describe(exc: BaseException, url: str) -> str:
    """Name the failure without the URL: its path holds the bot token."""
    text = str(exc)
    path = urlsplit(url).path
    for secret in (url, path, quote(path)):
        if secret and secret != "/":
            text = text.replace(secret, _REDACTED)
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientError):
        name = f"aiohttp.{name}"
    return f"{name}: {text}" if text else name
