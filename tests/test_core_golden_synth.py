"""The golden model on synthetic sessions equals the independent Python model."""
from __future__ import annotations

import pytest

from hftlab.model import core
from hftlab.model import synth

from itch_ref import RefEngine, iter_framed, ouch_orders


@pytest.mark.parametrize("seed", [1, 2])
def test_golden_equals_reference_on_synthetic(tmp_path, seed):
    path = tmp_path / "feed.itch"
    synth.generate(path, 20_000, seed=seed)
    for cfg in (core.EngineConfig(),
                core.EngineConfig(strategy=core.StrategyConfig(symbols=("AAPL", "MSFT"), imbalance_num=2),
                                  risk=core.RiskConfig(max_position=400, max_orders_per_sec=50))):
        res = core.golden(path, cfg)
        ref = RefEngine(cfg.to_dict())
        for seq, (_, m) in enumerate(iter_framed(path.read_bytes()), 1):
            ref.on_message(m, seq)
        got = [{k: o[k] for k in ("trigger_seq", "side", "shares", "stock", "price")}
               for o in ouch_orders(res.ouch)]
        assert got == ref.orders and len(got) > 10
        assert res.counters["book"]["unknown_ref"] == 0  # the generator is self-consistent
