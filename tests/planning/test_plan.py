"""The planner (synpref.planning, jobs/plan.py): a hand-written pilot whose every figure is computed by
hand below, the cluster files of cluster/, and (marked e2e) a real pilot run planned end to end."""

import json
import math
import os
from pathlib import Path

import pytest
import yaml

from synpref.planning.budget import (CPU_EXTRAPOLATION, GIVEN, lookup, one_more_node, plan, target_sizes,
                                     target_work)
from synpref.planning.cluster import find_kind, kubernetes_quantity, read_cluster, with_nodes
from synpref.planning.pilot import pilot_rates, read_pilot
from synpref.planning.tokens import count_tokens
from tests.conftest import REPO, run_job

# --- a hand-written pilot: a pipeline folder with the stats.json and config.yaml its steps write ----------

STEPS = {  # folder: (stats.json, the config.yaml keys that differ from conf/<job>.yaml)
    "preprocess": ({"job": "preprocess", "records_in": 1000, "seconds": 10.0,
                    "totals": {"kept": 800, "dropped": 150, "quarantined": 50}},
                   {"actors": 2, "actor_num_cpus": 1}),
    "pool": ({"job": "annotate", "records_in": 800, "seconds": 400.0, "pairs_labelled": 0,
              "totals": {"kept": 760, "dropped": 0, "quarantined": 40}},
             {"engine": {"actors": 1, "cpus_per_actor": 2}, "judging": {"enabled": False}}),
    "stage2/gold_rm": ({"job": "train_rm", "train_pairs": 50, "model": "/gone/model",
                        "history": [{"step": 0, "train_loss": None}, {"step": 5, "tokens_per_s": 300.0},
                                    {"step": 10, "tokens_per_s": 500.0}]},
                       {"workers": 1, "cpus_per_worker": 2, "train": {"epochs": 3}, "data": {"validation": None}}),
    "stage2/scored": ({"job": "score", "pairs_scored": 660, "seconds": 66.0},
                      {"actors": 2, "transformers": {"cpus_per_actor": 1},
                       "models": [{"name": "best", "path": "/gone/best"}, {"name": "gold", "path": "/gone/gold"}]}),
    "stage2/judged": ({"job": "annotate", "records_in": 198, "seconds": 99.0, "pairs_labelled": 165,
                       "totals": {"kept": 190, "dropped": 0, "quarantined": 8}},
                      {"engine": {"actors": 1, "cpus_per_actor": 2}}),
    "stage2": ({"job": "stage2", "pairs_in": 700, "pool_scored": 660, "silver_in": 40, "unconfident": 198,
                "judged": 165, "kept": 420, "dropped": 245, "quarantined": 35, "flipped_added": 245}, {}),
    "final_rm/curated": ({"job": "train_rm", "train_pairs": 420, "model": "/gone/model",
                          "history": [{"step": 10, "tokens_per_s": 1000.0}, {"step": 20, "tokens_per_s": 1200.0}]},
                         {"workers": 2, "cpus_per_worker": 2, "train": {"epochs": 2}, "data": {"validation": "/gold"}}),
    "gold-seed/gold": ({"job": "verify", "action": "import"}, {"action": "import"}),
}
ORDER = ["preprocess", "pool", "stage2/gold_rm", "stage2/scored", "stage2/judged", "stage2", "final_rm/curated"]


def write_pilot(root: Path) -> Path:
    for i, (folder, (stats, config)) in enumerate(STEPS.items()):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "config.yaml").write_text(yaml.safe_dump(config))
        path = root / folder / "stats.json"
        path.write_text(json.dumps(stats))
        finished = 1_700_000_000 + (ORDER.index(folder) if folder in ORDER else -1) * 60  # the order they finished in
        os.utime(path, (finished, finished))
    (root / "step_times.json").write_text(json.dumps([
        {"job": "preprocess", "output": "/elsewhere/run/preprocess", "seconds": 14.5},
        {"job": "annotate", "output": "/elsewhere/run/pool", "seconds": 420.0}]))
    return root


@pytest.fixture
def pilot(tmp_path):
    return read_pilot(write_pilot(tmp_path / "pilot"))


def by_name(steps):
    return {s.name: s for s in steps}


# the hand-made cluster: 4 CPU nodes of 16 CPUs, 2 GPU nodes of 32 CPUs and 4 GPUs
NODES = {"cpu": {"count": 4, "cpus": 16}, "gpu": {"count": 2, "cpus": 32, "gpus": 4}}
PAIRS = 1_000_000
TOKENS = 200.0  # tokens per pair (the pilot's, as if measured)


def test_each_step_is_recognised_by_its_job_and_measured_per_worker(pilot):
    steps = by_name(pilot)
    assert [s.name for s in pilot if s.name in ORDER] == ORDER  # in the order the steps finished
    assert steps["gold-seed/gold"].timed is False  # human verification: no cluster time
    # rate per worker = work / seconds / workers the config allowed
    assert steps["preprocess"].rate_per_worker == pytest.approx(1000 / 10 / 2)  # 50 records/s per actor
    assert steps["pool"].rate_per_worker == pytest.approx(800 / 400 / 1)  # 2 pairs/s per vLLM engine
    assert steps["pool"].cpus_per_worker == 2
    assert steps["stage2/scored"].rate_per_worker == pytest.approx(660 / 66 / 2)  # 5 pairs/s per actor
    assert steps["stage2/judged"].rate_per_worker == pytest.approx(198 / 99 / 1)  # 2 pairs/s
    # training: the mean tokens/s of the report windows (step 0 has none) over the workers
    assert steps["stage2/gold_rm"].rate_per_worker == pytest.approx((300 + 500) / 2 / 1)  # 400 tokens/s
    assert steps["final_rm/curated"].rate_per_worker == pytest.approx((1000 + 1200) / 2 / 2)  # 550 tokens/s
    assert steps["stage2/gold_rm"].training["validation_fraction"] == 0.05  # conf/train_rm.yaml: no D_gold given
    assert steps["final_rm/curated"].training["validation_fraction"] == 0.0  # D_gold validates it
    # what each grows with: the pool flows through preprocess -> attributes -> Stage 2 -> final RM
    assert {n: s.scales_with for n, s in steps.items() if s.timed} == {
        "preprocess": "raw", "pool": "pool", "stage2/gold_rm": None, "stage2/scored": "stage2_scored",
        "stage2/judged": "stage2_judged", "final_rm/curated": "curated"}
    assert steps["preprocess"].wall_seconds == 14.5 and steps["pool"].wall_seconds == 420.0  # step_times.json


def test_acceptance_rates_are_read_across_steps(pilot):
    rates, unmeasured = pilot_rates(pilot)
    assert rates["kept_per_record"] == pytest.approx(800 / 1000)
    assert rates["attributes_quarantined"] == pytest.approx(40 / 800)
    assert rates["unconfident"] == pytest.approx(198 / 660)  # 0.3 of the pairs scored go to the judges
    assert rates["judged"] == pytest.approx(165 / 660)
    assert rates["kept"] == pytest.approx(420 / 700) and rates["dropped"] == pytest.approx(245 / 700)
    assert rates["quarantined"] == pytest.approx(35 / 700) and rates["flipped"] == pytest.approx(245 / 700)
    assert rates["stage1_taken"] == 760 - 660  # the attributes pass kept 760, Stage 2 scored 660
    assert rates["silver_in"] == 40
    assert unmeasured == []


def test_a_pilot_without_stage2_says_what_it_assumed(tmp_path):
    root = tmp_path / "p"
    (root / "preprocess").mkdir(parents=True)
    (root / "preprocess" / "stats.json").write_text(json.dumps(STEPS["preprocess"][0]))
    rates, unmeasured = pilot_rates(read_pilot(root))
    assert rates["kept_per_record"] == 0.8 and "unconfident" in unmeasured and "kept_per_record" not in unmeasured


def test_target_sizes_by_hand(pilot):
    rates, _ = pilot_rates(pilot)
    sizes = target_sizes(PAIRS, rates)
    # pool = 1,000,000 x 0.8 = 800,000; with attributes 800,000 x (1 - 0.05) = 760,000
    # Stage 2 scores 760,000 - 100 taken by Stage 1 = 759,900; judges 0.3 of them = 227,970
    # curated = (759,900 + 40 silver) x 0.6 = 455,964; with the flipped (0.6 + 0.35) = 721,943
    assert sizes == pytest.approx({"raw": 1_000_000, "pool": 800_000, "stage2_scored": 759_900,
                                   "stage2_judged": 227_970, "curated": 455_964, "curated_flipped": 721_943})


# the hand computation of the plan on NODES (every step on the 4 CPU nodes of 16 CPUs: a CPU pilot)
#   step               workers/node          rate/node             work                         hours
#   preprocess         16/1 = 16 actors      16 x 50 = 800 rec/s   1,000,000 records            1e6 / (800 x 4) / 3600
#   pool               16/2 = 8 engines      8 x 2 = 16 pairs/s    800,000 pairs                8e5 / (16 x 4) / 3600
#   stage2/gold_rm     16/2 = 8 workers      8 x 400 = 3200 tok/s  fixed: 50 x 3 x 200 = 30,000 3e4 / (3200 x 4) / 3600
#   stage2/scored      16/1 = 16 actors      16 x 5 = 80 pairs/s   759,900 pairs                759,900 / (80 x 4) / 3600
#   stage2/judged      16/2 = 8 engines      8 x 2 = 16 pairs/s    227,970 pairs                227,970 / (16 x 4) / 3600
#   final_rm/curated   16/2 = 8 workers      8 x 550 = 4400 tok/s  455,964 x 2 x 200 tokens     182,385,600 / (4400 x 4) / 3600
HAND_HOURS = {"preprocess": 1e6 / 3200 / 3600, "pool": 8e5 / 64 / 3600, "stage2/gold_rm": 3e4 / 12800 / 3600,
              "stage2/scored": 759_900 / 320 / 3600, "stage2/judged": 227_970 / 64 / 3600,
              "final_rm/curated": 182_385_600 / 17_600 / 3600}


def cpu_plan(pilot, **overrides):
    rates, unmeasured = pilot_rates(pilot)
    return plan(pilot, with_nodes([], NODES), pairs=PAIRS, rates=rates, tokens_per_pair=None,
                pilot_tokens_per_pair=TOKENS, unmeasured=unmeasured, **overrides)


def test_hours_node_hours_and_shares_by_hand(pilot):
    result = cpu_plan(pilot)
    rows = {r["step"]: r for r in result["rows"]}
    assert list(rows) == [n for n in ORDER if n in HAND_HOURS]
    total = sum(HAND_HOURS.values())  # 0.0868 + 3.4722 + 0.0007 + 0.6596 + 0.9895 + 2.8786 = 8.0873 h
    assert total == pytest.approx(8.0873, abs=1e-4)
    for name, hours in HAND_HOURS.items():
        assert rows[name]["hours"] == pytest.approx(hours), name
        assert rows[name]["node_hours"] == pytest.approx(hours * 4), name  # 4 CPU nodes each
        assert rows[name]["share"] == pytest.approx(hours / total), name
        assert (rows[name]["kind"], rows[name]["source"]) == ("cpu", CPU_EXTRAPOLATION)
    assert rows["pool"]["workers"] == 8 * 4 and rows["preprocess"]["workers"] == 16 * 4  # actors=... to set
    assert rows["final_rm/curated"]["work"] == pytest.approx(455_964 * 2 * 200)
    assert result["total_hours"] == pytest.approx(total)
    assert result["total_node_hours"] == pytest.approx(4 * total)
    assert result["bottleneck"]["step"] == "pool"  # 3.47 h, 42.9% of the time
    assert result["bottleneck"]["share"] == pytest.approx(3.4722 / 8.0873, abs=1e-4)


def test_one_more_node_saves_a_fifth_of_the_steps_on_four_nodes(pilot):
    result = cpu_plan(pilot)
    more = {m["kind"]: m for m in result["one_more_node"]}
    # every step is on the 4 CPU nodes: on 5 each takes 4/5 of its time, saving total/5 = 1.6175 h
    assert more["cpu"]["hours_saved"] == pytest.approx(sum(HAND_HOURS.values()) / 5)
    assert more["cpu"]["total_after"] == pytest.approx(sum(HAND_HOURS.values()) * 4 / 5)
    assert more["gpu"]["hours_saved"] == 0 and more["gpu"]["steps"] == []  # nothing runs on the GPU nodes


def test_a_given_gpu_throughput_moves_training_to_the_gpu_nodes(pilot):
    result = cpu_plan(pilot, placement={"final_rm": "gpu"}, throughput={"final_rm": {"gpu": 36_000}})
    rows = {r["step"]: r for r in result["rows"]}
    curated = rows["final_rm/curated"]
    # 182,385,600 tokens at 36,000 tokens/s per node on 2 GPU nodes: 182,385,600 / 72,000 / 3600 = 0.7036 h
    assert (curated["kind"], curated["source"], curated["nodes"]) == ("gpu", GIVEN, 2)
    assert curated["hours"] == pytest.approx(182_385_600 / 72_000 / 3600)
    assert curated["node_hours"] == pytest.approx(2 * 182_385_600 / 72_000 / 3600)
    more = {m["kind"]: m for m in result["one_more_node"]}
    assert more["gpu"]["hours_saved"] == pytest.approx(curated["hours"] / 3)  # 2 -> 3 nodes saves a third
    assert rows["stage2/gold_rm"]["kind"] == "cpu"  # placement names final_rm only


def test_longer_target_pairs_slow_every_pair_rate(pilot):
    rates, _ = pilot_rates(pilot)
    longer = plan(pilot, with_nodes([], NODES), pairs=PAIRS, rates=rates, tokens_per_pair=400.0,
                  pilot_tokens_per_pair=TOKENS)
    rows = {r["step"]: r for r in longer["rows"]}
    assert rows["stage2/scored"]["length_factor"] == 0.5  # 200 / 400
    assert rows["stage2/scored"]["hours"] == pytest.approx(2 * HAND_HOURS["stage2/scored"])
    assert rows["final_rm/curated"]["hours"] == pytest.approx(2 * HAND_HOURS["final_rm/curated"])  # twice the tokens
    assert rows["stage2/gold_rm"]["hours"] == pytest.approx(2 * HAND_HOURS["stage2/gold_rm"])
    given = plan(pilot, with_nodes([], NODES), pairs=PAIRS, rates=rates, tokens_per_pair=400.0,
                 pilot_tokens_per_pair=TOKENS, throughput={"score": {"cpu": 1000}})
    scored = next(r for r in given["rows"] if r["step"] == "stage2/scored")
    # a given throughput is for the target's pairs already: 759,900 / (1000 x 4) / 3600, not scaled
    assert scored["hours"] == pytest.approx(759_900 / 4000 / 3600) and scored["length_factor"] == 1.0


def test_a_steps_own_tokens_per_pair_comes_before_the_pilots(pilot):
    rates, _ = pilot_rates(pilot)
    result = plan(pilot, with_nodes([], NODES), pairs=PAIRS, rates=rates, tokens_per_pair=None,
                  pilot_tokens_per_pair=TOKENS, step_tokens={"final_rm/curated": 250.0})
    rows = {r["step"]: r for r in result["rows"]}
    assert rows["final_rm/curated"]["work"] == pytest.approx(455_964 * 2 * 250)  # its own input's 250 tokens
    assert rows["stage2/gold_rm"]["work"] == pytest.approx(50 * 3 * 200)  # the pilot's 200
    assert all(r["length_factor"] == 1.0 for r in result["rows"])  # no target length given: no scaling


def test_without_tokens_per_pair_training_has_no_figure_and_the_plan_says_incomplete(pilot):
    rates, _ = pilot_rates(pilot)
    result = plan(pilot, with_nodes([], NODES), pairs=PAIRS, rates=rates, tokens_per_pair=None)
    rows = {r["step"]: r for r in result["rows"]}
    assert rows["final_rm/curated"]["hours"] is None and "tokens_per_pair" in rows["final_rm/curated"]["source"]
    assert result["complete"] is False
    assert result["total_hours"] == pytest.approx(sum(h for n, h in HAND_HOURS.items() if "rm" not in n))


def test_a_gpu_pilot_step_on_cpu_nodes_has_no_figure_and_an_unknown_kind_is_refused(pilot):
    scored = by_name(pilot)["stage2/scored"]
    scored.device, scored.gpus_per_worker = "cuda", 1.0
    rates, _ = pilot_rates(pilot)
    kinds = with_nodes([], NODES)
    result = plan([scored], kinds, pairs=PAIRS, rates=rates, tokens_per_pair=None, placement={"score": "cpu"})
    assert result["rows"][0]["hours"] is None and "throughput.score.cpu" in result["rows"][0]["source"]
    on_gpu = plan([scored], kinds, pairs=PAIRS, rates=rates, tokens_per_pair=None)["rows"][0]
    # a CUDA step goes to the GPU kind by default: 4 GPUs / 1 per actor x 5 pairs/s = 20 pairs/s per node, 2 nodes
    assert (on_gpu["kind"], on_gpu["workers"]) == ("gpu", 8)
    assert on_gpu["hours"] == pytest.approx(759_900 / 40 / 3600)
    scored.gpus_per_worker = 8.0  # a worker of 8 GPUs does not fit a node of 4
    too_big = plan([scored], kinds, pairs=PAIRS, rates=rates, tokens_per_pair=None)["rows"][0]
    assert too_big["hours"] is None and "no worker fits" in too_big["source"]
    with pytest.raises(ValueError, match="no node kind 'tpu'"):
        plan([scored], kinds, pairs=PAIRS, rates=rates, tokens_per_pair=None, placement={"score": "tpu"})


def test_lookup_prefers_the_step_then_its_folders_then_its_job(pilot):
    scored = by_name(pilot)["stage2/scored"]
    assert lookup({"score": 1, "stage2": 2, "stage2/scored": 3}, scored) == 3
    assert lookup({"score": 1, "stage2": 2}, scored) == 2
    assert lookup({"score": 1}, scored) == 1
    assert lookup({"annotate": 1}, scored) is None


def test_fixed_steps_keep_the_pilots_work():
    from synpref.planning.pilot import Step

    evaluate = Step(name="evaluate", job="evaluate", stats={}, config={}, unit="responses", work=423.0,
                    spreads=False, rate_per_worker=11.7)
    assert target_work(evaluate, {"raw": 1e9}, None) == 423.0
    row = plan([evaluate], with_nodes([], NODES), pairs=1e9, rates=pilot_rates([])[0], tokens_per_pair=None)["rows"][0]
    assert row["nodes"] == 1 and row["hours"] == pytest.approx(423 / 11.7 / 3600)  # one process: one node
    assert one_more_node([], with_nodes([], NODES), 0.0)[0]["hours_saved"] == 0


# --- cluster files ------------------------------------------------------------------------------------

def test_the_aws_cluster_file():
    kinds = read_cluster(REPO / "cluster" / "aws.yaml")
    assert [(k.name, k.alias, k.cpus, k.gpus, k.count, k.max_workers) for k in kinds] == [
        ("ray.worker.cpu", "cpu", 32, 0, 16, 16), ("ray.worker.gpu", "gpu", 192, 8, 8, 8)]  # the CPU: 0 head left out


def test_the_gcp_and_kuberay_cluster_files():
    gcp = read_cluster(REPO / "cluster" / "gcp.yaml")
    assert [(k.alias, k.cpus, k.gpus, k.count) for k in gcp] == [("cpu", 32, 0, 16), ("gpu", 96, 8, 8)]
    kuberay = read_cluster(REPO / "cluster" / "kuberay" / "raycluster.yaml")
    assert [(k.name, k.alias, k.cpus, k.gpus, k.count) for k in kuberay] == [
        ("cpu-group", "cpu", 28, 0, 16), ("gpu-group", "gpu", 64, 8, 8)]
    assert kubernetes_quantity("500m") == 0.5 and kubernetes_quantity(8) == 8


def test_nodes_override_counts_and_add_kinds():
    kinds = with_nodes(read_cluster(REPO / "cluster" / "aws.yaml"), {"gpu": 2, "big": {"count": 1, "cpus": 96}})
    assert find_kind(kinds, "ray.worker.gpu").count == 2 and find_kind(kinds, "gpu").max_workers == 8
    assert (find_kind(kinds, "big").cpus, find_kind(kinds, "big").gpus) == (96, 0)
    with pytest.raises(ValueError, match="no node kind"):
        with_nodes(kinds, {"tpu": 3})


def test_tokens_per_pair_counts_both_sequences_cut_at_max_length():
    class WordTokenizer:  # one token per word, the chat template joins the turns
        bos_token = None

        def apply_chat_template(self, messages, tokenize=False):
            return " ".join(m["content"] for m in messages)

        def __call__(self, texts, add_special_tokens=True):
            return {"input_ids": [list(range(len(t.split()))) for t in texts]}

    rows = [{"conversation": [{"role": "user", "content": "a b c"}], "chosen": "d e", "rejected": "f"},
            {"conversation": [{"role": "user", "content": "a"}], "chosen": "b " * 20, "rejected": "c"}]
    # pair 1: 5 + 4 tokens; pair 2: 21 cut to 8, and 2: (9 + 10) / 2 = 9.5
    assert count_tokens(WordTokenizer(), rows, max_length=8) == 9.5


# --- the job -------------------------------------------------------------------------------------------

def test_the_job_prints_and_writes_the_plan_of_a_pilot_folder(tmp_path):
    root = write_pilot(tmp_path / "pilot")
    proc = run_job("plan.py", f"run={root}", f"pairs={PAIRS}", f"output={tmp_path / 'plan'}", "cluster=null",
                   "nodes={cpu: {count: 4, cpus: 16}, gpu: {count: 2, cpus: 32, gpus: 4}}", "tokens_per_pair=200",
                   timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert "Bottleneck: pool" in proc.stdout and "| final_rm/curated" in proc.stdout
    assert "CPU extrapolation" in proc.stdout and "cpu 4 -> 5: -1.62 h" in proc.stdout
    # no model folder in this pilot: the given tokens per pair alone, and no length scaling
    assert written["pilot_tokens"] is None and {r["length_factor"] for r in written["rows"]} == {1.0}
    assert {r["step"]: r["hours"] for r in written["rows"]} == pytest.approx(HAND_HOURS)
    assert (tmp_path / "plan" / "plan.png").stat().st_size > 0 and (tmp_path / "plan" / "plan.md").exists()


def test_the_job_refuses_bad_settings(tmp_path):
    proc = run_job("plan.py", f"run={tmp_path}", "pairs=0", "throughput={score: {gpu: -1}}", timeout=120)
    assert proc.returncode == 2
    assert "pairs=0" in proc.stderr and "throughput.score" in proc.stderr


# --- end to end: a real pilot (preprocess, then score with a tiny RM) planned for 40M pairs ------------

@pytest.mark.e2e
def test_a_real_pilot_planned_for_40m_pairs_on_the_aws_cluster(tmp_path):
    from synpref.demo.pool import write_demo_pool
    from synpref.demo.tiny_models import build_tiny_model

    write_demo_pool(tmp_path / "raw", n_pairs=100)
    pilot = tmp_path / "pilot"
    pre = run_job("preprocess.py", f"data.input={tmp_path / 'raw'}", f"data.output={pilot / 'preprocess'}",
                  f"decontam.benchmarks=[{tmp_path / 'benchmarks'}]", "ray.num_cpus=2")
    assert pre.returncode == 0, pre.stderr[-3000:]
    rm = build_tiny_model(tmp_path / "rm", kind="seq_cls")
    score = run_job("score.py", f"data.input='{pilot / 'preprocess' / 'pairs' / 'status=kept'}'",  # quoted: the path holds a "="
                    f"data.output={pilot / 'scored'}", f"models=[{{name: rm, path: {rm}}}]", "max_length=128",
                    "wandb.mode=disabled")
    assert score.returncode == 0, score.stderr[-3000:]

    proc = run_job("plan.py", f"run={pilot}", "pairs=40000000", "cluster=cluster/aws.yaml",
                   f"output={tmp_path / 'plan'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| preprocess" in proc.stdout and "| scored" in proc.stdout and "Bottleneck:" in proc.stdout
    plan_json = json.loads((tmp_path / "plan" / "plan.json").read_text())
    rows = {r["step"]: r for r in plan_json["rows"]}

    # by hand from the pilot's own stats: both steps on the 16 CPU nodes of 32 CPUs (ray.worker.cpu)
    pre_stats = json.loads((pilot / "preprocess" / "stats.json").read_text())
    score_stats = json.loads((pilot / "scored" / "stats.json").read_text())
    per_actor = pre_stats["records_in"] / pre_stats["seconds"] / 2          # conf/preprocess.yaml: 2 actors of 1 CPU
    pre_hours = 40_000_000 / (per_actor * 32 * 16) / 3600
    pool = 40_000_000 * pre_stats["totals"]["kept"] / pre_stats["records_in"]
    per_scorer = score_stats["pairs_scored"] / score_stats["seconds"] / 1   # conf/score.yaml: 1 actor of 1 CPU
    score_hours = pool / (per_scorer * 32 * 16) / 3600
    assert rows["preprocess"]["hours"] == pytest.approx(pre_hours, rel=1e-9)
    assert rows["scored"]["work"] == pytest.approx(pool)
    assert rows["scored"]["hours"] == pytest.approx(score_hours, rel=1e-9)
    assert rows["scored"]["node_hours"] == pytest.approx(16 * score_hours, rel=1e-9)
    assert plan_json["bottleneck"]["step"] == max(rows, key=lambda n: rows[n]["hours"])
    assert plan_json["one_more_node"][0]["hours_saved"] == pytest.approx((pre_hours + score_hours) / 17, rel=1e-9)
    # the tokenizer of the scoring model measured the pilot's pairs
    assert plan_json["pilot_tokens"]["tokens_per_pair"] > 0 and math.isfinite(plan_json["total_hours"])
    assert (tmp_path / "plan" / "plan.png").exists()
