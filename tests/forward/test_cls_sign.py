"""The q-sign SHA1 signature against every test vector Tencent documents (shared/CLS.md §2)."""

import hashlib

import pytest

from forward.sinks import cls_sign

# Tencent's documented examples (shared/CLS.md §2; request signature doc, all language versions).
DOC_SECRET_ID = "AKIDc9YlmrBcFk4C8sbmXQ8i65XXXXXXXXXX"
DOC_SECRET_KEY = "LUSE4nPK1d4tX5SHyXv6tZXXXXXXXXXX"
DOC_TIME = "1510109254;1510109314"
DOC_HOST = "ap-shanghai.cls.myqcloud.com"


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def test_it_derives_the_documented_sign_key():
    assert cls_sign.sign_key(DOC_SECRET_KEY, DOC_TIME) == "a4501294d3a835f8dab6caf5c19837dd19eef357"


@pytest.mark.parametrize(
    ("method", "path", "params", "headers", "info_sha1", "sig"),
    [
        (
            "GET",
            "/logset",
            {"logset_name": "testset"},
            {"host": DOC_HOST},
            "74713a7e01250b81424dac21dced038ee5b8054d",
            "42a7a1d1b44f14ae39a5e7fc3172feec6a08b197",
        ),
        (
            "GET",
            "/logset",
            {"logset_id": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"},
            {"host": DOC_HOST},
            "35601c3365a361b62b980fda754318c29862d39c",
            "2c53900d3fe8d2e875db8a6af5fe7303ee1567a8",
        ),
        (
            "PUT",
            "/logset",
            {},
            {
                "content-md5": "f9c7fc33c7eab68dfa8a52508d1f4659",
                "content-type": "application/json",
                "host": DOC_HOST,
            },
            "0ca0242c3d50441fda6aa234d31bea7a7a12a1ea",
            "85a55e61de42483ba03bffd07a6c01b8d651af51",
        ),
    ],
)
def test_it_matches_the_documented_signature_vectors(method, path, params, headers, info_sha1, sig):
    info = cls_sign.http_request_info(method, path, params, headers)
    assert _sha1(info) == info_sha1
    assert cls_sign.string_to_sign(DOC_TIME, info) == f"sha1\n{DOC_TIME}\n{info_sha1}\n"
    assert cls_sign.signature(DOC_SECRET_KEY, DOC_TIME, method, path, params, headers) == sig
    start, end = (int(x) for x in DOC_TIME.split(";"))
    auth = cls_sign.authorization(DOC_SECRET_ID, DOC_SECRET_KEY, start, end, method, path, params, headers)
    assert auth == (
        f"q-sign-algorithm=sha1&q-ak={DOC_SECRET_ID}&q-sign-time={DOC_TIME}&q-key-time={DOC_TIME}"
        f"&q-header-list={';'.join(headers)}&q-url-param-list={';'.join(params)}&q-signature={sig}"
    )


def test_it_matches_the_upload_vector_with_header_names_in_any_case():
    key_time = "1700000000;1700000360"
    params = {"topic_id": "0c5f8b2e-1111-2222-3333-444455556666"}
    headers = {"Host": "ap-guangzhou.cls.tencentcs.com", "Content-Type": "application/x-protobuf"}
    info = cls_sign.http_request_info("POST", "/structuredlog", params, headers)
    assert "content-type=application%2Fx-protobuf&host=ap-guangzhou.cls.tencentcs.com" in info
    assert cls_sign.sign_key(DOC_SECRET_KEY, key_time) == "f4b6173e052012833ca6d0cd2605c21f62326b11"
    assert _sha1(info) == "59436f59c802a0ff225319b2eb6a12ff3f93e460"
    sig = cls_sign.signature(DOC_SECRET_KEY, key_time, "POST", "/structuredlog", params, headers)
    assert sig == "3cb770fe8c2e38be1a02e53cc912f148c81191b0"
