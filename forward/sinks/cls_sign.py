"""The HMAC-SHA1 "q-sign" request signature of CLS `/structuredlog` (shared/CLS.md §2).

Not TC3-HMAC-SHA256: that one belongs to the API 3.0 gateway, which Tencent itself advises
against for uploads. The same functions are used by the client to sign and by the test stand-in
to verify, and both are checked against every test vector Tencent documents.
"""

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote_plus

ALGORITHM = "sha1"


def formatted_pairs(pairs: Mapping[str, str]) -> str:
    """`name=value&…` with lower-case names in sorted order and values form-encoded.

    quote_plus matches Go's url.QueryEscape byte for byte (space → '+', '/' → '%2F'), which is
    what the real service expects (`application/x-protobuf` is signed as `application%2Fx-protobuf`).
    """
    lowered = {name.lower(): value for name, value in pairs.items()}
    return "&".join(f"{name}={quote_plus(lowered[name])}" for name in sorted(lowered))


def http_request_info(method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> str:
    return f"{method.lower()}\n{path}\n{formatted_pairs(params)}\n{formatted_pairs(headers)}\n"


def sign_key(secret_key: str, key_time: str) -> str:
    return hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()


def string_to_sign(sign_time: str, request_info: str) -> str:
    digest = hashlib.sha1(request_info.encode()).hexdigest()  # noqa: S324 - the protocol's own hash
    return f"{ALGORITHM}\n{sign_time}\n{digest}\n"


def signature(
    secret_key: str,
    sign_time: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
) -> str:
    # The service requires q-key-time == q-sign-time, so one value serves both roles.
    key = sign_key(secret_key, sign_time)
    to_sign = string_to_sign(sign_time, http_request_info(method, path, params, headers))
    # The key is the SignKey's *hex text*, not its raw bytes: that is how the scheme is defined.
    return hmac.new(key.encode(), to_sign.encode(), hashlib.sha1).hexdigest()


def authorization(
    secret_id: str,
    secret_key: str,
    start: int,
    end: int,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
) -> str:
    """The whole `Authorization` header value; signs exactly the params and headers given."""
    sign_time = f"{start};{end}"
    sig = signature(secret_key, sign_time, method, path, params, headers)
    return "&".join(
        [
            f"q-sign-algorithm={ALGORITHM}",
            f"q-ak={secret_id}",
            f"q-sign-time={sign_time}",
            f"q-key-time={sign_time}",
            "q-header-list=" + ";".join(sorted(h.lower() for h in headers)),
            "q-url-param-list=" + ";".join(sorted(p.lower() for p in params)),
            f"q-signature={sig}",
        ]
    )
