"""Score texts with a sequence-classification folder through vLLM (CPU or GPU); print JSON rewards.

    python tests/vllm_scores.py MODEL_DIR TEXTS.json
Run as its own process: vLLM's engine wants a clean process (tests call it with subprocess)."""

import json
import os
import sys


def main():
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM
    from vllm.pooling_params import PoolingParams

    folder, texts_file = sys.argv[1], sys.argv[2]
    texts = json.loads(open(texts_file).read())
    llm = LLM(model=folder, runner="pooling", dtype="float32", enforce_eager=True, max_model_len=512)
    # raw rewards: vLLM applies a sigmoid to one-label classifiers unless told not to
    outputs = llm.classify(texts, pooling_params=PoolingParams(use_activation=False))
    print("SCORES " + json.dumps([o.outputs.probs[0] for o in outputs]))


if __name__ == "__main__":
    main()
