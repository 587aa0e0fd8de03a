//! Test support for shoal's integration tests. [`TestApp`] boots a whole node in-process
//! (API, scheduler and share roles) on an ephemeral port with a private database: SQLite in
//! a temp dir, or a fresh PostgreSQL schema when `TEST_DATABASE_URL` is set, so the same
//! tests run on both engines. In keystone mode a [`KeystoneStandin`] serves tokens for fixed
//! personas (admin, project members, a reader); in builtin mode the node's own `/identity`
//! does, for the [`BUILTIN_USERS`].

pub mod nfs;

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;
use shoal::server::Server;
use shoal_core::config::{AuthStrategy, BackendConfig, PoolConfig};
use shoal_core::{Config, Core};
use shoal_keystone::standin::KeystoneStandin;
use shoal_store::Store;
use shoal_store::testing::{TestDb, fresh_store_from_env};

/// Project of the `admin` persona.
pub const PROJECT_ADMIN: &str = "0a0a0a0a0a0a4a0a8a0a0a0a0a0a0a0a";
/// Project A: `alice` (member) and `rita` (reader).
pub const PROJECT_A: &str = "aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa";
/// Project B: `bob` (member) and `rex` (reader).
pub const PROJECT_B: &str = "bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb";
/// Host name of the test node.
pub const TEST_HOST: &str = "testhost";

/// Test personas of keystone mode: (user, project, roles). Keystone's bootstrap roles imply
/// admin ⊃ member ⊃ reader, so tokens carry the implied roles too.
pub const PERSONAS: [(&str, &str, &[&str]); 6] = [
    ("admin", PROJECT_ADMIN, &["admin", "member", "reader"]),
    ("alice", PROJECT_A, &["member", "reader"]),
    ("rita", PROJECT_A, &["reader"]),
    ("bob", PROJECT_B, &["member", "reader"]),
    ("rex", PROJECT_B, &["reader"]),
    ("nobody", PROJECT_B, &[]),
];

/// Users of builtin mode: (user, password, project, roles). `admin` is the first admin
/// (project `admin`, role `admin`); the others come from `[[identity.users]]`.
pub const BUILTIN_USERS: [(&str, &str, &str, &[&str]); 3] = [
    ("admin", "admin-secret", "admin", &["admin"]),
    ("demo", "demo-secret", "demo", &["member"]),
    ("rita", "rita-secret", "demo", &["reader"]),
];

/// A last edit of the configuration before the node starts.
type ConfigTweak = Box<dyn FnOnce(&mut Config) + Send>;

/// How a [`TestApp`] is built.
pub struct TestAppBuilder {
    auth: AuthStrategy,
    backends: Vec<BackendConfig>,
    tweak: Option<ConfigTweak>,
}

impl TestAppBuilder {
    /// Authentication strategy (noauth by default).
    pub fn auth(mut self, auth: AuthStrategy) -> Self {
        self.auth = auth;
        self
    }

    /// Adds a `dummy` back end with one pool `pool1` in `az`, replication domain `domain`.
    pub fn with_dummy_backend(
        mut self,
        name: &str,
        az: &str,
        replication_type: Option<&str>,
    ) -> Self {
        self.backends.push(BackendConfig {
            name: name.to_owned(),
            driver: "dummy".to_owned(),
            availability_zone: az.to_owned(),
            replication_domain: Some("shoal".to_owned()),
            replication_type: replication_type.map(str::to_owned),
            pools: vec![PoolConfig {
                name: "pool1".to_owned(),
                path: None,
                total_capacity_gb: Some(1000),
                reserved_percentage: 0,
            }],
            dummy: None,
            local: None,
        });
        self
    }

    /// Adds a `local` back end with one pool `pool1` under the app's data dir.
    pub fn with_local_backend(mut self, name: &str, az: &str) -> Self {
        self.backends.push(BackendConfig::local(name, az));
        self
    }

    /// Edits the configuration last, for settings without a builder method.
    pub fn configure(mut self, tweak: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.tweak = Some(Box::new(tweak));
        self
    }

    /// Starts the node. Default back ends when none were added: the embedded default layout
    /// (two `local` pools, `az1` and `az2`).
    pub async fn build(self) -> TestApp {
        let data = tempfile::tempdir().expect("temp dir for the test node");
        let keystone = match self.auth {
            AuthStrategy::Keystone => Some(start_keystone().await),
            AuthStrategy::Noauth | AuthStrategy::Builtin => None,
        };
        let mut config = Config {
            host: TEST_HOST.to_owned(),
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        };
        config.api.listen = "127.0.0.1:0".parse().expect("literal address");
        // Tests run side by side: every node's NFS server takes a port of its own.
        config.nfs.listen = "127.0.0.1:0".parse().expect("literal address");
        config.api.auth_strategy = self.auth;
        if !self.backends.is_empty() {
            config.backends = self.backends;
        }
        if let Some(keystone) = &keystone {
            config.keystone.auth_url = format!("{}/v3", keystone.url);
            config.keystone.username = "manila".to_owned();
            config.keystone.password = "manila-secret".to_owned();
            config.keystone.project_name = "service".to_owned();
        }
        if self.auth == AuthStrategy::Builtin {
            config.identity.admin_password = BUILTIN_USERS[0].1.to_owned();
            config.identity.users = BUILTIN_USERS[1..]
                .iter()
                .map(
                    |(user, password, project, roles)| shoal_identity::UserSeed {
                        name: (*user).to_owned(),
                        password: Some((*password).to_owned()),
                        password_hash: None,
                        project: Some((*project).to_owned()),
                        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                    },
                )
                .collect();
        }
        if let Some(tweak) = self.tweak {
            tweak(&mut config);
        }
        let builtin = config.api.auth_strategy == AuthStrategy::Builtin;
        let db = fresh_store_from_env().await;
        let server = Server::start_with_store(config, db.store().clone())
            .await
            .expect("test node starts");
        let addr = server.api_addr.expect("the api role runs in tests");
        let mut app = TestApp {
            base: format!("http://{addr}"),
            server: Some(server),
            db: Some(db),
            keystone,
            builtin_tokens: HashMap::new(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            _data: data,
        };
        if builtin {
            for (user, password, project, _) in BUILTIN_USERS {
                let response = app.issue_builtin_token(user, password, project).await;
                assert_eq!(
                    response.status,
                    201,
                    "token for {user}: {}",
                    response.text()
                );
                let token = response
                    .header("x-subject-token")
                    .expect("X-Subject-Token")
                    .to_owned();
                app.builtin_tokens.insert(user.to_owned(), token);
            }
        }
        app
    }
}

async fn start_keystone() -> KeystoneStandin {
    let keystone = KeystoneStandin::start().await;
    keystone.add_user(
        "manila",
        "manila-secret",
        "5e5e5e5e5e5e4e5e8e5e5e5e5e5e5e5e",
        "service",
        &["admin", "service"],
    );
    for (user, project, roles) in PERSONAS {
        keystone.add_user(user, "password", project, &format!("project-{user}"), roles);
    }
    keystone
}

/// A running node plus an HTTP client aimed at it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    server: Option<Server>,
    db: Option<TestDb<dyn Store>>,
    keystone: Option<KeystoneStandin>,
    /// Tokens of the [`BUILTIN_USERS`], issued at start (builtin mode).
    builtin_tokens: HashMap<String, String>,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

impl TestApp {
    /// Builder with noauth and the default back ends.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            auth: AuthStrategy::Noauth,
            backends: Vec::new(),
            tweak: None,
        }
    }

    /// A noauth node with the default layout.
    pub async fn noauth() -> Self {
        Self::builder().build().await
    }

    /// A keystone node with the default layout and the [`PERSONAS`].
    pub async fn keystone() -> Self {
        Self::builder().auth(AuthStrategy::Keystone).build().await
    }

    /// A node with the built-in identity, the default layout and the [`BUILTIN_USERS`].
    pub async fn builtin() -> Self {
        Self::builder().auth(AuthStrategy::Builtin).build().await
    }

    /// `POST /identity/v3/auth/tokens` with the password method, scoped to `project` by
    /// name in the `Default` domain.
    pub async fn issue_builtin_token(
        &self,
        user: &str,
        password: &str,
        project: &str,
    ) -> TestResponse {
        self.post("/identity/v3/auth/tokens")
            .anonymous()
            .json(&serde_json::json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": user, "domain": {"name": "Default"}, "password": password}}},
                "scope": {"project": {"name": project, "domain": {"name": "Default"}}}
            }}))
            .send()
            .await
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("server runs until finish")
    }

    /// Address of the node's NFS server (MOUNT and NFS on one port), when it serves shares.
    pub fn nfs_addr(&self) -> Option<std::net::SocketAddr> {
        self.server().nfs_addr
    }

    /// What the node's NFS server exports.
    pub fn nfs_exports(&self) -> Option<&Arc<shoal_nfs::Exports>> {
        self.server().nfs_exports.as_ref()
    }

    /// The service layer of the node.
    pub fn core(&self) -> &Arc<Core> {
        &self.server().core
    }

    /// Ticks the periodic report (heartbeats and pool stats) once.
    pub async fn report_once(&self) {
        self.server()
            .reporter
            .run_once()
            .await
            .expect("report succeeds");
    }

    /// Ticks the scheduler role's housekeeping once (expired reservations, old finished
    /// operations) and says what it cleared.
    pub async fn housekeeping_once(&self) -> shoal_core::housekeeping::HousekeepingPass {
        self.server()
            .housekeeping
            .run_once()
            .await
            .expect("housekeeping succeeds")
    }

    /// Ticks the periodic replica refresh once (queues an update for every non-active
    /// replica of the node's back ends), then runs the workers until everything settled.
    pub async fn update_replicas_once(&self) {
        self.server()
            .replica_updater
            .run_once()
            .await
            .expect("replica update pass succeeds");
        self.settle().await;
    }

    /// Holds the background passes of the operation workers until the guard is dropped
    /// (waiting for a pass under way to end), so a test can look at the state an API call
    /// leaves before any worker moves it on. [`Self::settle`] still works while held.
    pub async fn hold_workers(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.core().background_work.write().await
    }

    /// Runs the scheduler and share workers until no operation is left (bounded: panics after
    /// 30 s, which means an operation is stuck). The background loops run too; claims are
    /// compare-and-set, so both can work without stepping on each other.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            for worker in &self.server().workers {
                worker.run_once().await.expect("worker pass succeeds");
            }
            let left = self
                .core()
                .store
                .count_unfinished_operations()
                .await
                .expect("count operations");
            // Writes through the data plane queue replica updates a moment later.
            let following = self
                .server()
                .nfs_journals
                .as_ref()
                .is_some_and(|journals| !journals.is_idle());
            if left == 0 && !following {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{left} operations still unfinished after 30 s (changes being followed: {following})"
            );
            // Another worker holds the claim: give it a moment to finish.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The Keystone stand-in (keystone mode only).
    pub fn keystone_standin(&self) -> &KeystoneStandin {
        self.keystone
            .as_ref()
            .expect("this app runs in keystone mode")
    }

    /// A token for `user`: a stand-in token in keystone mode, the token issued at start in
    /// builtin mode, `user:project` under noauth.
    pub fn token_for(&self, user: &str) -> String {
        if !self.builtin_tokens.is_empty() {
            return self
                .builtin_tokens
                .get(user)
                .unwrap_or_else(|| panic!("{user} is not one of the BUILTIN_USERS"))
                .clone();
        }
        match &self.keystone {
            Some(keystone) => keystone.issue_token(user),
            None => {
                let project = PERSONAS.iter().find(|p| p.0 == user).map_or(user, |p| p.1);
                format!("{user}:{project}")
            }
        }
    }

    /// Starts a request; absolute URLs are used as given, paths are joined to `base`.
    pub fn request(&self, method: Method, path: &str) -> TestRequest {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        TestRequest {
            app_token: self.token_for("admin"),
            builder: self.client.request(method, url),
            token: None,
            anonymous: false,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> TestRequest {
        self.request(Method::GET, path)
    }
    /// `POST path`.
    pub fn post(&self, path: &str) -> TestRequest {
        self.request(Method::POST, path)
    }
    /// `PUT path`.
    pub fn put(&self, path: &str) -> TestRequest {
        self.request(Method::PUT, path)
    }
    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> TestRequest {
        self.request(Method::DELETE, path)
    }

    /// Stops the node and drops its database. Asserts the invariant every test must leave:
    /// no durable operation is left unfinished.
    pub async fn finish(mut self) {
        // Replica updates that writes through the data plane asked for are background work,
        // like the periodic ones: let them end.
        if self
            .server()
            .nfs_journals
            .as_ref()
            .is_some_and(|journals| journals.saw_changes())
        {
            self.settle().await;
        }
        let server = self.server.take().expect("finish is called once");
        let unfinished = server
            .core
            .store
            .count_unfinished_operations()
            .await
            .expect("count operations");
        server.shutdown().await;
        if let Some(db) = self.db.take() {
            db.finish().await;
        }
        assert_eq!(unfinished, 0, "the test left unfinished operations behind");
    }
}

/// A request being built.
pub struct TestRequest {
    builder: reqwest::RequestBuilder,
    app_token: String,
    token: Option<String>,
    anonymous: bool,
}

impl TestRequest {
    /// Sets `X-OpenStack-Manila-API-Version`.
    pub fn version(mut self, version: &str) -> Self {
        self.builder = self
            .builder
            .header("X-OpenStack-Manila-API-Version", version);
        self
    }
    /// Sets the experimental flag header to `value`.
    pub fn experimental(mut self, value: &str) -> Self {
        self.builder = self
            .builder
            .header("X-OpenStack-Manila-API-Experimental", value);
        self
    }
    /// Uses this raw token.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }
    /// Sends no token at all.
    pub fn anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }
    /// JSON body with `Content-Type: application/json`.
    pub fn json(mut self, body: &Value) -> Self {
        self.builder = self.builder.json(body);
        self
    }
    /// A raw body with the given content type (`None` sends none).
    pub fn body(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        if let Some(ct) = content_type {
            self.builder = self.builder.header("Content-Type", ct);
        }
        self.builder = self.builder.body(body.into());
        self
    }
    /// Sends the request (as admin unless a token was chosen).
    pub async fn send(self) -> TestResponse {
        let mut builder = self.builder;
        if !self.anonymous {
            builder = builder.header("X-Auth-Token", self.token.unwrap_or(self.app_token));
        }
        let response = builder.send().await.expect("request reaches the test node");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("response body").to_vec();
        TestResponse {
            status: status.as_u16(),
            headers,
            body,
        }
    }
}

/// A received response.
#[derive(Debug)]
pub struct TestResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Raw body.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// Body as JSON (panics with the body text when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts a Manila fault with this status, fault name and (if given) exact message.
    pub fn assert_fault(&self, status: u16, fault: &str, message: Option<&str>) {
        assert_eq!(self.status, status, "status; body: {}", self.text());
        let body = self.json();
        let inner = body
            .get(fault)
            .unwrap_or_else(|| panic!("fault {fault} expected, got {body}"));
        assert_eq!(inner["code"], status, "fault code in {body}");
        if let Some(message) = message {
            assert_eq!(inner["message"], message, "fault message in {body}");
        }
    }
}
