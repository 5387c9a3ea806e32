"""Request bodies -> token ids (synpref.serving.inputs) and vLLM's request rules (synpref.serving.api_vllm),
without a server."""

import base64
import struct

import pytest

from synpref.serving import api_vllm
from synpref.serving.errors import ApiError
from synpref.serving.inputs import check_ids, check_strings, fit, parse_json


def status(call) -> tuple[int, str]:
    with pytest.raises(ApiError) as error:
        call()
    return error.value.status, error.value.message


def test_the_body_is_checked_before_anything_is_parsed():
    assert status(lambda: parse_json(b"x" * 2000, 1024))[0] == 413
    assert status(lambda: parse_json(b"", 1024)) == (400, "empty request body: send a JSON object")
    assert "not UTF-8" in status(lambda: parse_json(b'{"a": "\xff"}', 1024))[1]
    assert "malformed JSON" in status(lambda: parse_json(b'{"a": ', 1024))[1]
    assert "JSON object" in status(lambda: parse_json(b"[1]", 1024))[1]
    assert "lone surrogate" in status(lambda: parse_json(b'{"input": ["ok", "\\ud800"]}', 1024))[1]
    assert parse_json('{"input": "caf\\u00e9 \\ud83d\\ude00"}'.encode(), 1024) == {"input": "café 😀"}


def test_a_lone_surrogate_is_named_where_it_is():
    with pytest.raises(ApiError) as error:
        check_strings({"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": "\udc00"}]})
    assert error.value.param == "messages[1].content"


def test_fit_refuses_or_cuts_on_the_asked_side():
    ids = [[1, 2, 3, 4, 5], [1, 2]]
    assert "maximum context length is 4" in status(lambda: fit(ids, max_length=4, what="input"))[1]
    assert fit(ids, max_length=4, what="input", truncate_prompt_tokens=-1) == ([[1, 2, 3, 4], [1, 2]], [True, False])
    assert fit(ids, max_length=4, what="input", truncate_prompt_tokens=3, side="left")[0] == [[3, 4, 5], [1, 2]]
    assert status(lambda: fit(ids, max_length=4, what="input", truncate_prompt_tokens=9))[0] == 400
    assert status(lambda: check_ids([[1, 99]], 50, "input"))[1].startswith("input[0] holds token id 99")
    assert "empty" in status(lambda: check_ids([[]], 50, "input"))[1]


def test_pooling_requests_are_refused_where_vllm_refuses_them():
    def checked(route, **raw):
        return lambda: api_vllm.PoolingRequest.model_validate(raw).check(route, raw)

    assert "removed" in status(checked("classify", input="x", normalize=True))[1]
    assert status(checked("pooling", input="x", dimensions=8))[0] == 400
    checked("classify", input="x", dimensions=8)()  # vLLM ignores it on /classify
    assert "exactly one" in status(checked("classify", input="x", messages=[{"role": "user", "content": "y"}]))[1]
    assert status(checked("classify", input="x", add_generation_prompt=True, continue_final_message=True))[0] == 400
    assert status(checked("classify", input="x", chat_template="{{ x }}"))[0] == 400
    checked("classify", input=[1, 2, 3], unknown_field=1)()  # unknown fields are ignored, as vLLM does
    request = api_vllm.PoolingRequest.model_validate({"input": [[1, 2], [3]], "activation": False})
    assert request.input == [[1, 2], [3]] and request.activation_on() is False


def test_chat_messages_take_text_parts_any_role_and_a_name():
    message = api_vllm.ChatMessage.model_validate(
        {"role": "tool", "name": "calc", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
    assert message.for_template(0) == {"role": "tool", "content": "a\nb", "name": "calc"}
    image = api_vllm.ChatMessage.model_validate({"role": "user", "content": [{"type": "image_url", "image_url": {}}]})
    assert status(lambda: image.for_template(2))[0] == 400


def test_score_pairs_and_the_responses():
    assert api_vllm.score_pairs("q", ["a", "b"]) == [("q", "a"), ("q", "b")]
    assert api_vllm.score_pairs(["q1", "q2"], ["a", "b"]) == [("q1", "a"), ("q2", "b")]
    assert "1:1, 1:N or N:N" in status(lambda: api_vllm.score_pairs(["q1", "q2"], ["a"]))[1]
    pooled = api_vllm.pooling_response("rm", [0.5], [3], activation=False, encoding_format="base64", request_id="r")
    assert struct.unpack("<f", base64.b64decode(pooled["data"][0]["data"])) == (0.5,) and pooled["id"] == "pool-r"
    ranked = api_vllm.rerank_response("rm", ["x", "y", "z"], [0.1, 2.0, -1.0], [1, 1, 1], activation=False, top_n=2,
                                      request_id=None)
    assert [r["index"] for r in ranked["results"]] == [1, 0]
