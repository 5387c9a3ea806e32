"""The requests that vLLM's, verl's and OpenRLHF's own clients send, built as their code builds them,
sent to a real synpref server (local Ray, token-less on loopback as a trainer's RM server runs), and
read back the way each client reads them; then every kind of bad request, each answered with a JSON
error and a reason and never a 5xx, /health answering after each. Both backends: transformers and vLLM.

Upstream code the requests follow (read at the commits given):
- vLLM 0.32 examples: examples/pooling/classify/classification_online.py (texts, and token ids from
  /tokenize), examples/pooling/reward/sequence_reward_online.py (/pooling, a string and a user-only chat
  of content parts), examples/pooling/score/score_api_online.py (queries/documents),
  examples/pooling/score/openai_cross_encoder_score.py (text_1/text_2), examples/pooling/score/rerank_api_online.py.
- verl @b178a3cd verl/experimental/reward_loop/reward_loop.py: {"model": <reward_model.model.path>,
  "input": <chat template text, leading BOS text removed>, "activation": False} to /classify, reward =
  output["data"][-1]["probs"][-1]; later revisions send "use_activation": False.
- OpenRLHF @3c3be623 openrlhf/utils/agent.py: {"query": [prompt+response decoded with special tokens],
  "prompts": [prompt], "labels": [label or ""]} with no model and no token, one query per request, the extra
  RM URLs getting empty lists; reads .get("rewards"), .get("scores"), .get("extra_logs"). The older
  openrlhf/utils/remote_rm_utils.py (@62987083^) sent a whole batch with Content-Type: application/json.
"""

from __future__ import annotations

import base64
import json
import math
import struct

import httpx
import pytest

from serve_helpers import PROMPTS, RESPONSES, ReferenceRM, serve_app
from synpref.demo.tiny_models import build_tiny_model

pytestmark = pytest.mark.e2e

MODEL_PATH_ALIAS = "/checkpoints/skywork-rm"  # verl sends its configured reward model path as "model"
TOL = {"transformers": 1e-5, "vllm": 1e-3}  # vLLM's kernels sum in another order: float32 rounding


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# transformers behind a model deployment (layout separate); vLLM in the ingress replica (colocated)
@pytest.fixture(scope="module", params=[("transformers", "separate"), ("vllm", "colocated")], ids=lambda p: p[0])
def server(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("rm")
    path = build_tiny_model(root / "rm", kind="seq_cls", seed=3)
    backend, layout = request.param
    args = {"model": path, "model_name": "rm", "aliases": [MODEL_PATH_ALIAS], "max_length": 256, "layout": layout,
            "backend": backend, "max_request_bytes": 1 << 20, "replica": {"num_cpus": 1},
            "ingress": {"num_cpus": 0.5}, "vllm": {"cache_dir": str(root / "vllm-cache")}}
    with serve_app(args) as base, httpx.Client(base_url=base, timeout=300) as client:
        yield {"client": client, "ref": ReferenceRM(path), "tol": TOL[backend], "backend": backend}


def close(got, want, tol):
    assert got == pytest.approx(want, rel=tol, abs=tol)


# --- vLLM's examples ---------------------------------------------------------------------------

def test_vllm_classification_example_texts_and_token_ids(server):
    client, ref, tol = server["client"], server["ref"], server["tol"]
    prompts = ["Hello, my name is", "The capital of France is Paris.", "Reward models read the last token."]
    model = client.get("/v1/models").json()["data"][0]["id"]  # the example asks the server for its model
    answer = client.post("/classify", json={"model": model, "input": prompts},
                         headers={"accept": "application/json", "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    close([d["probs"][0] for d in body["data"]], [sigmoid(ref.reward_ids(ref.tokenizer(p)["input_ids"]))
                                                  for p in prompts], tol)
    # the token-id form: ids from /tokenize, as the example gets them
    token_ids = [client.post("/tokenize", json={"model": model, "prompt": p}).json()["tokens"] for p in prompts]
    assert token_ids == [ref.tokenizer(p)["input_ids"] for p in prompts]
    by_ids = client.post("/classify", json={"model": model, "input": token_ids}).json()
    close([d["probs"][0] for d in by_ids["data"]], [d["probs"][0] for d in body["data"]], tol)
    one = client.post("/classify", json={"model": model, "input": token_ids[0]}).json()  # list[int]
    assert one["usage"]["prompt_tokens"] == len(token_ids[0]) and one["data"][0]["num_classes"] == 1


def test_vllm_sequence_reward_example_pooling_text_and_user_only_chat(server):
    client, ref, tol = server["client"], server["ref"], server["tol"]
    text = client.post("/pooling", json={"model": "rm", "input": "vLLM is great!"}).json()
    close(text["data"][0]["data"], [sigmoid(ref.reward_ids(ref.tokenizer("vLLM is great!")["input_ids"]))], tol)
    chat = {"model": "rm", "messages": [{"role": "user", "content": [{"type": "text", "text": "vLLM is great!"}]}]}
    answer = client.post("/pooling", json=chat)
    assert answer.status_code == 200, answer.text
    # vLLM's chat form: the template over the messages as they are, no special tokens added
    rendered = ref.tokenizer.apply_chat_template([{"role": "user", "content": "vLLM is great!"}], tokenize=False)
    close(answer.json()["data"][0]["data"], [sigmoid(ref.reward_ids(ref.tokenizer(
        rendered, add_special_tokens=False)["input_ids"]))], tol)
    # base64 (float32) as vLLM encodes it, and the request id echoed into the response id
    b64 = client.post("/pooling", json={**chat, "encoding_format": "base64", "use_activation": False,
                                        "request_id": "req-42"}).json()
    (value,) = struct.unpack("<f", base64.b64decode(b64["data"][0]["data"]))
    close(value, ref.reward_ids(ref.tokenizer(rendered, add_special_tokens=False)["input_ids"]), 1e-3)
    assert b64["id"] == "pool-req-42"


def test_vllm_score_and_rerank_examples(server):
    client, ref, tol = server["client"], server["ref"], server["tol"]
    query, documents = "What is the capital of France?", ["The capital of France is Paris.", "Brazil."]
    expected = [sigmoid(ref.reward(ref.text([{"role": "user", "content": query}], d))) for d in documents]
    for body in ({"model": "rm", "queries": query, "documents": documents},
                 {"model": "rm", "text_1": query, "text_2": documents},
                 {"model": "rm", "queries": [query, query], "documents": documents}):
        answer = client.post("/score", json=body)
        assert answer.status_code == 200, answer.text
        assert [d["object"] for d in answer.json()["data"]] == ["score", "score"]
        close([d["score"] for d in answer.json()["data"]], expected, tol)
    reranked = client.post("/rerank", json={"model": "rm", "query": query, "documents": documents}).json()
    best = max(range(2), key=lambda i: expected[i])
    assert reranked["results"][0]["index"] == best and reranked["results"][0]["document"]["text"] == documents[best]
    mismatch = client.post("/score", json={"model": "rm", "queries": [query] * 2, "documents": documents * 2})
    assert mismatch.status_code == 400 and "1:1, 1:N or N:N" in mismatch.json()["error"]["message"]


# --- verl ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["activation", "use_activation"])
def test_verl_reward_loop_classify(server, flag):
    client, ref, tol = server["client"], server["ref"], server["tol"]
    chat = PROMPTS[0] + [{"role": "assistant", "content": RESPONSES[0]}]
    prompt = ref.tokenizer.apply_chat_template(chat, add_generation_prompt=False, tokenize=False)
    bos = ref.tokenizer.bos_token
    if bos is not None and prompt.startswith(bos):  # verl strips it, expecting vLLM to add it back
        prompt = prompt[len(bos):]
    output = client.post("/classify", json={"model": MODEL_PATH_ALIAS, "input": prompt, flag: False})
    assert output.status_code == 200, output.text
    rm_score = output.json()["data"][-1]["probs"][-1]
    close(rm_score, ref.reward_ids(ref.tokenizer(prompt, add_special_tokens=True)["input_ids"]), tol)


# --- OpenRLHF ------------------------------------------------------------------------------------

def test_openrlhf_agent_one_query_no_model_no_token(server):
    client, ref, tol = server["client"], server["ref"], server["tol"]
    query = ref.tokenizer.apply_chat_template(PROMPTS[1] + [{"role": "assistant", "content": RESPONSES[1]}],
                                              tokenize=False)
    prompt = ref.tokenizer.apply_chat_template(PROMPTS[1], tokenize=False, add_generation_prompt=True)
    answer = client.post("/get_reward", json={"query": [query], "prompts": [prompt], "labels": [""]})
    assert answer.status_code == 200, answer.text
    rewards_info = answer.json()
    score = rewards_info.get("scores") if rewards_info.get("scores") is not None else rewards_info.get("rewards")
    expected = ref.reward_ids(ref.tokenizer(query, add_special_tokens=False)["input_ids"])
    close(rewards_info.get("rewards"), [expected], tol)
    close(score, [expected], tol)
    assert rewards_info.get("extra_logs") == {}
    # the extra RM URLs of a sharded request get empty lists and must answer 200
    empty = client.post("/get_reward", json={"query": [], "prompts": [], "labels": []})
    assert empty.status_code == 200 and empty.json()["rewards"] == []
    # an over-long query is cut, as OpenRLHF's own server does, not refused (it would lose the sample)
    long_query = query + " owls" * 400
    cut = client.post("/get_reward", json={"query": [long_query], "prompts": [prompt], "labels": [""]})
    assert cut.status_code == 200 and len(cut.json()["rewards"]) == 1


def test_openrlhf_older_batched_client(server):
    client, ref, tol = server["client"], server["ref"], server["tol"]
    queries = [ref.tokenizer.apply_chat_template(p + [{"role": "assistant", "content": r}], tokenize=False)
               for p, r in zip(PROMPTS, RESPONSES)]
    answer = client.post("/get_reward", content=json.dumps({"query": queries, "prompts": queries, "labels": [None] * 3}),
                         headers={"Content-Type": "application/json"})
    rewards = answer.json()["rewards"]  # torch.as_tensor(info["rewards"]): a flat list, one per query, in order
    close(rewards, [ref.reward_ids(ref.tokenizer(q, add_special_tokens=False)["input_ids"]) for q in queries], tol)


# --- bad input -------------------------------------------------------------------------------------

TWENTY_MB = 20 << 20
BAD = [
    ("malformed JSON", "POST", "/classify", b'{"model": "rm", "input": ', 400),
    ("not an object", "POST", "/classify", b"[1, 2, 3]", 400),
    ("a bare string", "POST", "/get_reward", b'"query"', 400),
    ("invalid UTF-8", "POST", "/classify", b'{"model": "rm", "input": "\xff\xfe"}', 400),
    ("empty body", "POST", "/pooling", b"", 400),
    ("wrong type", "POST", "/classify", {"model": "rm", "input": {"text": "x"}}, 400),
    ("wrong type in a list", "POST", "/get_reward", {"query": ["ok", 5]}, 400),
    ("empty input list", "POST", "/classify", {"model": "rm", "input": []}, 400),
    ("empty items", "POST", "/v1/reward", {"model": "rm", "items": []}, 400),
    ("a 20 MB string", "POST", "/classify", {"model": "rm", "input": "x" * TWENTY_MB}, 413),
    ("a 20 MB list", "POST", "/get_reward", {"query": ["xy"] * (TWENTY_MB // 6)}, 413),
    ("unknown model", "POST", "/classify", {"model": "no-such-rm", "input": "x"}, 404),
    ("unknown route", "POST", "/v1/chat/completions", {"model": "rm", "messages": []}, 404),
    ("wrong method", "GET", "/classify", None, 405),
    ("lone surrogate", "POST", "/classify", b'{"model": "rm", "input": "a\\ud800b"}', 400),
    ("lone surrogate in a chat", "POST", "/pooling",
     b'{"model": "rm", "messages": [{"role": "user", "content": "\\udfff"}]}', 400),
    ("token id out of the vocabulary", "POST", "/classify", {"model": "rm", "input": [1, 2, 10 ** 9]}, 400),
    ("normalize (removed in vLLM)", "POST", "/pooling", {"model": "rm", "input": "x", "normalize": True}, 400),
    ("dimensions on /pooling", "POST", "/pooling", {"model": "rm", "input": "x", "dimensions": 8}, 400),
    ("image content", "POST", "/pooling", {"model": "rm", "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}, 400),
    ("truncate past max_length", "POST", "/classify", {"model": "rm", "input": "x", "truncate_prompt_tokens": 4096},
     400),
]


@pytest.mark.parametrize("method,route,body,status", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_requests_get_a_json_reason_and_the_server_stays_up(server, method, route, body, status):
    client = server["client"]
    if isinstance(body, bytes):
        answer = client.request(method, route, content=body, headers={"Content-Type": "application/json"})
    else:
        answer = client.request(method, route, json=body)
    assert answer.status_code == status, answer.text[:500]
    error = answer.json()["error"]
    assert error["code"] == status and error["message"] and error["type"]
    assert client.get("/health").status_code == 200


def test_control_characters_are_text_not_errors(server):
    client = server["client"]
    answer = client.post("/classify", json={"model": "rm", "input": "tab\there\x00nul\x1bescape\u2028line"})
    assert answer.status_code == 200, answer.text
    assert client.get("/health").status_code == 200
