"""A small Hugging Face Hub-protocol server for tests (127.0.0.1 only, in memory).

It speaks the endpoints the real `huggingface_hub` and `datasets` clients use to create a dataset
repo, upload files (regular and LFS), commit, tag, list and download, so pushes and `load_dataset`
run end to end with no network. Commits are snapshots; refs are branches and tags.

    python -m ssl4rl_data.hub_server [--port N] [--fail-after N]   # serves until Ctrl-C; prints the client settings

`--fail-after N` (or `state.fail_after = N` in a test) is fault injection: the server accepts N more
commits and tags, refuses the next one with HTTP 503, as a Hub failing in the middle of a push, then
works again. With it, an interrupted push and its resumption can be rehearsed (README, Publishing).

Clients need `HF_ENDPOINT` set to its URL before huggingface_hub or datasets is imported, any
`HF_TOKEN`, and `HF_HUB_DISABLE_XET=1`: the server has no Xet storage, and without that setting the
client asks for a Xet write token, gets 404, and reports that it cannot reach the Hub.
"""

import threading
from http.server import ThreadingHTTPServer

from ssl4rl_data.hub_handler import Handler
from ssl4rl_data.hub_state import HubState


class HubServer:
    """Start with `HubServer().start()`; `url` goes into HF_ENDPOINT. `stop()` makes the endpoint unreachable."""

    def __init__(self, port: int = 0):
        self.state = HubState()
        self.port = port
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "HubServer":
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


CLIENT_SETTINGS = {"HF_TOKEN": "any-value", "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0"}


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="A local Hub-protocol server (in memory, 127.0.0.1).")
    parser.add_argument("--port", type=int, default=0, help="Port (default: a free one).")
    parser.add_argument(
        "--fail-after", type=int, default=None, help="Refuse the commit or tag after N, once (HTTP 503)."
    )
    args = parser.parse_args(argv)
    server = HubServer(args.port).start()
    server.state.fail_after = args.fail_after
    print(f"serving on {server.url}; in the client's shell:", flush=True)
    print(" ".join(f"{k}={v}" for k, v in {"HF_ENDPOINT": server.url, **CLIENT_SETTINGS}.items()), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
