"""Routing policies, prefix keys, request classes and the response cache (pure)."""
import json
from collections import Counter

import pytest

from halyard_router.cache import ResponseCache, cache_key, cacheable
from halyard_router.policy import BackendLoad, by_prefix, choose, ring_order
from halyard_router.prefix import CHARS_PER_TOKEN, PrefixTable, block_chain, prefix_key
from halyard_router.tiers import TierError, request_class

NAMES = ("pod-a", "pod-b", "pod-c")
SYSTEM = "You are the support assistant of team {0}. " * 40  # ~1,600 characters: many blocks


def idle():
    return [BackendLoad(n) for n in NAMES]


def chat(group: int, question: str) -> dict:
    return {"messages": [{"role": "system", "content": SYSTEM.format(group)},
                         {"role": "user", "content": question}]}


def test_requests_sharing_a_long_system_prompt_share_a_key_and_a_backend():
    keys = {prefix_key(chat(1, q)) for q in ("hi", "where is my order?", "refund please")}
    assert len(keys) == 1
    assert prefix_key(chat(2, "hi")) not in keys
    homes = {by_prefix(prefix_key(chat(1, q)), idle())[0] for q in ("a", "b", "c")}
    assert len(homes) == 1


def test_prefix_key_covers_only_whole_leading_blocks():
    block = 16 * CHARS_PER_TOKEN
    base = "x" * (3 * block)
    assert prefix_key({"prompt": base + "tail one"}, prefix_blocks=3) == prefix_key({"prompt": base + "other"}, prefix_blocks=3)
    assert prefix_key({"prompt": "short one"}) != prefix_key({"prompt": "short two"})
    tokens = list(range(40))
    assert prefix_key({"prompt": tokens}, prefix_blocks=2) == prefix_key({"prompt": tokens[:32] + [7]}, prefix_blocks=2)
    assert prefix_key({"prompt": [[1, 2]] * 2}) is None  # a batch of prompts: routed by load


def test_groups_spread_over_backends():
    homes = Counter(by_prefix(prefix_key(chat(g, "hi")), idle())[0] for g in range(60))
    assert set(homes) == set(NAMES)
    assert min(homes.values()) >= 8


def test_a_hot_prefix_spills_to_the_same_next_backend_when_its_home_is_over_the_bound():
    key = prefix_key(chat(7, "hi"))
    home, second, _ = ring_order(key, NAMES)
    loads = [BackendLoad(home, in_flight=6), BackendLoad(second), BackendLoad(_)]
    assert by_prefix(key, loads, load_factor=1.25, load_floor=0)[0] == second
    assert by_prefix(key, loads, load_factor=1.25, load_floor=4)[0] == second  # 7 > max(3, 4)
    assert by_prefix(key, [BackendLoad(home, in_flight=1), BackendLoad(second), BackendLoad(_)])[0] == home


def test_scraped_queue_counts_as_load():
    assert BackendLoad("a", in_flight=1, running=4, waiting=3).load == 7
    assert choose("least-load", [BackendLoad("a", running=5), BackendLoad("b", in_flight=1)], None, 0)[0] == "b"


def test_removing_a_backend_moves_only_its_keys():
    keys = [prefix_key(chat(g, "hi")) for g in range(90)]
    before = {k: ring_order(k, NAMES)[0] for k in keys}
    after = {k: ring_order(k, ("pod-a", "pod-b"))[0] for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == "pod-c" for k in moved)


def test_round_robin_rotates():
    assert [choose("round-robin", idle(), None, i)[0] for i in range(4)] == ["pod-a", "pod-b", "pod-c", "pod-a"]
    with pytest.raises(ValueError, match="prefix, least-load, round-robin"):
        choose("random", idle(), None, 0)


def test_header_may_only_lower_the_class():
    assert request_class("critical", "batch", None).priority == 2
    assert request_class("batch", "critical", None).tier == "batch"
    assert request_class("standard", None, -5).priority == 1  # a body cannot jump the queue
    assert request_class("standard", None, 9).priority == 9
    with pytest.raises(TierError, match="X-Halyard-Tier.*critical, standard, batch"):
        request_class("standard", "urgent", None)


def test_only_deterministic_single_choice_requests_are_cacheable():
    assert cacheable({"temperature": 0, "prompt": "x"})
    assert cacheable({"temperature": 0.8, "seed": 3})
    assert not cacheable({"temperature": 0.8})
    assert not cacheable({"temperature": 0, "n": 2})
    assert cache_key("/v1/completions", {"a": 1, "b": 2}) == cache_key("/v1/completions", {"b": 2, "a": 1})
    assert cache_key("/v1/completions", {"a": 1, "stream": True}) != cache_key("/v1/completions", {"a": 1})


def test_cache_is_bounded_in_entries_bytes_and_time():
    now = [0.0]
    cache = ResponseCache(max_entries=2, max_bytes=10, ttl_s=5, clock=lambda: now[0])
    cache.put("a", "application/json", [b"1234"])
    cache.put("b", "application/json", [b"1234"])
    cache.get("a")
    cache.put("c", "application/json", [b"12"])
    assert cache.get("b") is None and cache.get("a") is not None  # least recently used went first
    cache.put("d", "application/json", [b"123456789"])
    assert cache.bytes <= 10
    cache.put("e", "application/json", [b"1"])
    now[0] = 6.0
    assert cache.get("e") is None
    cache.put("huge", "application/json", [b"x" * 11])
    assert cache.get("huge") is None


def test_prompts_of_any_length_sharing_leading_blocks_follow_the_table():
    shared = "Answer as the billing assistant of tenant 42, politely. " * 6  # ~5 blocks of 64 characters
    chains = [block_chain({"prompt": shared + tail}) for tail in ("hi", "where is my invoice from March?" * 3)]
    assert chains[0][:5] == chains[1][:5] and chains[0][0] == chains[1][0]
    table = PrefixTable(capacity=100)
    table.record(chains[0], "pod-b")
    assert table.longest(chains[1]) == "pod-b"
    assert table.longest(block_chain({"prompt": "something else entirely " * 10})) is None
    key = chains[1][0]
    assert by_prefix(key, idle(), preferred="pod-b")[0] == "pod-b"
    busy = [BackendLoad("pod-a"), BackendLoad("pod-b", in_flight=9), BackendLoad("pod-c")]
    assert by_prefix(key, busy, preferred="pod-b")[0] != "pod-b"  # the bound wins over affinity


def test_prefix_table_is_bounded():
    table = PrefixTable(capacity=3)
    table.record([1, 2], "a")
    table.record([3, 4], "b")
    assert len(table.owner) == 3 and table.longest([1]) is None and table.longest([3, 4]) == "b"


def test_the_priority_is_added_to_the_clients_own_bytes():
    from halyard_router.proxy import with_priority

    raw = b'{"prompt": "x",  "max_tokens": 4}\n'
    sent = with_priority(raw, json.loads(raw), 2)
    assert sent.startswith(b'{"prompt": "x",  "max_tokens": 4') and json.loads(sent) == {
        "prompt": "x", "max_tokens": 4, "priority": 2}
    kept = b'{"prompt": "x", "priority": 1}'
    assert with_priority(kept, json.loads(kept), 1) is kept
    lowered = b'{"prompt": "x", "priority": 0}'  # a client asking for more than its class gets the class
    assert json.loads(with_priority(lowered, json.loads(lowered), 1)) == {"prompt": "x", "priority": 1}
    assert json.loads(with_priority(b"{}", {}, 2)) == {"priority": 2}
