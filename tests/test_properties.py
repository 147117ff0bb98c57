"""Property-based: whatever a client sends to any route, the answer is 2xx/4xx with no traceback in the body.

Hypothesis draws query parameters (unicode digits such as '²' and '①', huge integers, floats, NUL bytes, path
tricks), JSON bodies (deeply nested lists, huge integers, float32 overflow, wrong shapes) and HTTP methods. The
number of examples is bounded so the suite stays fast.
"""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GET_ROUTES = ["runs", "projection", "landscape", "sample", "thumbnail", "metrics", "dynamics", "suspects", "cube",
              "stepstats", "alarms", "layers",
              "index.js", "nope.js"]
POST_ROUTES = ["predict", "project"]
PARAMS = ["run", "step", "size", "id", "format", "z", "tx", "ty", "k", "rows", "cols", "split", "start", "end",
          "base", "box", "width", "height", "warm", "cached"]
EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])

tricky_text = st.one_of(
    st.sampled_from(["²", "①", "٣", "0x10", "1e3", "-0", "+1", " 1", "1 ", "９", "1_000", "nan", "inf", "-1",
                     "..", "../noisy", "/etc", "noisy\x00", "noisy", "", "json", "binary", "csv", "train", "compact"]),
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=string.printable + "²①٣９é\u202e", max_size=30),
)
query = st.dictionaries(st.sampled_from(PARAMS), tricky_text, max_size=5)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


json_number = st.one_of(st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
                        st.floats(allow_nan=False, allow_infinity=False),
                        st.sampled_from([1e39, -1e39, 3.5e38, 1e308]))
points = st.lists(st.one_of(st.lists(json_number, min_size=0, max_size=3), json_number, st.text(max_size=3)),
                  max_size=6)
raw_body = st.one_of(
    points.map(json.dumps),
    st.sampled_from([nested(100_000), nested(2000), '{"run": ' + nested(5000) + "}", '{"run": "noisy", "steps": '
                     + nested(3000) + "}", "{", "", "null", '"x"', '{"points": [[1e39, 0]]}',
                     '{"run": "noisy", "steps": [99999999999999999999999999]}', '{"run": "noisy", "steps": [-1]}',
                     "\xff\xfe", '{"run": 1}']),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
)


@pytest.fixture(scope="module")
def app(projected_app):
    return projected_app


def _check(resp, what: str) -> None:
    body = resp.get_data()
    assert resp.status_code < 500, (what, resp.status_code, body[:300])
    assert b"Traceback" not in body and b'File "' not in body, (what, body[:300])
    if resp.mimetype == "application/json":
        json.loads(body)


@EXAMPLES
@given(route=st.sampled_from(GET_ROUTES), args=query)
def test_any_query_to_any_get_route(app, route, args):
    _check(app.client.get("/data/plugin/dvi/" + route, query_string=args), f"GET {route} {args!r}")


@EXAMPLES
@given(route=st.sampled_from(POST_ROUTES), args=query, body=raw_body, xsrf=st.booleans())
def test_any_body_to_any_post_route(app, route, args, body, xsrf):
    headers = {"X-XSRF-Protected": "1"} if xsrf else {}
    resp = app.client.post("/data/plugin/dvi/" + route, query_string={"run": "noisy", "step": "1", **args},
                           data=body.encode("utf-8", "surrogatepass"), headers=headers,
                           content_type="application/json")
    _check(resp, f"POST {route} {args!r} {body[:60]!r}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(GET_ROUTES + POST_ROUTES), method=st.sampled_from(["PUT", "DELETE", "PATCH", "POST",
                                                                               "GET", "OPTIONS"]))
def test_wrong_methods_answer_405(app, route, method):
    resp = app.client.open("/data/plugin/dvi/" + route, method=method, query_string={"run": "noisy", "step": "1"})
    _check(resp, f"{method} {route}")
    expected = "POST" if route in POST_ROUTES else "GET"
    if method not in (expected, "HEAD"):
        assert resp.status_code == 405, (method, route, resp.status_code)


box_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                       st.floats(min_value=-40, max_value=40).map(repr),
                       st.integers(min_value=-(10 ** 60), max_value=10 ** 60).map(str), tricky_text)
box_text = st.one_of(st.lists(box_number, min_size=0, max_size=6).map(",".join), tricky_text)
view_size = st.one_of(st.integers(min_value=-5, max_value=5000).map(str), tricky_text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(box=box_text, width=view_size, height=view_size, extra=st.dictionaries(st.sampled_from(["size", "z", "tx"]),
                                                                               tricky_text, max_size=1))
def test_any_viewport_box_is_a_png_or_a_named_400(app, box, width, height, extra):
    """The landscape's viewport form: hostile boxes and sizes answer a PNG or a 400 naming the parameter."""
    args = {"run": "noisy", "step": "1", "box": box, "width": width, "height": height, **extra}
    resp = app.client.get("/data/plugin/dvi/landscape", query_string=args)
    _check(resp, f"GET landscape {args!r}")
    assert resp.status_code in (200, 400), (args, resp.status_code, resp.get_data()[:200])
    if resp.status_code == 400:
        message = json.loads(resp.get_data())["error"]
        assert any(f"'{name}'" in message for name in ("box", "width", "height", "size", "z", "tx")), message
    else:
        assert resp.mimetype == "image/png"


@pytest.mark.parametrize("value", ["²", "①", "٣", "９", "1" * 400])
@pytest.mark.parametrize("name", ["step", "id", "size"])
def test_unicode_digits_and_huge_integers_name_the_parameter(app, name, value):
    resp = app.get("sample" if name == "id" else "landscape", query_string={"run": "noisy", "step": "1", name: value})
    assert resp.status_code == 400 and f"'{name}'" in json.loads(resp.get_data())["error"]


@pytest.mark.parametrize("body", [[[1e39, 0.0]], [[10 ** 400, 0]], [[0, -1e39]]])
def test_predict_refuses_coordinates_beyond_float32(app, body):
    resp = app.post("predict?run=noisy&step=1", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 400 and "finite" in json.loads(resp.get_data())["error"]


def test_deeply_nested_json_is_a_400(app):
    for route in ("predict?run=noisy&step=1", "project"):
        resp = app.post(route, data=nested(100_000), headers={"X-XSRF-Protected": "1"})
        assert resp.status_code == 400 and "nested" in json.loads(resp.get_data())["error"]


@pytest.mark.parametrize("stream", ["short", "reset"])
def test_client_that_closes_mid_body_gets_a_400(app, stream):
    from io import BytesIO

    from werkzeug.test import EnvironBuilder, run_wsgi_app

    class Reset(BytesIO):
        def read(self, *args):
            raise OSError("connection reset by peer")

        readinto = readline = read

    environ = EnvironBuilder(path="/data/plugin/dvi/predict", method="POST", query_string="run=noisy&step=1",
                             content_type="application/json").get_environ()
    environ["wsgi.input"] = BytesIO(b"[[0, 0]]") if stream == "short" else Reset(b"[[0, 0]]")
    environ["CONTENT_LENGTH"] = "1000"  # the client promised 1000 bytes, then went away
    body, status, _ = run_wsgi_app(app.client.application, environ)
    code = int(status.split()[0])
    assert code == 400, (code, b"".join(body)[:200])
