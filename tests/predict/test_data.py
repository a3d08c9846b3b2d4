"""Loaders: generic JSONL/CSV, ShareGPT JSON, LMSYS schema; bad records; prompt-id splits."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from ssjf.predict import make_predictor
from ssjf.predict.chat_data import load_lmsys, load_sharegpt_json
from ssjf.predict.data import (
    DataError,
    LengthData,
    load_data,
    load_prompt_dataset,
    load_records_file,
)
from ssjf.predict.split import drop_prompts, prompt_key, split_by_prompt
from ssjf.predict.truncate import flatten_chat, truncate_text


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_generic_jsonl_reports_bad_records_with_line_and_field(tmp_path: Path) -> None:
    f = _jsonl(
        tmp_path / "d.jsonl",
        [
            {"prompt": "hello", "output_tokens": 12, "model": "m"},
            {"prompt": "no length"},
            {"prompt": "", "output_tokens": 3},
            {"prompt": "neg", "output_tokens": -5},
            {"prompt": "huge", "output_tokens": 10**9},
            "{not json",
            {"prompt": 17, "output_tokens": 4},
            {"prompt": "ok too", "output_tokens": "7"},
        ],
    )
    data = load_records_file(f)
    assert data.prompts == ["hello", "ok too"]
    assert data.lengths == [12, 7]
    assert data.models == ["m", None]
    joined = "\n".join(data.issues)
    assert f"{f}:2: field 'output_tokens': missing" in joined
    assert f"{f}:3: field 'prompt': empty text" in joined
    assert f"{f}:4: field 'output_tokens': absurd length" in joined
    assert f"{f}:5: field 'output_tokens': absurd length" in joined
    assert f"{f}:6: field '<line>': invalid JSON" in joined
    assert f"{f}:7: field 'prompt': expected text" in joined
    with pytest.raises(DataError, match=r"d\.jsonl:2: field 'output_tokens': missing"):
        load_records_file(f, strict=True)


def test_non_utf8_bytes_become_replacement_characters(tmp_path: Path) -> None:
    # One decoding rule for every command (ssjf.textio): bad bytes -> U+FFFD, record kept.
    f = tmp_path / "bad.jsonl"
    f.write_bytes(
        b'{"prompt": "fine", "output_tokens": 3}\n{"prompt": "caf\xe9", "output_tokens": 3}\n'
    )
    data = load_records_file(f, strict=True)
    assert data.prompts == ["fine", "caf\ufffd"]
    assert not data.issues


def test_csv_and_gzip(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text('prompt,output_tokens,model\n"a, b",5,x\nc,,y\n"multi\nline",9,\n')
    data = load_records_file(f)
    assert data.prompts == ["a, b", "multi\nline"]
    assert data.lengths == [5, 9]
    assert data.models == ["x", None]
    assert "d.csv:3: field 'output_tokens': missing" in data.issues[0]
    gz = tmp_path / "d.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(json.dumps({"prompt": "p", "output_tokens": 2}) + "\n")
    assert load_data(str(gz)).lengths == [2]
    with pytest.raises(DataError, match="no such file"):
        load_data(str(tmp_path / "missing.jsonl"))


def test_sharegpt_json(tmp_path: Path) -> None:
    conv = [
        {
            "id": "c1",
            "conversations": [
                {"from": "human", "value": "Tell me a story"},
                {"from": "gpt", "value": "Once upon a time, there was a cat."},
                {"from": "human", "value": "Shorter"},
                {"from": "gpt", "value": "Cat."},
            ],
        },
        {"id": "c2", "conversations": "oops"},
        {
            "id": "c3",
            "conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": ""}],
        },
    ]
    f = tmp_path / "sg.json"
    f.write_text(json.dumps(conv))
    data = load_sharegpt_json(f)
    assert data.prompts == ["Tell me a story", "Shorter"]
    # approx-regex: words and punctuation marks
    assert data.lengths == [10, 2]  # Once upon a time , there was a cat .
    assert data.prompt_ids == ["c1/1", "c1/3"]
    assert data.unit == "approx-regex"
    assert any("record 1" in i and "conversation" in i for i in data.issues)
    assert any("record 2 turn 1" in i for i in data.issues)
    full = load_sharegpt_json(f, context="full")
    assert full.prompts[1].startswith("<|user|> Tell me a story\n<|assistant|> Once")
    assert load_data(str(f)).prompts == data.prompts


def test_lmsys_schema_from_local_file(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    rows = [
        {
            "conversation_id": "a1",
            "model": "vicuna-13b",
            "conversation": [
                {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "4"},
            ],
            "language": "English",
        },
        {
            "conversation_id": "a2",
            "model": "",
            "conversation": [{"role": "user", "content": "hi"}],
            "language": "English",
        },
        {
            "conversation_id": "a3",
            "model": "koala-13b",
            "conversation": [
                {"role": "user", "content": "Write a poem"},
                {"role": "assistant", "content": "Roses are red , violets are blue"},
            ],
            "language": "English",
        },
    ]
    f = _jsonl(tmp_path / "lmsys.jsonl", rows)
    data = load_lmsys(str(f))
    assert data.models == ["vicuna-13b", "koala-13b"]
    assert data.lengths == [1, 7]
    assert any("row 1" in i and "'model'" in i for i in data.issues)
    with pytest.raises(DataError, match="row 1: field 'model'"):
        load_lmsys(str(f), strict=True)
    assert load_data(f"lmsys:{f}").models == data.models


def test_truncation_strategies_and_long_prompt() -> None:
    text = "A" * 50 + "B" * 50
    assert truncate_text(text, 10, "head") == "A" * 10
    assert truncate_text(text, 10, "tail") == "B" * 10
    both = truncate_text(text, 25, "head+tail")
    assert len(both) == 25 and both.startswith("A") and both.endswith("B") and " ... " in both
    assert truncate_text("short", 10, "tail") == "short"
    with pytest.raises(ValueError, match="strategy"):
        truncate_text(text, 10, "middle")
    assert flatten_chat([{"role": "human", "content": "hi"}]) == "<|user|> hi"
    pred = make_predictor("tfidf", max_chars=1000).fit(["short q", "long essay " * 50], [5, 500])
    est = pred.predict(["word " * 20_000 + "x" * 100_000])  # ~200k characters
    assert est[0].point >= 1


def test_split_by_prompt_id_never_splits_a_prompt(tmp_path: Path) -> None:
    rows = [
        {"prompt": f"p{i}", "output_tokens": 10 + j, "model": f"m{j}", "prompt_id": str(i)}
        for i in range(40)
        for j in range(3)
    ]
    data = load_records_file(_jsonl(tmp_path / "s.jsonl", rows))
    train, test = split_by_prompt(data, 0.25, seed=1)
    assert len(set(test.prompt_ids)) == 10
    assert not set(train.prompt_ids) & set(test.prompt_ids)
    assert len(train) + len(test) == len(data)
    again = split_by_prompt(data, 0.25, seed=1)[1]
    assert again.prompt_ids == test.prompt_ids


needs_data = pytest.mark.skipif(
    not os.environ.get("SSJF_DATA_DIR")
    or not (Path(os.environ["SSJF_DATA_DIR"]) / "prompts").is_dir(),
    reason="real prompt data not present (set SSJF_DATA_DIR to shared/data)",
)


@needs_data
def test_real_sharegpt_sample_loads() -> None:
    data = load_prompt_dataset("sharegpt")
    assert len(data) > 3000
    assert data.model_names == ["chatgpt"]
    assert all(n >= 1 for n in data.lengths)
    assert data.prompt_ids[0].startswith("sharegpt:")


def test_drop_prompts_matches_text_across_ids_case_and_punctuation() -> None:
    data = LengthData()
    data.append("Write a poem, please!", 10, "m", "flask:1", "flask")
    data.append("write a   poem please", 12, "n", "flask:1", "flask")
    data.append("Write a poem about cats.", 30, "m", "flask:2", "flask")
    kept, dropped = drop_prompts(data, ["WRITE A POEM, PLEASE"])
    assert dropped == 2 and kept.prompts == ["Write a poem about cats."]
    assert prompt_key(" Hi,\n there! ") == "hi there"


@needs_data
def test_predictor_bench_never_trains_on_a_held_out_prompt_text() -> None:
    """FLASK repeats hundreds of AlpacaEval prompts under its own ids: a split by id
    alone put some held-out AlpacaEval prompts in training through FLASK."""
    from ssjf.bench.predictor import bench_data

    bd = bench_data()
    held = {prompt_key(p) for te in bd.tests.values() for p in te.prompts}
    assert held and not held & {prompt_key(p) for p in bd.train.prompts}
    assert any("held-out prompt of another dataset" in s for s in bd.train.issues)


def test_pick_ids_is_a_seeded_prefix_independent_of_record_order() -> None:
    from ssjf.predict.split import held_out_ids, pick_ids

    ids = [f"p{i}" for i in range(30)] * 2
    picked = pick_ids(ids, 7, seed=3)
    assert len(picked) == 7 and picked == pick_ids(list(reversed(ids)), 7, seed=3)
    assert picked < pick_ids(ids, 8, seed=3)  # a longer pick extends the shorter one
    assert held_out_ids(ids, 0.2, seed=3) == pick_ids(ids, 6, seed=3)
    with pytest.raises(ValueError, match="31 of 30"):
        pick_ids(ids, 31, seed=3)
