"""A predictor saved by the toolkit drives the gateway's order (loaded with --predictor DIR)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from .helpers import completion, post_json

predict = pytest.importorskip("ssjf.predict", reason="needs the predictor toolkit")


@pytest.fixture(scope="module")
def saved_predictor(tmp_path_factory) -> str:
    pytest.importorskip("sklearn", reason="the tfidf family needs scikit-learn")
    prompts = [f"short question {i}" for i in range(20)]
    prompts += [f"please write a very long essay about topic {i}" for i in range(20)]
    lengths = [10.0] * 20 + [500.0] * 20
    p = predict.make_predictor("tfidf").fit(prompts, lengths)
    out = tmp_path_factory.mktemp("pred") / "tfidf"
    p.save(out)
    return str(out)


def test_saved_predictor_orders_the_queue(engine, start_gateway, saved_predictor):
    fake, up = engine
    gw = start_gateway(
        upstreams=[up.url],
        backend="fifo",
        max_in_flight=1,
        predictor=saved_predictor,
        predictor_timeout_ms=5000,  # a loaded CI machine must not turn this into fallbacks
    )
    url = gw.url + "/v1/completions"
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(post_json, url, completion("short question 0", 1000, fake_gate=True))
        gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
        long = pool.submit(post_json, url, completion("please write a very long essay", 1000))
        gw.wait_for(lambda g: g.dispatcher.queue_len == 1)
        short = pool.submit(post_json, url, completion("short question 7", 1000))
        gw.wait_for(lambda g: g.dispatcher.queue_len == 2)
        fake.gate.set()
        results = [f.result() for f in (first, long, short)]
    assert all(r.status_code == 200 for r in results)
    assert list(fake.order)[1:] == ["short question 7", "please write a very long essay"]
    predicted = [float(r.headers["x-ssjf-predicted-tokens"]) for r in results]
    assert predicted[2] < 50 < 150 < predicted[1]
