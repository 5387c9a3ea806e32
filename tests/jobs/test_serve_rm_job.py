"""jobs/serve_rm.py's application on a real local Ray: every route over real HTTP (httpx), scores
against plain transformers, 4xx for each kind of bad request, the bearer token, 503 on overload.

One app for the module (two tiny random reward models with different weights, so routing by
"model" is visible in the scores); Ray and Serve are shut down at the end. The backend=vllm test
starts and stops an app of its own first.
"""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from serve_helpers import PROMPTS, RESPONSES, ReferenceRM, serve_app
from synpref.demo.tiny_models import build_tiny_model

pytestmark = pytest.mark.e2e

TOKEN = "test-token-7d1f"
TOKEN_ENV = "SYNPREF_TEST_SERVE_TOKEN"
MAX_ITEMS = 64
SHORT_MAX_LENGTH = 96  # rm-b's limit (the test prompts take 25-77 tokens), to provoke over-length errors cheaply
# The server pads sequences into batches, the reference runs each alone: the same math in another
# summation order, so equal to float32 rounding (observed ~1e-7), far below any real difference.
TOL = 1e-5


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("rms")
    return {"rm-a": build_tiny_model(root / "rm-a", kind="seq_cls", seed=0),
            "rm-b": build_tiny_model(root / "rm-b", kind="seq_cls", seed=1)}


@pytest.fixture(scope="module")
def reference(models):
    return {name: ReferenceRM(path) for name, path in models.items()}


@pytest.fixture(scope="module")
def url(models):
    args = {
        "models": [{"name": "rm-a", "path": models["rm-a"]},
                   {"name": "rm-b", "path": models["rm-b"], "max_length": SHORT_MAX_LENGTH}],
        "max_length": 512,
        "max_items_per_request": MAX_ITEMS,
        "torch_threads": 1,
        "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.005, "max_tokens_per_forward": 4096},
        "replica": {"num_cpus": 1},
        # Small on purpose: two requests in the ingress and two waiting at the proxy; the overload
        # test needs the fifth concurrent request to be refused. The other tests send one at a time.
        "ingress": {"max_ongoing_requests": 2, "max_queued_requests": 2, "num_cpus": 0.5},
    }
    with serve_app(args, token_env=TOKEN_ENV, token=TOKEN) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as c:
        yield c


def items(conversations=PROMPTS, responses=RESPONSES) -> list[dict]:
    return [{"conversation": c, "response": r} for c, r in zip(conversations, responses)]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# --- backend=vllm ----------------------------------------------------------------------------

# vLLM's kernels and transformers' sum in different orders: equal to float32 rounding, far below any real
# difference (the transformers backend is held to TOL above)
VLLM_REL = 1e-3


def test_vllm_backend_scores_like_transformers(models, reference, tmp_path_factory):
    """The same app with backend=vllm: a vLLM async engine (pooling runner, eager, fp32) in the replica.

    Its own Ray and Serve, started and stopped inside the test, so it runs before the module's app
    (the `url` fixture) starts: keep it above every test that uses `url`."""
    args = {"model": models["rm-a"], "model_name": "rm-a", "max_length": 512, "backend": "vllm",
            "vllm": {"cache_dir": str(tmp_path_factory.mktemp("vllm-cache"))},
            "replica": {"num_cpus": 1}, "ingress": {"num_cpus": 0.5}}
    ref = reference["rm-a"]
    texts = [ref.text(c, r) for c, r in zip(PROMPTS, RESPONSES)]
    raw = [ref.reward(t) for t in texts]
    with serve_app(args) as base, httpx.Client(base_url=base, timeout=300) as c:
        many = c.post("/classify", json={"model": "rm-a", "input": texts, "use_activation": False})
        assert many.status_code == 200, many.text
        body = many.json()
        assert [d["index"] for d in body["data"]] == [0, 1, 2]
        assert [d["probs"][0] for d in body["data"]] == pytest.approx(raw, rel=VLLM_REL)
        assert body["usage"]["prompt_tokens"] == sum(len(ref.ids(t)) for t in texts)
        one = c.post("/classify", json={"model": "rm-a", "input": texts[0]}).json()  # vLLM's default: a sigmoid
        assert one["data"][0]["probs"] == pytest.approx([sigmoid(raw[0])], rel=VLLM_REL)

        reward = c.post("/get_reward", json={"query": texts})
        assert reward.status_code == 200, reward.text
        assert reward.json()["rewards"] == pytest.approx(raw, rel=VLLM_REL)

        # many concurrent requests (continuous batching inside the engine), each answered with its own reward
        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=300) as ac:
                return await asyncio.gather(*(ac.post("/get_reward", json={"query": [texts[i % 3]]})
                                              for i in range(24)))

        answers = asyncio.run(burst())
        assert all(a.status_code == 200 for a in answers)
        got = [a.json()["rewards"][0] for a in answers]
        assert got == pytest.approx([raw[i % 3] for i in range(24)], rel=VLLM_REL)


# --- routes ----------------------------------------------------------------------------------


def test_health_and_models(client):
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "models": ["rm-a", "rm-b"]}
    listing = client.get("/v1/models").json()
    assert listing["object"] == "list"
    assert [(m["id"], m["object"], m["max_model_len"]) for m in listing["data"]] == [
        ("rm-a", "model", 512), ("rm-b", "model", SHORT_MAX_LENGTH)]


def test_native_score_equals_in_process_scoring(client, reference):
    for name in ("rm-a", "rm-b"):
        answer = client.post("/v1/reward", json={"model": name, "items": items()})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        ref = reference[name]
        texts = [ref.text(c, r) for c, r in zip(PROMPTS, RESPONSES)]
        assert body["model"] == name
        assert body["num_tokens"] == [len(ref.ids(t)) for t in texts]
        assert body["truncated"] == [False] * 3
        assert body["scores"] == pytest.approx([ref.reward(t) for t in texts], abs=TOL)
    # the two models have different weights: a request routed to the wrong one would show it
    a = client.post("/v1/reward", json={"model": "rm-a", "items": items()}).json()["scores"]
    b = client.post("/v1/reward", json={"model": "rm-b", "items": items()}).json()["scores"]
    assert max(abs(x - y) for x, y in zip(a, b)) > 1e-3


def test_score_truncate_keeps_the_end_and_says_so(client, reference):
    long_response = "owls " * 100  # 141 tokens with the prompt, over rm-b's 96
    refused = client.post("/v1/reward", json={"model": "rm-b", "items": items(PROMPTS[:1], [long_response])})
    assert refused.status_code == 400 and "max_length=96" in refused.json()["error"]["message"]
    answer = client.post("/v1/reward", json={"model": "rm-b", "truncate": True,
                                             "items": items(PROMPTS[:2], [long_response, "Red."])})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    ref = reference["rm-b"]
    kept = ref.ids(ref.text(PROMPTS[0], long_response))[-SHORT_MAX_LENGTH:]  # left-truncated: the end stays
    assert body["truncated"] == [True, False]
    assert body["num_tokens"][0] == SHORT_MAX_LENGTH
    assert body["scores"][0] == pytest.approx(ref.reward_ids(kept), abs=TOL)


def test_compare_pairs(client, reference):
    pairs = [{"conversation": PROMPTS[0], "chosen": "4.", "rejected": "5."},
             {"conversation": PROMPTS[1], "chosen": "Red.", "rejected": "Green, obviously."}]
    answer = client.post("/v1/compare", json={"model": "rm-a", "pairs": pairs})
    assert answer.status_code == 200, answer.text
    ref = reference["rm-a"]
    for row, pair in zip(answer.json()["data"], pairs):
        chosen = ref.reward(ref.text(pair["conversation"], pair["chosen"]))
        rejected = ref.reward(ref.text(pair["conversation"], pair["rejected"]))
        assert row["score_chosen"] == pytest.approx(chosen, abs=TOL)
        assert row["score_rejected"] == pytest.approx(rejected, abs=TOL)
        assert row["margin"] == pytest.approx(chosen - rejected, abs=2 * TOL)
        # the Bradley-Terry probability p = sigmoid(r_w - r_l)
        assert row["p_chosen"] == pytest.approx(sigmoid(chosen - rejected), abs=TOL)
        assert row["preferred"] == ("chosen" if row["margin"] > 0 else "rejected")
    assert [row["index"] for row in answer.json()["data"]] == [0, 1]


def test_classify_like_vllm(client, reference):
    ref = reference["rm-a"]
    texts = [ref.text(c, r) for c, r in zip(PROMPTS, RESPONSES)]
    raw = [ref.reward(t) for t in texts]

    one = client.post("/classify", json={"model": "rm-a", "input": texts[0]}).json()
    assert set(one) >= {"id", "object", "created", "model", "data", "usage"}
    assert one["id"].startswith("classify-") and one["model"] == "rm-a"
    (row,) = one["data"]
    assert (row["index"], row["label"], row["num_classes"]) == (0, "LABEL_0", 1)
    assert row["probs"] == pytest.approx([sigmoid(raw[0])], abs=TOL)  # vLLM's default activation
    assert one["usage"]["prompt_tokens"] == len(ref.ids(texts[0]))

    # verl posts "activation": false and reads data[-1].probs[-1]; vLLM 0.32 spells it use_activation
    for flag in ("activation", "use_activation"):
        many = client.post("/classify", json={"model": "rm-a", "input": texts, flag: False}).json()
        assert [d["index"] for d in many["data"]] == [0, 1, 2]
        assert [d["probs"][-1] for d in many["data"]] == pytest.approx(raw, abs=TOL)

    # the chat form: the server applies the chat template to messages ending in the response
    chat = client.post("/classify", json={"model": "rm-a", "use_activation": False,
                                          "messages": PROMPTS[2] + [{"role": "assistant", "content": RESPONSES[2]}]})
    assert chat.json()["data"][0]["probs"] == pytest.approx([raw[2]], abs=TOL)


def test_pooling_like_vllm(client, reference):
    ref = reference["rm-b"]
    text = ref.text(PROMPTS[0], RESPONSES[0])
    body = client.post("/pooling", json={"model": "rm-b", "input": [text], "use_activation": False}).json()
    assert body["id"].startswith("pool-") and body["object"] == "list"
    assert body["data"][0]["object"] == "pooling" and body["data"][0]["index"] == 0
    assert body["data"][0]["data"] == pytest.approx([ref.reward(text)], abs=TOL)
    default = client.post("/pooling", json={"model": "rm-b", "input": text}).json()
    assert default["data"][0]["data"] == pytest.approx([sigmoid(ref.reward(text))], abs=TOL)


def test_get_reward_like_openrlhf(client, reference):
    ref = reference["rm-a"]
    queries = [ref.text(c, r) for c, r in zip(PROMPTS, RESPONSES)]
    body = client.post("/get_reward", json={"model": "rm-a", "query": queries, "prompts": ["ignored"] * 3,
                                            "labels": [None] * 3}).json()
    assert set(body) == {"rewards", "scores", "extra_logs"}
    assert body["rewards"] == pytest.approx([ref.reward(q) for q in queries], abs=TOL)
    assert body["scores"] == body["rewards"]


# --- bad requests ----------------------------------------------------------------------------

CONV = [{"role": "user", "content": "hi"}]
BAD_REQUESTS = [
    ("malformed-json", "/classify", b'{"model": "rm-a", "input": ', 400, "malformed JSON"),
    ("not-an-object", "/v1/reward", b"[1, 2]", 400, "JSON object"),
    ("empty-body", "/get_reward", b"", 400, "empty request body"),
    ("input-wrong-type", "/classify", {"model": "rm-a", "input": 5}, 400, "input"),
    ("response-wrong-type", "/v1/reward", {"model": "rm-a", "items": [{"conversation": CONV, "response": 3}]},
     400, "items.0.response"),
    ("unknown-role", "/v1/reward", {"model": "rm-a", "items": [{"conversation": [{"role": "robot", "content": "x"}],
                                                               "response": "y"}]}, 400, "role"),
    ("ends-with-assistant", "/v1/compare", {"model": "rm-a", "pairs": [
        {"conversation": [{"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"}]},
     400, "end with a user message"),
    ("missing-items", "/v1/reward", {"model": "rm-a"}, 400, "items"),
    ("unknown-field", "/v1/reward", {"model": "rm-a", "items": items(), "temperature": 0}, 400, "temperature"),
    ("empty-input-list", "/classify", {"model": "rm-a", "input": []}, 400, "input is empty"),
    ("empty-input-text", "/pooling", {"model": "rm-a", "input": ["ok", ""]}, 400, "input[1] is empty"),
    ("input-and-messages", "/classify", {"model": "rm-a", "input": "x", "messages": CONV}, 400, "exactly one"),
    ("over-length", "/classify", {"model": "rm-b", "input": "word " * 200}, 400, "maximum context length is 96"),
    ("over-length-pair", "/v1/compare", {"model": "rm-b", "pairs": [
        {"conversation": CONV, "chosen": "word " * 200, "rejected": "b"}]}, 400, "max_length=96"),
    ("too-many-items", "/get_reward", {"model": "rm-a", "query": ["x"] * (MAX_ITEMS + 1)}, 413,
     f"limit is {MAX_ITEMS}"),
    ("unknown-model", "/pooling", {"model": "no-such-rm", "input": "x"}, 404, "does not exist"),
    ("unsupported-task", "/pooling", {"model": "rm-a", "input": "x", "task": "embed"}, 400, "task"),
]


@pytest.mark.parametrize("route,body,status,reason", [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_gets_4xx_with_reason(client, route, body, status, reason):
    if isinstance(body, bytes):
        answer = client.post(route, content=body, headers={"content-type": "application/json"})
    else:
        answer = client.post(route, json=body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == status
    assert reason in error["message"], error["message"]


# --- auth and overload -----------------------------------------------------------------------

ROUTES = [("GET", "/v1/models", None),
          ("POST", "/v1/reward", {"model": "rm-a", "items": items()}),
          ("POST", "/v1/compare", {"model": "rm-a", "pairs": [{"conversation": CONV, "chosen": "a", "rejected": "b"}]}),
          ("POST", "/classify", {"model": "rm-a", "input": "x"}),
          ("POST", "/pooling", {"model": "rm-a", "input": "x"}),
          ("POST", "/score", {"model": "rm-a", "queries": "q", "documents": ["a", "b"]}),
          ("POST", "/rerank", {"model": "rm-a", "query": "q", "documents": ["a", "b"]}),
          ("POST", "/get_reward", {"model": "rm-a", "query": ["x"]})]


@pytest.mark.parametrize("method,route,body", ROUTES, ids=[r[1] for r in ROUTES])
def test_token_guards_every_route_but_health(url, method, route, body):
    def call(headers):
        return httpx.request(method, url + route, json=body, headers=headers, timeout=60)

    missing = call({})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert call({"Authorization": f"Basic {TOKEN}"}).status_code == 401
    wrong = call({"Authorization": "Bearer not-the-token"})  # vLLM's --api-key answers 401 here too
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "AuthenticationError"
    assert call({"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_health_is_public(url):
    assert httpx.get(url + "/health", timeout=60).status_code == 200


def test_overload_gets_503_not_a_crash(url, client):
    body = {"model": "rm-a", "items": items(PROMPTS * 16, RESPONSES * 16)}  # 48 sequences: not instant

    async def burst(n: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as c:
            return await asyncio.gather(*(c.post("/v1/reward", json=body) for _ in range(n)))

    # 2 in the ingress + 2 queued at the proxy: of 24 arriving together, the rest must be refused
    answers = asyncio.run(burst(24))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(200) >= 2, statuses
    assert all(len(a.json()["scores"]) == 48 for a in answers if a.status_code == 200)
    assert client.post("/v1/reward", json={"model": "rm-a", "items": items()}).status_code == 200  # still serving
