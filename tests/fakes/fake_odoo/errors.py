"""Odoo's exception types and how each transport serialises them.

The classes carry Odoo's module paths (``odoo.exceptions.UserError``, ``werkzeug.exceptions.NotFound``,
``odoo.http.SessionExpiredException``) so ``serialize_exception`` below, a copy of odoo/http.py's, yields the
same ``name`` Odoo puts on the wire. Python's own errors (ValueError, TypeError, AttributeError...) are raised as
themselves, which is what Odoo does: they serialise as ``builtins.ValueError`` and so on.

Sources: odoo/exceptions.py (http_status per class, 19.0), odoo/http.py ``serialize_exception`` and
``JsonRPCDispatcher.handle_error`` (code 200 in 17/18, 0 in 19), odoo/addons/base/controllers/rpc.py
(XML-RPC fault codes), odoo/addons/rpc/controllers/json2.py ``Json2RpcDispatcher.handle_error`` (19).
"""
from __future__ import annotations

import sys
import traceback
import xmlrpc.client
from typing import Any


class UserError(Exception):
    http_status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RedirectWarning(Exception):
    pass


class AccessDenied(UserError):
    http_status = 403

    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__(message)
        self.suppress_traceback()

    def suppress_traceback(self) -> None:
        self.with_traceback(None)
        self.traceback = ("", "", "")
        self.__context__ = None
        self.__cause__ = None


class AccessError(UserError):
    http_status = 403


class MissingError(UserError):
    http_status = 404


class ValidationError(UserError):
    pass


for _cls in (UserError, RedirectWarning, AccessDenied, AccessError, MissingError, ValidationError):
    _cls.__module__ = "odoo.exceptions"


class SessionExpiredException(Exception):
    http_status = 403


SessionExpiredException.__module__ = "odoo.http"


class OperationalError(Exception):
    """What psycopg2 raises when the database named in the call does not exist."""


OperationalError.__module__ = "psycopg2"


class HTTPException(Exception):
    """The werkzeug exceptions the JSON-2 endpoint answers with (code and description as werkzeug has them)."""

    code = 500
    name = "Internal Server Error"
    description = "The server encountered an internal error and was unable to complete your request."

    def __init__(self, description: str | None = None, headers: dict[str, str] | None = None) -> None:
        if description is not None:
            self.description = description
        self.headers = dict(headers or {})
        super().__init__(f"{self.code} {self.name}: {self.description}")


class BadRequest(HTTPException):
    code, name = 400, "Bad Request"
    description = "The browser (or proxy) sent a request that this server could not understand."


class Unauthorized(HTTPException):
    code, name = 401, "Unauthorized"


class Forbidden(HTTPException):
    code, name = 403, "Forbidden"


class NotFound(HTTPException):
    code, name = 404, "Not Found"
    description = ("The requested URL was not found on the server. If you entered the URL manually please "
                   "check your spelling and try again.")


class MethodNotAllowed(HTTPException):
    code, name = 405, "Method Not Allowed"
    description = "The method is not allowed for the requested URL."


class UnsupportedMediaType(HTTPException):
    code, name = 415, "Unsupported Media Type"
    description = "The server does not support the media type transmitted in the request."


class UnprocessableEntity(HTTPException):
    code, name = 422, "Unprocessable Entity"


for _cls in (HTTPException, BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed,
             UnsupportedMediaType, UnprocessableEntity):
    _cls.__module__ = "werkzeug.exceptions"


def serialize_exception(exc: BaseException, *, message: str | None = None,
                        arguments: Any = None) -> dict[str, Any]:
    """odoo/http.py serialize_exception; call it inside the ``except`` block, as Odoo does."""
    name, module = type(exc).__name__, type(exc).__module__
    return {
        "name": f"{module}.{name}" if module else name,
        "debug": traceback.format_exc(),
        "message": str(exc) if message is None else message,
        "arguments": list(exc.args if arguments is None else arguments),
        "context": getattr(exc, "context", {}),
    }


def jsonrpc_error(exc: BaseException, major: int) -> dict[str, Any]:
    """The ``error`` member of a JSON-RPC answer (``JsonRPCDispatcher.handle_error``)."""
    if isinstance(exc, AccessDenied):
        exc.suppress_traceback()  # Request._transactioning does this before handle_error
    error = {
        # "this code is the JSON-RPC level code ... totally arbitrary" (17/18); "we don't care of this code" (19)
        "code": 0 if major >= 19 else 200,
        "message": "Odoo Server Error",
        "data": serialize_exception(exc),
    }
    if isinstance(exc, NotFound):
        error["code"], error["message"] = 404, "404: Not Found"
    elif isinstance(exc, SessionExpiredException):
        error["code"], error["message"] = 100, "Odoo Session Expired"
    return error


def json2_error(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, extra headers) as ``Json2RpcDispatcher.handle_error`` answers them."""
    if isinstance(exc, AccessDenied):
        exc.suppress_traceback()
    if isinstance(exc, (UserError, SessionExpiredException)):
        return exc.http_status, serialize_exception(exc), {}
    if isinstance(exc, HTTPException):
        body = serialize_exception(exc, message=exc.description, arguments=(exc.description, exc.code))
        return exc.code, body, exc.headers
    return 500, serialize_exception(exc), {}


# XML-RPC fault codes, from odoo/addons/base/controllers/rpc.py
RPC_FAULT_CODE_APPLICATION_ERROR = 1
RPC_FAULT_CODE_WARNING = 2
RPC_FAULT_CODE_ACCESS_DENIED = 3
RPC_FAULT_CODE_ACCESS_ERROR = 4


def xmlrpc_fault_int(exc: BaseException) -> xmlrpc.client.Fault:
    """``xmlrpc_handle_exception_int`` (/xmlrpc/2/...)."""
    if isinstance(exc, RedirectWarning):
        return xmlrpc.client.Fault(RPC_FAULT_CODE_WARNING, str(exc))
    if isinstance(exc, AccessError):
        return xmlrpc.client.Fault(RPC_FAULT_CODE_ACCESS_ERROR, str(exc))
    if isinstance(exc, AccessDenied):
        return xmlrpc.client.Fault(RPC_FAULT_CODE_ACCESS_DENIED, str(exc))
    if isinstance(exc, UserError):
        return xmlrpc.client.Fault(RPC_FAULT_CODE_WARNING, str(exc))
    return xmlrpc.client.Fault(RPC_FAULT_CODE_APPLICATION_ERROR, "".join(traceback.format_exception(*sys.exc_info())))


def xmlrpc_fault_string(exc: BaseException) -> xmlrpc.client.Fault:
    """``xmlrpc_handle_exception_string`` (legacy /xmlrpc/...)."""
    if isinstance(exc, RedirectWarning):
        return xmlrpc.client.Fault("warning -- Warning\n\n" + str(exc), "")
    if isinstance(exc, MissingError):
        return xmlrpc.client.Fault("warning -- MissingError\n\n" + str(exc), "")
    if isinstance(exc, AccessError):
        return xmlrpc.client.Fault("warning -- AccessError\n\n" + str(exc), "")
    if isinstance(exc, AccessDenied):
        return xmlrpc.client.Fault("AccessDenied", str(exc))
    if isinstance(exc, UserError):
        return xmlrpc.client.Fault("warning -- UserError\n\n" + str(exc), "")
    return xmlrpc.client.Fault(str(exc), "".join(traceback.format_exception(*sys.exc_info())))
