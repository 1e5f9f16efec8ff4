"""Strategies (kernel_src/core/strategy.h, kernel_src/strategies/, hftlab.model.strategy).

* a bad strategy is refused at build, naming file:line or the symbol: a
  compile error, a libc include, an undefined symbol, a writable global, a
  state over STRAT_STATE_MAX, a missing hook (one object each, ~1 s);
* the golden model runs each bundled strategy from its C file (compiled into
  a cache on first use, imported from it afterwards): the trigger's orders
  are hftlab._core's bit for bit, the quoter sends Enter, Replace and
  Cancel, and compare() puts two strategies side by side;
* HFT-OS under tcg-icount trades RITCH with the quoter (Enter, Replace and
  Cancel over the wire), orders equal to the golden model's. The trigger's
  boots are tests/test_os.py's; the imbalance strategy's is notebook 07's
  (tests/test_notebooks.py checks its orders bit for bit against the golden
  model and its run's strategy file). The boots here use virtio-net: what
  they check is the strategy, and QEMU's e1000 holds every frame back for a
  second of virtual time after the RCTL write (HFT-OS waits it out before
  READY, ~3-4 s of wall time per boot under tcg-icount); e1000 is
  tests/test_os.py's;
* the host baselines (network namespace, no VM), linux-socket, linux-packet
  and linux-dpdk, trade RITCH with the quoter, golden-equal;
* a strategy that faults inside HFT-OS (tests/strategies/faulting.c: a
  fixed path, so its build directory is reused from run to run) fails the
  run with the exception named and its function symbolised from the image
  (hftos.syms);
* the README's example strategy builds and trades.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hftlab.errors import BuildError
from hftlab.model import core
from hftlab.model import strategy as S
from repo_paths import DATASETS, ROOT

RITCH = DATASETS / "ritch" / "ex20101224.TEST_ITCH_50"
#: A strategy that faults only when freestanding (HFT-OS), never in the golden model.
FAULTING = Path(__file__).resolve().parent / "strategies" / "faulting.c"
#: The NIC of this module's HFT-OS boots (see the top).
BOOT_NIC = "virtio"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="netns, veth and tap need root")

HOOKS = """
void strategy_init(void *s, const struct strategy_config *c) { (void)s; (void)c; }
bool strategy_on_book(void *s, const struct strat_view *v, const struct itch_msg *m,
                      uint16_t l, uint16_t sl, struct order_intent *o)
{ (void)s; (void)v; (void)m; (void)l; (void)sl; (void)o; BODY; return false; }
"""


def _quoter_config() -> core.EngineConfig:
    """The quoter one tick behind the touch, requoting on a 1-cent move, on
    spreads up to 20 cents: on RITCH it posts, replaces and cancels."""
    return core.EngineConfig(strategy=core.StrategyConfig(
        file="quoter", imbalance_num=1, imbalance_den=100, max_spread=2000))


def _imbalance_config() -> core.EngineConfig:
    return core.EngineConfig(strategy=core.StrategyConfig(
        file="imbalance", imbalance_num=150, imbalance_den=3, min_top_shares=10, max_spread=10_000))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """A private strategy cache for this module (the first load compiles)."""
    d = tmp_path_factory.mktemp("strategy-cache")
    old = os.environ.get("HFTLAB_CACHE")
    os.environ["HFTLAB_CACHE"] = str(d)
    yield d
    if old is None:
        os.environ.pop("HFTLAB_CACHE", None)
    else:
        os.environ["HFTLAB_CACHE"] = old


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("name,text,expect", [
    ("syntax.c", '#include "strategy.h"\nSTRATEGY_STATE(int);\n' + HOOKS.replace("BODY", "int x = ;"),
     [r"syntax.c:\d+:\d+: error"]),
    ("libc.c", '#include <stdio.h>\n#include "strategy.h"\nSTRATEGY_STATE(int);\n'
     + HOOKS.replace("BODY", 'printf("x")'), ["libc.c:1:10", "stdio.h", "no libc header"]),
    ("undef.c", '#include "strategy.h"\nint helper(void);\nSTRATEGY_STATE(int);\n'
     + HOOKS.replace("BODY", "helper()"), ["undef.c:2: error", "undefined symbol 'helper'"]),
    ("global.c", '#include "strategy.h"\nstatic int calls;\nSTRATEGY_STATE(int);\n'
     + HOOKS.replace("BODY", "calls++"), ["global.c:2: error", "writable global 'calls'"]),
    ("big.c", '#include "strategy.h"\nstruct big { char b[STRAT_STATE_MAX + 1]; };\n'
     'STRATEGY_STATE(struct big);\n' + HOOKS.replace("BODY", "(void)0"),
     [r"big.c:3:\d+", "larger than STRAT_STATE_MAX"]),
    ("nohook.c", '#include "strategy.h"\nSTRATEGY_STATE(int);\n'
     'void strategy_init(void *s, const struct strategy_config *c) { (void)s; (void)c; }\n',
     ["does not define 'strategy_on_book'"]),
], ids=["compile-error", "libc-include", "undefined-symbol", "writable-global", "state-too-big",
        "missing-hook"])
def test_a_bad_strategy_is_refused_naming_what_and_where(tmp_path, name, text, expect):
    import re

    src = _write(tmp_path, name, text)
    with pytest.raises(BuildError) as ei:
        S.check_strategy(src)
    msg = str(ei.value)
    for e in expect:
        assert re.search(e, msg), f"{e!r} not in:\n{msg}"


def test_a_good_strategy_passes_the_same_check(tmp_path):
    src = _write(tmp_path, "ok.c", '#include "strategy.h"\nSTRATEGY_STATE(int);\n'
                 + HOOKS.replace("BODY", "(void)0"))
    assert S.check_strategy(src) == src.resolve()


def test_trigger_is_the_built_in_golden_model_and_others_load_from_the_cache(cache):
    """The bundled trigger is hftlab._core (built from kernel_src/strategies/
    trigger.c, as HFT-OS): its orders are the golden model's, and its run
    carries the book at each order. Another strategy compiles once; the next
    load imports the cached module without compiling."""
    base = core.golden(RITCH)
    assert core.Engine(strategy=str(S.STRATEGIES / "trigger.c")).strategy is None
    run = S.run_strategy(RITCH, "trigger")
    assert base.orders.num_rows == 30 and run.ouch == base.ouch
    assert [c for c in run.orders.column_names if c not in core.ORDER_COLUMNS] == \
        ["bid", "bid_shares", "ask", "ask_shares"]
    S.load_strategy("imbalance")
    digest = S.source_hash(S.BUNDLED["imbalance"])
    assert list((S.cache_dir() / digest[:16]).glob("*.so"))
    from hftlab.model import strategy_cache

    strategy_cache._loaded.clear()  # as a new process would: from the cache, not from memory
    said: list[str] = []
    mod = S.load_strategy("imbalance", progress=said.append)
    assert said == [] and int(mod.lib.strategy_state_size) > 0  # no "compiling" line: no compile


@pytest.mark.parametrize("name, state", [("trigger", "trigger_state"), ("quoter", "quoter_state")])
def test_strategies_woken_by_their_best_levels_send_what_every_change_would(cache, tmp_path, name, state):
    """The bundled trigger and quoter declare STRAT_WAKE_TOP: the engine
    skips them when a message leaves both best levels alone (unless the
    symbol's last call asked for an order: the quoter reads what became of
    it). The same file declaring the default (called after every book
    change) must send the same orders, bit for bit, on RITCH (a deep book)
    and on a synthetic feed, having been called more often."""
    from hftlab.model import synth

    text = (S.STRATEGIES / f"{name}.c").read_text()
    wake = f"STRATEGY_STATE_WAKE(struct {state}, STRAT_WAKE_TOP);"
    assert text.count(wake) == 1
    every = _write(tmp_path, f"{name}_every_change.c", text.replace(wake, f"STRATEGY_STATE(struct {state});"))
    cfg = _quoter_config() if name == "quoter" else None
    feed = tmp_path / "synth.itch"
    synth.generate(feed, 100_000, seed=3)
    for ds in (RITCH, feed):
        top, all_ = S.run_strategy(ds, name, cfg), S.run_strategy(ds, every, cfg)
        assert top.orders.num_rows > 0 and top.ouch == all_.ouch, ds
        ev_top, ev_all = (r.counters["strategy"]["evaluations"] for r in (top, all_))
        assert ev_top < ev_all, (ds, ev_top, ev_all)


def test_quoter_posts_replaces_and_cancels_and_risk_keeps_its_books(cache):
    run = S.run_strategy(RITCH, "quoter", _quoter_config())
    types = run.orders.column("type").to_pylist()
    assert {"O", "U", "X"} <= set(types), types
    t = run.orders.to_pylist()
    live = {}
    for r in t:  # every replace and cancel acts on an order the quoter has live
        if r["type"] == "O":
            assert r["tif"] == 99998 and r["side"] in "BS"
            live[r["trigger_seq"]] = r
        else:
            assert r["orig_seq"] in live, r
            del live[r["orig_seq"]]
            if r["type"] == "U":
                live[r["trigger_seq"]] = r
    assert len(live) <= 2 * run.counters["strategy"]["symbols"]
    assert run.counters["risk"]["rejected_unknown_order"] == 0
    # the kill switch lets nothing but cancels through: here, nothing at all
    killed = core.EngineConfig(strategy=_quoter_config().strategy, risk=core.RiskConfig(kill=True))
    k = S.run_strategy(RITCH, "quoter", killed)
    assert k.orders.num_rows == 0 and k.counters["risk"]["rejected_kill"] > 0


def test_compare_two_strategies(cache):
    feed = core.read_itch(RITCH)
    a = S.run_strategy(RITCH, "trigger")
    b = S.run_strategy(RITCH, "imbalance", _imbalance_config())
    cmp = S.compare(a, b, feed).to_pylist()
    assert [r["strategy"] for r in cmp] == ["trigger", "imbalance"]
    assert cmp[0]["orders"] == 30 and cmp[1]["orders"] == b.orders.num_rows > 0
    assert 0.0 <= cmp[0]["fill_proxy_rate"] <= 1.0
    assert cmp[0]["common_orders"] == cmp[1]["common_orders"]


def _boot(tmp_path, cfg):
    from hftlab.experiment.run import RunSpec, run

    return run(RunSpec(accel="tcg-icount", nic=BOOT_NIC, config=cfg, max_count=1,
                       out=tmp_path / "run"))


@needs_root
def test_hftos_trades_the_quoter_golden_equal(cache, tmp_path):
    cfg = _quoter_config()
    res = _boot(tmp_path, cfg)
    golden = core.golden(RITCH, cfg)
    assert res.status == "ok" and res.info["orders"]["equal"]
    assert res.info["orders"]["sut"] == golden.orders.num_rows > 0
    assert res.info["spec"]["config"]["strategy"]["file"] == cfg.strategy.file
    assert res.info["spec"]["strategy"]["file"].endswith(f"strategies/{cfg.strategy.file}.c")
    # replaces and cancels went over the wire too
    assert {"U", "X"} <= set(golden.orders.column("type").to_pylist())


@needs_root
@pytest.mark.parametrize("sut", ["linux-socket", "linux-packet", "linux-dpdk"])
def test_host_baselines_trade_the_quoter_golden_equal(cache, tmp_path, sut):
    from hftlab.experiment.run import RunSpec, run

    cfg = _quoter_config()
    res = run(RunSpec(sut=sut, where="host", config=cfg, out=tmp_path / "run"))
    assert res.status == "ok" and res.info["orders"]["equal"]
    assert res.info["orders"]["sut"] == core.golden(RITCH, cfg).orders.num_rows > 0
    assert "strategy-quoter" in res.info["baseline"]["binary"]


def test_readme_example_strategy_builds_and_trades(cache, tmp_path):
    """The README's complete small strategy passes the build's checks and,
    in the golden model, lifts the ask once per symbol at most."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```c\n(.*?)```", text, flags=re.S)
    example = [b for b in blocks if "STRATEGY_STATE" in b]
    assert len(example) == 1, "README: one complete strategy example in a ```c block"
    src = _write(tmp_path, "lift.c", example[0])
    S.check_strategy(src)
    run = S.run_strategy(RITCH, src)
    o = run.orders
    assert o.num_rows > 0 and set(o.column("side").to_pylist()) == {"B"}
    assert o.num_rows <= run.counters["strategy"]["symbols"]
    assert (o.column("price").to_numpy() == o.column("ask").to_numpy()).all()


@needs_root
def test_a_strategy_that_faults_in_hftos_is_named_in_the_error(cache, tmp_path):
    """The exception dump's rip is symbolised from the image's hftos.syms:
    the run's error names the strategy's function."""
    from hftlab.errors import RunError

    cfg = core.EngineConfig(strategy=core.StrategyConfig(file=str(FAULTING)))
    with pytest.raises(RunError) as ei:
        _boot(tmp_path, cfg)
    msg = str(ei.value)
    assert "CPU exception 14 (#PF page fault)" in msg and "in strategy_on_book+0x" in msg, msg[:400]
