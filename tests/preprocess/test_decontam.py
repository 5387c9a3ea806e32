import json

from synpref.preprocess.decontam import NgramIndex, benchmark_prompts, first_turn_prompt, ngram_hashes
from synpref.demo.pool import BENCHMARK_PROMPTS

PROMPT = BENCHMARK_PROMPTS[0]


def test_overlap_survives_case_and_punctuation_but_needs_thirteen_words():
    index = NgramIndex.from_prompts([PROMPT])
    words = PROMPT.split()
    assert index.overlaps([("Q: " + " ".join(words[2:15]) + "!!").upper()])  # 13 words in a row
    assert not index.overlaps([" ".join(words[2:14])])  # only 12
    assert not index.overlaps(["a completely different question about arithmetic and nothing else at all here"])


def test_short_text_has_no_ngrams():
    assert len(ngram_hashes("one two three", 13)) == 0


def test_first_turn_prompt_from_each_benchmark_layout():
    assert first_turn_prompt({"prompt": "p"}) == "p"
    assert first_turn_prompt({"question": "q"}) == "q"
    assert first_turn_prompt({"conversation_input": [{"role": "user", "content": "c"}, {"role": "assistant", "content": "x"}]}) == "c"


def test_folder_of_benchmarks(tmp_path):
    tmp_path = tmp_path / "outputs" / "bench"  # a root under a folder named outputs still counts
    (tmp_path / "outputs").mkdir(parents=True)
    (tmp_path / "a.json").write_text(json.dumps([{"prompt": PROMPT}]))
    (tmp_path / "b.jsonl").write_text(json.dumps({"question": "other"}) + "\n")
    (tmp_path / "outputs" / "judge.jsonl").write_text(json.dumps({"question": "not an input"}) + "\n")
    assert sorted(benchmark_prompts([tmp_path])) == sorted([PROMPT, "other"])


def test_real_benchmarks_index(shared_benchmarks):
    prompts = benchmark_prompts([shared_benchmarks])
    index = NgramIndex.from_prompts(prompts)
    # every long-enough benchmark prompt must hit its own index
    long_prompts = [p for p in prompts if len(p.split()) >= 20]
    assert len(long_prompts) > 1000
    assert all(index.overlaps([p]) for p in long_prompts[::50])
    assert index.hashes.nbytes < 10e6
