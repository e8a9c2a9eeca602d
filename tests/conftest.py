"""Shared fixtures: a private SPANLAB_HOME per test, and tiny BERT models saved to disk so that tests load them
through the same ``from_pretrained`` path users hit (no network needed)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Words the tiny models know; anything else becomes [UNK].
WORDS = """the a an is was it this that and or of to in on for with my your our i you we they he she
good great excellent love loved amazing happy wonderful best fantastic perfect nice
bad terrible awful hate hated horrible poor worst broken sad boring refund slow
movie film food service product phone delivery day very really not so
paris france london england berlin germany rome italy madrid spain capital city
what where who when which how capital of is the river country
alice bob carol founded company in year 1999 2005 2010 acme globex initech
café zürich naïve 東京 日本 emoji 🙂 . , ? ! ' -""".split()


def write_vocab(folder: Path) -> Path:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = sorted({w.lower() for w in WORDS})
    subwords = sorted({f"##{c}" for w in pieces for c in w} | set(c for w in pieces for c in w))
    vocab = specials + pieces + [s for s in subwords if s not in pieces]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


def make_tiny_model(folder: Path, with_tokenizer: bool = True) -> Path:
    """A 2-layer, 64-wide BERT with random weights, saved like a hub model (config.json + model.safetensors)."""
    import torch

    from core import models
    models.wait_for_warm_up()  # an app page's warm-up thread may be importing transformers right now
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = write_vocab(folder)
    size = len(vocab.read_text(encoding="utf-8").splitlines())
    config = BertConfig(vocab_size=size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=512, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    if with_tokenizer:
        BertTokenizerFast(vocab=str(vocab), do_lower_case=True, strip_accents=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models train faster on one thread, and the suite shares 2 cores with the browser test's server."""
    import torch
    # Resolve transformers' lazy names once, here: the app's background warm-up thread (pages.common.get_runner)
    # importing them at the same moment as a fixture made "cannot import name 'BertConfig'" fail the first use.
    from transformers import BertConfig, BertModel, BertTokenizerFast  # noqa: F401
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def spanlab_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SPANLAB_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return home


def train_and_get(cfg, **kwargs) -> dict:
    """Record a run for ``cfg`` (a core.training.TrainConfig) as the app does, train it in this thread, return it."""
    from core import storage
    from core.training import execute_run
    info = storage.get_dataset(cfg.dataset)
    run_id = storage.create_run(cfg.dataset, info["task"], cfg.model, cfg.to_params(), eval_dataset=cfg.eval_dataset)
    execute_run(run_id, **kwargs)
    return storage.get_run(run_id)


def sentiment_rows(n_per_class: int = 8) -> list[dict]:
    """Separable toy sentiment data the tiny model can overfit."""
    pos = ["good movie", "great film", "excellent food", "love this product", "amazing service", "happy day",
           "wonderful phone", "best delivery", "fantastic film", "perfect food", "nice movie", "loved the service"]
    neg = ["bad movie", "terrible film", "awful food", "hate this product", "horrible service", "sad day",
           "broken phone", "worst delivery", "boring film", "poor food", "slow movie", "hated the service"]
    rows = [{"text": t, "label": "positive"} for t in pos[:n_per_class]]
    rows += [{"text": t, "label": "negative"} for t in neg[:n_per_class]]
    return rows


QA_CONTEXTS = [
    "acme was founded in 1999 by alice .",
    "globex was founded in 2005 by bob .",
    "in 2010 carol founded initech in paris .",
    "bob founded acme in london in 2005 .",
]


def qa_rows() -> list[dict]:
    """Extractive QA rows with exact answer offsets: answering needs the question word (who/when), not position."""
    items = [
        (0, "who founded acme ?", "alice"), (0, "when was acme founded ?", "1999"),
        (1, "who founded globex ?", "bob"), (1, "when was globex founded ?", "2005"),
        (2, "who founded initech ?", "carol"), (2, "when was initech founded ?", "2010"),
        (3, "who founded acme ?", "bob"), (3, "when was acme founded ?", "2005"),
    ]
    rows = []
    for ci, question, answer in items:
        context = QA_CONTEXTS[ci]
        start = re.search(rf"\b{re.escape(answer)}\b", context).start()
        rows.append({"context": context, "question": question, "answer_text": answer, "answer_start": start})
    return rows


# --- Databases: the storage, concurrency and migration tests run on SQLite and on a real PostgreSQL server ---------

DATABASES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (tests/postgres.py), or a skip naming why there is none."""
    from tests.postgres import PostgresServer
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path, monkeypatch) -> str:
    """A private SPANLAB_HOME and an empty database for one test: SQLite inside the home, or a fresh database on the
    session's PostgreSQL server (DATABASE_URL). Skipped, with the reason, where PostgreSQL cannot be started."""
    from core import storage
    home = tmp_path / "home"
    monkeypatch.setenv("SPANLAB_HOME", str(home))
    if request.param == "sqlite":
        monkeypatch.delenv("DATABASE_URL", raising=False)
        url = f"sqlite:///{home / 'spanlab.db'}"
        yield url
        storage.dispose_engines()
        return
    server = request.getfixturevalue("postgres_server")
    if server.unavailable:
        pytest.skip(f"PostgreSQL not available: {server.unavailable}")
    url = server.new_database()
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    storage.dispose_engines()
    server.drop_database(url)
