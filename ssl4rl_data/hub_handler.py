"""The local Hub server's request handler: the endpoints huggingface_hub and datasets call (see hub_server.py)."""

import base64
import hashlib
import json
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlparse

from ssl4rl_data.hub_state import LFS_MIN_SIZE, HubState, Repo, git_blob_id


class Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.0"  # one connection per request: stop() really cuts clients off

    def log_message(self, *args):
        pass

    # --- plumbing -------------------------------------------------------------------------
    def reply(self, status=200, body=b"", headers=None, content_type="application/json"):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message):
        self.reply(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def base(self) -> str:
        return f"http://{self.headers['Host']}"

    def repo(self, repo_id) -> Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            self.error(404, "RepoNotFound", f"Repository not found: {repo_id}")
        return repo

    def commit_of(self, repo: Repo, revision: str) -> str | None:
        oid = repo.resolve(revision)
        if oid is None:
            self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return oid

    # --- routes ---------------------------------------------------------------------------
    ROUTES = [
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/refs", "refs"),
        ("GET", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
        ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)", "paths_info"),
        ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)", "commit"),
        ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/tag/(?P<rev>[^/]+)", "tag"),
        ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/branch/(?P<name>[^/]+)", "branch"),
        ("GET", r"/api/datasets/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?", "info"),
        ("POST", r"/datasets/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch", "lfs_batch"),
        ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", "lfs_upload"),
        ("GET", r"/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]

    def route(self):
        url = urlparse(self.path)
        self.query = parse_qs(url.query)
        method = "GET" if self.command == "HEAD" else self.command
        for verb, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, url.path)
            if verb == method and match:
                # Reads, and the LFS PUT (a pre-signed URL, sent without a token), need no authorisation.
                writes = method == "POST" and name not in ("validate_yaml", "paths_info")
                if writes and (self.state.refuse_writes or not self.headers.get("Authorization")):
                    return self.error(403, "Forbidden", "You don't have the rights to write to this repo")
                with self.state.lock:
                    return getattr(self, name)(**{k: v for k, v in match.groupdict().items()})
        self.error(404, "EntryNotFound", f"no route for {self.command} {url.path}")

    do_GET = do_HEAD = do_POST = do_PUT = route

    def whoami(self):
        self.reply(200, {"type": "user", "name": "tester", "orgs": [], "auth": {"accessToken": {"role": "write"}}})

    def validate_yaml(self):
        self.body()
        self.reply(200, {"errors": [], "warnings": []})

    def create_repo(self):
        request = json.loads(self.body())
        repo_id = f"{request.get('organization') or 'tester'}/{request['name']}"
        url = f"{self.base()}/datasets/{repo_id}"
        if repo_id in self.state.repos:
            return self.reply(409, {"error": "You already created this dataset repo", "url": url})
        private = request.get("visibility") == "private" or bool(request.get("private"))  # newer clients: visibility
        self.state.repos[repo_id] = Repo(repo_id, private)
        self.reply(200, {"url": url, "name": repo_id})

    def info(self, repo, rev=None):
        if (r := self.repo(repo)) and (oid := self.commit_of(r, rev or "main")):
            files = r.commits[oid]
            self.reply(
                200,
                {
                    "id": repo,
                    "_id": repo,
                    "author": repo.split("/")[0],
                    "sha": oid,
                    "private": r.private,
                    "disabled": False,
                    "gated": False,
                    "downloads": 0,
                    "likes": 0,
                    "tags": [],
                    "lastModified": "2026-01-01T00:00:00.000Z",
                    "createdAt": "2026-01-01T00:00:00.000Z",
                    "siblings": [{"rfilename": p} for p in sorted(files)],
                },
            )

    def refs(self, repo):
        if r := self.repo(repo):

            def ref(kind, name, oid):
                return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

            self.reply(
                200,
                {
                    "branches": [ref("heads", n, o) for n, o in r.branches.items()],
                    "tags": [ref("tags", n, o) for n, o in r.tags.items()],
                    "converts": [],
                    "pullRequests": [],
                },
            )

    def tree(self, repo, rev, path=None):
        if not ((r := self.repo(repo)) and (oid := self.commit_of(r, rev))):
            return
        files, prefix = r.commits[oid], (unquote(path).strip("/") + "/") if path else ""
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        if prefix and not any(p.startswith(prefix) for p in files):
            return self.error(404, "EntryNotFound", f"{path} does not exist")
        entries, folders = [], set()
        for file_path, data in sorted(files.items()):
            if not file_path.startswith(prefix):
                continue
            rest = file_path[len(prefix) :].split("/")
            for depth in range(1, len(rest)):
                folder = prefix + "/".join(rest[:depth])
                if (recursive or depth == 1) and folder not in folders:
                    folders.add(folder)
                    entries.append(
                        {"type": "directory", "path": folder, "oid": git_blob_id(folder.encode()), "size": 0}
                    )
            if recursive or len(rest) == 1:
                entries.append(r.entry(file_path, data))
        self.reply(200, entries)

    def paths_info(self, repo, rev):
        raw = self.body()
        try:
            paths = json.loads(raw)["paths"]
        except ValueError:
            paths = parse_qs(raw.decode())["paths"]
        if (r := self.repo(repo)) and (oid := self.commit_of(r, rev)):
            files = r.commits[oid]
            entries = [r.entry(p, files[p]) for p in paths if p in files]
            entries += [
                {"type": "directory", "path": p.rstrip("/"), "oid": git_blob_id(p.encode()), "size": 0}
                for p in paths
                if p not in files and any(f.startswith(p.rstrip("/") + "/") for f in files)
            ]
            self.reply(200, entries)

    def preupload(self, repo, rev):
        request = json.loads(self.body())
        if (r := self.repo(repo)) and (oid := self.commit_of(r, rev)):
            files = r.commits[oid]
            self.reply(
                200,
                {
                    "files": [
                        {
                            "path": f["path"],
                            "shouldIgnore": False,
                            "uploadMode": "lfs"
                            if f["path"].endswith(".parquet") or f["size"] >= LFS_MIN_SIZE
                            else "regular",
                            "oid": r.oid(f["path"], files[f["path"]]) if f["path"] in files else None,
                        }
                        for f in request["files"]
                    ]
                },
            )

    def lfs_batch(self, repo):
        request = json.loads(self.body())
        objects = []
        for item in request["objects"]:
            entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in self.state.lfs:
                entry["actions"] = {"upload": {"href": f"{self.base()}/lfs-upload/{item['oid']}", "header": {}}}
            objects.append(entry)
        self.reply(200, {"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def lfs_upload(self, oid):
        data = self.body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self.error(400, "BadRequest", "sha256 mismatch")
        self.state.lfs[oid] = data
        self.reply(200, {})

    def commit(self, repo, rev):
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        if not ((r := self.repo(repo)) and (parent := self.commit_of(r, rev))):
            return
        if not self.state.accepts_ref_update():
            return self.error(503, "ServiceUnavailable", "commit refused once: the server's --fail-after switch")
        files = dict(r.commits[parent])
        for line in lines:
            value = line["value"]
            if line["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
                r.lfs_paths.discard(value["path"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.state.lfs:
                    return self.error(422, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = self.state.lfs[value["oid"]]
                r.lfs_paths.add(value["path"])
            elif line["key"] == "deletedFile":
                files.pop(value["path"], None)
            elif line["key"] == "deletedFolder":
                files = {p: d for p, d in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
        summary = next((line["value"].get("summary", "") for line in lines if line["key"] == "header"), "")
        oid = r.commit(files, parent, summary)
        self.reply(
            200,
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.base()}/datasets/{repo}/commit/{oid}",
                "pullRequestUrl": None,
            },
        )

    def tag(self, repo, rev):
        request = json.loads(self.body())
        if (r := self.repo(repo)) and (oid := self.commit_of(r, rev)):
            if request["tag"] in r.tags:
                return self.error(409, "Conflict", f"Tag {request['tag']} already exists")
            if not self.state.accepts_ref_update():
                return self.error(503, "ServiceUnavailable", "tag refused once: the server's --fail-after switch")
            r.tags[request["tag"]] = oid
            self.reply(200, {})

    def branch(self, repo, name):
        raw = self.body()
        request = json.loads(raw) if raw else {}
        if (r := self.repo(repo)) and (oid := self.commit_of(r, request.get("startingPoint") or "main")):
            if name in r.branches:
                return self.error(409, "Conflict", f"Branch {name} already exists")
            r.branches[name] = oid
            self.reply(200, {})

    def resolve(self, repo, rev, path):
        if not ((r := self.repo(repo)) and (oid := self.commit_of(r, rev))):
            return
        path = unquote(path)
        data = r.commits[oid].get(path)
        if data is None:
            return self.error(404, "EntryNotFound", f"{path} does not exist at {rev}")
        headers = {"ETag": f'"{git_blob_id(data)}"', "X-Repo-Commit": oid}
        if path in r.lfs_paths:
            headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))})
        self.reply(200, data, headers, content_type="application/octet-stream")
