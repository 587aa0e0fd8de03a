"""A loopback reverse proxy in front of `shoal serve` that adds the few Keystone v3 admin
calls manila-tempest-plugin makes and shoal's built-in identity does not serve.

    python identity_shim.py LISTEN_PORT SHOAL_URL SHOAL_BIN SHOAL_CONFIG

Why: every BaseSharesMixedTest class (nearly all of Manila's API tests) creates a member
user in the admin's project at class set-up, through Keystone's admin API, even with
pre-provisioned credentials (manila_tempest_tests/tests/api/base.py,
create_user_and_get_client), and deletes it at class clean-up. shoal's built-in identity
has no /v3/users, /v3/roles or /v3/domains API (its users are managed with the
`shoal identity` CLI), so this shim answers exactly those calls by running that CLI on the
node's database, and forwards everything else unchanged. Run with TEMPEST_IDENTITY_SHIM=0
to see the tests without it. It is part of the harness, not of shoal.

Served here (each needs an admin token, checked with shoal's own token validation):
  GET    /identity/v3/domains[?name=Default]             the Default domain
  GET    /identity/v3/roles[?name=...]                    admin, member, reader (id = name)
  POST   /identity/v3/users                               shoal identity user add
  PUT    /identity/v3/projects/P/users/U/roles/R          shoal identity role add
  DELETE /identity/v3/users/U                             shoal identity user delete
"""

import http.client
import http.server
import json
import re
import subprocess
import sys
import threading
import urllib.parse

LISTEN_PORT, SHOAL_URL, SHOAL_BIN, SHOAL_CONFIG = (
    int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
UPSTREAM = urllib.parse.urlsplit(SHOAL_URL)
DOMAIN = {"id": "default", "name": "Default", "enabled": True, "description": ""}
ROLES = ["admin", "member", "reader"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}

# user id -> name of the users made here (the CLI addresses users by name).
USERS = {}
LOCK = threading.Lock()


def shoal_cli(*args, stdin=None):
    done = subprocess.run([SHOAL_BIN, "identity", *args, "--config", SHOAL_CONFIG],
                          input=stdin, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError("shoal identity %s: %s" % (" ".join(args), done.stderr.strip()))
    return done.stdout


def project_name(project_id):
    for line in shoal_cli("project", "list").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1] == project_id:
            return fields[0]
    return None


def shim_handles(method, path):
    return ((method == "GET" and path in ("/identity/v3/domains", "/identity/v3/roles"))
            or (method == "POST" and path == "/identity/v3/users")
            or (method == "PUT" and re.fullmatch(
                r"/identity/v3/projects/[^/]+/users/[^/]+/roles/[^/]+", path) is not None)
            or (method == "DELETE" and re.fullmatch(r"/identity/v3/users/[^/]+", path)
                is not None))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # stderr of the shim goes to its log file
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, doc=None):
        data = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        if doc is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def upstream(self, method, path, headers, body):
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def is_admin(self):
        token = self.headers.get("X-Auth-Token")
        if not token:
            return False
        status, _, data = self.upstream(
            "GET", "/identity/v3/auth/tokens",
            {"X-Auth-Token": token, "X-Subject-Token": token}, b"")
        if status != 200:
            return False
        roles = json.loads(data).get("token", {}).get("roles", [])
        return any(r.get("name") == "admin" for r in roles)

    def shim(self, method, path, query, body):
        """Answers a call this shim serves, or returns False to forward it."""
        if method == "GET" and path == "/identity/v3/domains":
            names = query.get("name")
            found = [DOMAIN] if not names or DOMAIN["name"] in names else []
            return 200, {"domains": found}
        if method == "GET" and path == "/identity/v3/roles":
            names = query.get("name")
            roles = [{"id": r, "name": r, "domain_id": None} for r in ROLES
                     if not names or r in names]
            return 200, {"roles": roles}
        if method == "POST" and path == "/identity/v3/users":
            user = json.loads(body or b"{}").get("user", {})
            name, password = user.get("name"), user.get("password")
            if not name or not password:
                return 400, {"error": {"code": 400, "message": "name and password needed",
                                       "title": "Bad Request"}}
            args = ["user", "add", name, "--password-stdin"]
            if user.get("default_project_id"):
                pname = project_name(user["default_project_id"])
                if pname is None:
                    return 404, {"error": {"code": 404, "title": "Not Found",
                                           "message": "Could not find project."}}
                args += ["--project", pname]
            out = shoal_cli(*args, stdin=password + "\n")
            m = re.search(r"created user (\S+) \((\S+)\)", out)
            if not m:
                raise RuntimeError("unexpected output of user add: %r" % out)
            with LOCK:
                USERS[m.group(2)] = name
            return 201, {"user": {"id": m.group(2), "name": name, "domain_id": "default",
                                  "enabled": True,
                                  "default_project_id": user.get("default_project_id")}}
        m = re.fullmatch(r"/identity/v3/projects/([^/]+)/users/([^/]+)/roles/([^/]+)", path)
        if method == "PUT" and m:
            pname = project_name(m.group(1))
            with LOCK:
                uname = USERS.get(m.group(2))
            if pname is None or uname is None or m.group(3) not in ROLES:
                return 404, {"error": {"code": 404, "title": "Not Found",
                                       "message": "Could not find project, user or role."}}
            shoal_cli("role", "add", m.group(3), "--user", uname, "--project", pname)
            return 204, None
        m = re.fullmatch(r"/identity/v3/users/([^/]+)", path)
        if method == "DELETE" and m:
            with LOCK:
                uname = USERS.pop(m.group(1), None)
            if uname is None:
                return 404, {"error": {"code": 404, "title": "Not Found",
                                       "message": "Could not find user."}}
            shoal_cli("user", "delete", uname)
            return 204, None
        return False

    def handle_any(self):
        method = self.command
        split = urllib.parse.urlsplit(self.path)
        body = self.body()
        try:
            served = False
            if shim_handles(method, split.path):
                if not self.is_admin():
                    self.reply(403, {"error": {"code": 403, "title": "Forbidden",
                                               "message": "admin only (identity shim)"}})
                    return
                served = self.shim(method, split.path,
                                   urllib.parse.parse_qs(split.query), body)
            if served is not False:
                self.reply(*served)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            status, resp_headers, data = self.upstream(method, self.path, headers, body)
        except Exception as exc:  # the shim's own failure: a 502 that names it
            self.reply(502, {"error": {"code": 502, "title": "Bad Gateway",
                                       "message": "identity shim: %s" % exc}})
            return
        self.send_response(status)
        length = str(len(data))
        for key, value in resp_headers:
            if key.lower() == "content-length" and method == "HEAD":
                length = value
            elif key.lower() not in HOP_BY_HOP | {"content-length", "date", "server"}:
                self.send_header(key, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", LISTEN_PORT), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
