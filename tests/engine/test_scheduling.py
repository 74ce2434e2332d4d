"""Scheduler and block manager with hand-made runner outputs (no model, no torch)."""
from __future__ import annotations

import subprocess
import sys

from halyard_worker.engine.block_manager import BlockManager
from halyard_worker.engine.scheduler import RunnerOutput, Scheduler, SchedulerConfig
from halyard_worker.engine.sequence import Sequence
from halyard_worker.engine.types import SamplingParams

EOS = 2


def make(num_blocks=16, block_size=4, max_num_seqs=8, budget=64, max_model_len=256, caching=True):
    bm = BlockManager(num_blocks, block_size, caching)
    return Scheduler(SchedulerConfig(max_num_seqs, budget, max_model_len), bm), bm


def seq(rid, n_prompt, priority=0, max_tokens=8, first=10):
    return Sequence(rid, list(range(first, first + n_prompt)), SamplingParams(max_tokens=max_tokens),
                    priority=priority, eos_token_ids=(EOS,))


def step(sched, token=7):
    """One step where every request that reached its last token samples `token`."""
    out = sched.schedule()
    sampled = {}
    for rid, n in out.num_scheduled_tokens.items():
        s = sched.requests[rid]
        if s.num_computed_tokens + n == s.num_tokens:
            sampled[rid] = token
    sched.update(out, RunnerOutput(sampled, {}))
    return out


def run_to_end(sched, limit=200):
    for _ in range(limit):
        if not sched.has_unfinished():
            return
        step(sched)
    raise AssertionError("requests did not finish")


def test_scheduling_modules_do_not_import_torch():
    code = ("import sys\n"
            "import halyard_worker.engine.sequence, halyard_worker.engine.block_manager\n"
            "import halyard_worker.engine.scheduler, halyard_worker.engine.detokenizer\n"
            "import halyard_worker.engine.output, halyard_worker.engine.types\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_token_budget_splits_prefill_into_chunks_and_shares_with_decodes():
    sched, _ = make(budget=10)
    sched.add(seq("a", 3))
    sched.add(seq("b", 25))
    out = step(sched)
    assert out.num_scheduled_tokens == {"a": 3, "b": 7}
    out = step(sched)
    assert out.num_scheduled_tokens == {"a": 1, "b": 9}  # a decodes, b's next chunk
    assert out.total_num_scheduled_tokens <= 10
    out = step(sched)
    assert out.num_scheduled_tokens == {"a": 1, "b": 9}
    assert sched.requests["b"].num_output_tokens == 1  # b sampled only at its last chunk


def test_max_num_seqs_caps_the_batch():
    sched, _ = make(max_num_seqs=2)
    for i in range(4):
        sched.add(seq(str(i), 3))
    out = step(sched)
    assert sorted(out.num_scheduled_tokens) == ["0", "1"]
    assert len(sched.waiting) == 2


def test_priority_orders_admission_then_fcfs():
    sched, _ = make(max_num_seqs=2)
    sched.add(seq("late-low", 3, priority=5))
    sched.add(seq("first-mid", 3, priority=1))
    sched.add(seq("urgent", 3, priority=0))
    sched.add(seq("second-mid", 3, priority=1))
    out = step(sched)
    assert list(out.num_scheduled_tokens) == ["urgent", "first-mid"]


def test_urgent_waiting_request_preempts_least_urgent_running():
    sched, bm = make(max_num_seqs=2)
    sched.add(seq("batch-1", 3, priority=9))
    sched.add(seq("batch-2", 3, priority=9))
    step(sched)
    sched.add(seq("vip", 3, priority=0))
    out = step(sched)
    assert "vip" in out.num_scheduled_tokens
    assert sched.num_preemptions == 1
    assert sched.requests["batch-2"] in sched.waiting  # the latest of the lowest priority
    assert sched.requests["batch-2"].num_computed_tokens == 0


def test_running_out_of_blocks_preempts_latest_and_everything_finishes():
    sched, bm = make(num_blocks=6, block_size=4)  # 24 KV tokens
    for i in range(3):
        sched.add(seq(str(i), 6, max_tokens=10))  # 16 tokens each at the end
    run_to_end(sched)
    assert sched.num_preemptions > 0
    assert bm.num_free_blocks == bm.num_blocks
    assert all(b.ref_count == 0 for b in bm.blocks)


def test_preempted_request_is_readmitted_with_all_its_tokens():
    sched, bm = make(num_blocks=5, block_size=4)
    sched.add(seq("a", 8, max_tokens=12))
    sched.add(seq("b", 8, max_tokens=12))
    readmitted = None
    for _ in range(60):
        out = step(sched)
        for new in out.new_requests:
            if sched.requests.get(new.request_id) and sched.requests[new.request_id].num_preemptions:
                readmitted = new
        if readmitted:
            break
    assert readmitted is not None
    assert len(readmitted.token_ids) > 8  # prompt plus the outputs so far


def test_prefix_blocks_are_shared_and_counted_in_tokens():
    sched, bm = make(block_size=4)
    sched.add(seq("a", 10, max_tokens=1))
    run_to_end(sched)
    sched.add(seq("b", 10, max_tokens=1))
    out = sched.schedule()
    [new] = out.new_requests
    assert new.num_computed_tokens == 8  # two full blocks of the same 10-token prompt
    assert out.num_scheduled_tokens == {"b": 2}
    assert bm.prefix_queries == 20 and bm.prefix_hits == 8


def test_full_cached_prompt_still_computes_its_last_token():
    sched, bm = make(block_size=4)
    sched.add(seq("a", 8, max_tokens=1))
    run_to_end(sched)
    sched.add(seq("b", 8, max_tokens=1))
    out = sched.schedule()
    assert out.new_requests[0].num_computed_tokens == 4
    assert out.num_scheduled_tokens == {"b": 4}


def test_different_prefix_gets_no_hit():
    sched, bm = make(block_size=4)
    sched.add(seq("a", 10, max_tokens=1, first=10))
    run_to_end(sched)
    sched.add(seq("b", 10, max_tokens=1, first=50))
    out = sched.schedule()
    assert out.new_requests[0].num_computed_tokens == 0


def test_lru_eviction_takes_uncached_then_least_recently_freed_tail_blocks():
    sched, bm = make(num_blocks=4, block_size=4)
    sched.add(seq("a", 8, max_tokens=1, first=10))  # two full blocks, hashed, then freed
    run_to_end(sched)
    sched.add(seq("b", 12, max_tokens=1, first=50))  # three blocks: two never-cached + a's tail
    run_to_end(sched)
    probe_a = seq("probe-a", 9, first=10)
    assert len(bm.lookup_prefix(probe_a)) == 1  # a's first block survived, its tail was evicted
    probe_b = seq("probe-b", 13, first=50)
    assert len(bm.lookup_prefix(probe_b)) == 3  # b's blocks all still cached


def test_prefix_caching_disabled_never_hits():
    sched, bm = make(caching=False)
    sched.add(seq("a", 10, max_tokens=1))
    run_to_end(sched)
    sched.add(seq("b", 10, max_tokens=1))
    assert sched.schedule().new_requests[0].num_computed_tokens == 0
    assert bm.prefix_hits == 0


def test_abort_frees_blocks_running_and_waiting():
    sched, bm = make(max_num_seqs=1)
    sched.add(seq("run", 10))
    sched.add(seq("wait", 10))
    step(sched)
    assert bm.num_free_blocks < bm.num_blocks
    sched.finish("run", "abort")
    sched.finish("wait", "abort")
    assert bm.num_free_blocks == bm.num_blocks
    assert not sched.has_unfinished()
    assert set(sched.schedule().finished_request_ids) == {"run", "wait"}


def test_stop_conditions_eos_max_tokens_and_min_tokens():
    sched, _ = make()
    sched.add(Sequence("eos", [10, 11], SamplingParams(max_tokens=5), eos_token_ids=(EOS,)))
    sched.add(Sequence("min", [10, 11], SamplingParams(max_tokens=5, min_tokens=2), eos_token_ids=(EOS,)))
    sched.add(Sequence("ign", [10, 11], SamplingParams(max_tokens=3, ignore_eos=True), eos_token_ids=(EOS,)))
    seqs = dict(sched.requests)
    for _ in range(5):
        step(sched, token=EOS)
    assert seqs["eos"].finish_reason == "stop" and seqs["eos"].num_output_tokens == 1
    assert seqs["min"].finish_reason == "stop" and seqs["min"].num_output_tokens == 2
    assert seqs["ign"].finish_reason == "length" and seqs["ign"].num_output_tokens == 3


def test_max_model_len_finishes_with_length():
    sched, _ = make(max_model_len=12)
    sched.add(Sequence("a", list(range(10, 20)), SamplingParams(max_tokens=None), eos_token_ids=(EOS,)))
    s = sched.requests["a"]
    run_to_end(sched)
    assert s.finish_reason == "length" and s.num_tokens == 12


def budget_use(sched, steps):
    """Share of the prefill budget in use over `steps` steps, from the scheduler's counters."""
    tokens, budget = sched.prefill_tokens_total, sched.prefill_budget_total
    for _ in range(steps):
        step(sched)
    return (sched.prefill_tokens_total - tokens) / max(sched.prefill_budget_total - budget, 1)


def test_prefill_budget_use_is_one_while_prompts_fill_every_step_and_zero_on_decodes_alone():
    sched, _ = make(num_blocks=256, budget=32, max_num_seqs=16, caching=False)
    for i in range(8):
        sched.add(seq(f"r{i}", 40, max_tokens=30))
    assert budget_use(sched, 8) == 1.0  # 320 prompt tokens queued: prefill fills what decodes leave
    while any(s.num_computed_tokens < s.num_prompt_tokens for s in sched.requests.values()):
        step(sched)
    before = sched.prefill_budget_total
    assert budget_use(sched, 5) == 0.0  # every prompt done: the budget left after decodes is unused
    assert sched.prefill_budget_total - before == 5 * (32 - 8)  # each step: budget minus its 8 decodes


def test_prefill_budget_use_rises_with_the_prompt_load():
    def use(prompts_per_step):
        sched, _ = make(num_blocks=1024, budget=64, max_num_seqs=64, caching=False)
        total = budget = 0
        for k in range(40):
            for j in range(prompts_per_step):
                sched.add(seq(f"{k}-{j}", 12, max_tokens=6))
            t0, b0 = sched.prefill_tokens_total, sched.prefill_budget_total
            step(sched)
            total += sched.prefill_tokens_total - t0
            budget += sched.prefill_budget_total - b0
        return total / budget

    light, medium, heavy = use(1), use(2), use(8)
    assert 0.1 < light < medium < 0.6  # 12 and 24 prompt tokens a step of the ~58 decodes leave
    assert heavy > 0.97  # 96 prompt tokens arrive a step: prefill takes all the budget it can
