//! shoal's built-in identity: the Keystone v3 subset behind `auth_strategy = "builtin"`,
//! which lets stock OpenStack clients use password authentication with no Keystone.
//!
//! Persisted (through [`shoal_store::Store`]): projects and users of the one `Default`
//! domain, users' argon2 password hashes, role assignments (user, project, role name), the
//! audit ids of revoked tokens, and the signing key (created by the first node that starts,
//! shared by every node through the database, so tokens survive restarts and work on any API
//! node). Derived, never stored: tokens themselves (signed, see [`token`]), role ids (a hash
//! of the role name) and the service catalog (built by the HTTP layer). In memory per node:
//! the failure counters of [`ratelimit`].
//!
//! The HTTP side (`/identity/v3`: tokens, discovery and the admin calls of [`admin`]) lives
//! in `shoal-api`; the admin CLI (`shoal identity ...`) in the `shoal` binary. Both call
//! [`IdentityService`].

pub mod admin;
pub mod config;
pub mod metrics;
pub mod password;
pub mod ratelimit;
pub mod token;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use shoal_store::Store;
use shoal_store::StoreError;
use shoal_store::model_identity::{
    IdentityProjectRow, IdentityUserRow, IdentityUserUpdate, NewIdentityProject, NewIdentityUser,
    RoleAssignmentRow,
};

pub use admin::{BUILTIN_ROLES, NewUser, UserChanges};
pub use config::{IdentityConfig, ProjectSeed, RoleAssignmentSeed, UserSeed};
use ratelimit::{FailureLimiter, Refusal};
use token::{KEY_LEN, TokenPayload};

/// Id of the only domain, as Keystone names its default domain.
pub const DEFAULT_DOMAIN_ID: &str = "default";
/// Name of the only domain.
pub const DEFAULT_DOMAIN_NAME: &str = "Default";
/// Name of the first admin, its project and its role.
pub const ADMIN: &str = "admin";

/// Keystone's generic 401 text; it says nothing about which part was wrong.
pub const UNAUTHORIZED_MESSAGE: &str = "The request you have made requires authentication.";

/// What went wrong, in the terms the HTTP layer maps to Keystone's answers.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Authentication failed: 401 with this message.
    #[error("{0}")]
    Unauthorized(String),
    /// Too many failures from the source address: 429.
    #[error("too many failed authentications from this address")]
    TooManyFailures {
        /// When to try again.
        retry_after: Duration,
    },
    /// The token is not (or no longer) valid: 404 when it was the subject of a
    /// validation, 401 when it was the caller's own.
    #[error("Failed to validate token")]
    InvalidToken,
    /// The request is malformed: 400.
    #[error("{0}")]
    BadRequest(String),
    /// A named user or project does not exist (admin CLI).
    #[error("{0}")]
    NotFound(String),
    /// A name is already taken (admin CLI).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached: 503.
    #[error("identity store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: 500.
    #[error("identity failure: {0}")]
    Internal(String),
}

impl From<StoreError> for IdentityError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(m) => IdentityError::NotFound(m),
            StoreError::Conflict(m) => IdentityError::Conflict(m),
            StoreError::Unavailable(m) => IdentityError::Unavailable(m),
            other => IdentityError::Internal(other.to_string()),
        }
    }
}

/// Result of this crate.
pub type IdentityResult<T> = Result<T, IdentityError>;

/// A domain named in a request, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    /// `{"id": ...}`
    Id(String),
    /// `{"name": ...}`
    Name(String),
}

/// A user named in a password authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// By id (unique across domains).
    Id(String),
    /// By name within a domain.
    Name {
        /// User name.
        name: String,
        /// Its domain.
        domain: DomainRef,
    },
}

/// A project named in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    /// By id.
    Id(String),
    /// By name within a domain.
    Name {
        /// Project name.
        name: String,
        /// Its domain.
        domain: DomainRef,
    },
}

/// The requested scope of a new token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No scope given: the user's default project for a password, the original token's
    /// project for a token, else unscoped (as Keystone).
    Default,
    /// `"scope": "unscoped"`.
    Unscoped,
    /// A project.
    Project(ProjectRef),
    /// A domain or system scope, which the built-in identity does not grant.
    Unsupported(String),
}

/// How the caller proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// The `password` method.
    Password {
        /// Who.
        user: UserRef,
        /// The clear-text password (never logged).
        password: String,
    },
    /// The `token` method: trade a valid token for a new one (rescoping).
    Token {
        /// The existing token.
        token: String,
    },
}

impl std::fmt::Debug for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthMethod::Password { user, .. } => f
                .debug_struct("Password")
                .field("user", user)
                .finish_non_exhaustive(),
            AuthMethod::Token { .. } => f.debug_struct("Token").finish_non_exhaustive(),
        }
    }
}

/// A `POST /v3/auth/tokens` request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The identity method.
    pub method: AuthMethod,
    /// The requested scope.
    pub scope: Scope,
}

/// A token that validated, with what it grants now.
#[derive(Debug, Clone)]
pub struct ValidToken {
    /// What the token says.
    pub payload: TokenPayload,
    /// Its user, as stored now.
    pub user: IdentityUserRow,
    /// Its project (scoped tokens).
    pub project: Option<IdentityProjectRow>,
    /// Role names the user holds on the project now; empty for unscoped tokens.
    pub roles: Vec<String>,
}

/// A newly issued token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The token string, sent in `X-Subject-Token`.
    pub token: String,
    /// What it grants.
    pub valid: ValidToken,
}

/// What start-up seeding did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootstrapReport {
    /// The first admin was created with this generated password (write it somewhere the
    /// operator can read it).
    pub generated_admin_password: Option<String>,
    /// The admin's stored password was replaced by the configured one.
    pub admin_password_updated: bool,
}

/// Keystone's default role implications (`keystone-manage bootstrap`): admin implies member,
/// member implies reader. Tokens carry the implied roles too, and Manila's default policies
/// rely on it (`role:reader` for every read).
const IMPLIED_ROLES: [(&str, &str); 2] = [("admin", "member"), ("member", "reader")];

/// The assigned roles plus every role they imply, sorted and without repeats.
pub fn effective_roles(assigned: Vec<String>) -> Vec<String> {
    let mut roles = assigned;
    let mut i = 0;
    while i < roles.len() {
        for (prior, implied) in IMPLIED_ROLES {
            if roles[i] == prior && !roles.iter().any(|r| r == implied) {
                roles.push(implied.to_owned());
            }
        }
        i += 1;
    }
    roles.sort();
    roles.dedup();
    roles
}

/// Keystone's role id for a role name: stable across nodes and restarts, with no table.
pub fn role_id(name: &str) -> String {
    let hash = blake3::hash(format!("shoal-role:{name}").as_bytes());
    hash.to_hex()[..32].to_owned()
}

/// A new Keystone-style id: 32 lowercase hex characters.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Tokens a node keeps validated at most.
const TOKEN_CACHE_CAPACITY: u64 = 10_000;

/// The built-in identity of one node.
pub struct IdentityService {
    store: Arc<dyn Store>,
    config: IdentityConfig,
    key: [u8; KEY_LEN],
    limiter: FailureLimiter,
    /// Tokens validated recently (`token_cache_ttl`), so a request costs no database reads;
    /// `None` when the TTL is zero.
    cache: Option<moka::future::Cache<String, ValidToken>>,
    /// A hash to verify unknown users' passwords against, so an unknown name costs as much
    /// time as a wrong password and user names cannot be probed by timing.
    decoy_hash: String,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IdentityService {
    /// Opens the identity over a migrated store: loads the signing key, creating it if this
    /// is the first node ever to start.
    pub async fn open(store: Arc<dyn Store>, config: IdentityConfig) -> IdentityResult<Self> {
        let stored = store
            .ensure_identity_signing_key(&token::new_key_hex(), Utc::now())
            .await?;
        let key = token::key_from_hex(&stored)
            .ok_or_else(|| IdentityError::Internal("stored signing key is malformed".to_owned()))?;
        let limiter = FailureLimiter::new(
            config.user_failure_limit,
            config.user_failure_window,
            config.address_failure_limit,
            config.address_failure_window,
        );
        let decoy_hash = password::hash_blocking(token::new_audit_id())
            .await
            .map_err(IdentityError::Internal)?;
        let cache = (!config.token_cache_ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(TOKEN_CACHE_CAPACITY)
                .time_to_live(config.token_cache_ttl)
                .build()
        });
        Ok(Self {
            store,
            config,
            key,
            limiter,
            cache,
            decoy_hash,
        })
    }

    /// The settings in effect.
    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    // ---- start-up seeding ----

    /// Makes sure the first admin and the configured projects and users exist.
    /// `admin_password` is the configured one (`SHOAL_ADMIN_PASSWORD` or the file), if any.
    /// Safe to run on several nodes at once.
    pub async fn bootstrap(
        &self,
        admin_password: Option<&str>,
        now: DateTime<Utc>,
    ) -> IdentityResult<BootstrapReport> {
        let mut report = BootstrapReport::default();
        let admin_project = self.ensure_project(ADMIN, "Bootstrap project", now).await?;
        match self
            .store
            .get_identity_user_by_name(DEFAULT_DOMAIN_ID, ADMIN)
            .await
        {
            Ok(user) => {
                if let Some(wanted) = admin_password
                    && self.set_password_if_different(&user, wanted, now).await?
                {
                    report.admin_password_updated = true;
                }
            }
            Err(StoreError::NotFound(_)) => {
                let password = match admin_password {
                    Some(p) => p.to_owned(),
                    None => {
                        let generated =
                            password::generate_password().map_err(IdentityError::Internal)?;
                        report.generated_admin_password = Some(generated.clone());
                        generated
                    }
                };
                let created = self
                    .insert_user(ADMIN, &password, Some(&admin_project.id), now)
                    .await;
                match created {
                    Ok(_) => {}
                    // Another node created it first: its password stands, ours was not used.
                    Err(IdentityError::Conflict(_)) => report.generated_admin_password = None,
                    Err(err) => return Err(err),
                }
            }
            Err(err) => return Err(err.into()),
        }
        let admin = self
            .store
            .get_identity_user_by_name(DEFAULT_DOMAIN_ID, ADMIN)
            .await?;
        self.store
            .grant_identity_role(&admin.id, &admin_project.id, ADMIN)
            .await?;

        for project in &self.config.projects {
            self.ensure_project(&project.name, &project.description, now)
                .await?;
        }
        for seed in &self.config.users {
            self.apply_user_seed(seed, now).await?;
        }
        for assignment in &self.config.role_assignments {
            let user = self.user_by_name(&assignment.user).await?;
            let project = self.ensure_project(&assignment.project, "", now).await?;
            for role in &assignment.roles {
                self.store
                    .grant_identity_role(&user.id, &project.id, role)
                    .await?;
            }
        }
        Ok(report)
    }

    async fn apply_user_seed(&self, seed: &UserSeed, now: DateTime<Utc>) -> IdentityResult<()> {
        let project = match &seed.project {
            Some(name) => Some(self.ensure_project(name, "", now).await?),
            None => None,
        };
        let user = match self
            .store
            .get_identity_user_by_name(DEFAULT_DOMAIN_ID, &seed.name)
            .await
        {
            Ok(user) => {
                match (&seed.password_hash, &seed.password) {
                    (Some(hash), _) if *hash != user.password_hash => {
                        self.update_user(&user.id, Some(hash.clone()), now).await?;
                    }
                    (None, Some(password)) => {
                        self.set_password_if_different(&user, password, now).await?;
                    }
                    _ => {}
                }
                user
            }
            Err(StoreError::NotFound(_)) => {
                let new = NewIdentityUser {
                    id: new_id(),
                    name: seed.name.clone(),
                    domain_id: DEFAULT_DOMAIN_ID.to_owned(),
                    password_hash: match (&seed.password_hash, &seed.password) {
                        (Some(hash), _) => hash.clone(),
                        (None, Some(password)) => password::hash_blocking(password.clone())
                            .await
                            .map_err(IdentityError::Internal)?,
                        (None, None) => {
                            return Err(IdentityError::BadRequest(format!(
                                "user {} has no password",
                                seed.name
                            )));
                        }
                    },
                    enabled: true,
                    default_project_id: project.as_ref().map(|p| p.id.clone()),
                    created_at: now,
                };
                match self.store.insert_identity_user(new).await {
                    Ok(user) => user,
                    Err(StoreError::Conflict(_)) => {
                        self.store
                            .get_identity_user_by_name(DEFAULT_DOMAIN_ID, &seed.name)
                            .await?
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            Err(err) => return Err(err.into()),
        };
        if let Some(project) = &project {
            for role in &seed.roles {
                self.store
                    .grant_identity_role(&user.id, &project.id, role)
                    .await?;
            }
        }
        Ok(())
    }

    /// Sets `password` unless it is already the user's; true when it changed.
    async fn set_password_if_different(
        &self,
        user: &IdentityUserRow,
        wanted: &str,
        now: DateTime<Utc>,
    ) -> IdentityResult<bool> {
        if password::verify_blocking(user.password_hash.clone(), wanted.to_owned()).await {
            return Ok(false);
        }
        let hash = password::hash_blocking(wanted.to_owned())
            .await
            .map_err(IdentityError::Internal)?;
        self.update_user(&user.id, Some(hash), now).await?;
        Ok(true)
    }

    /// Stores a new password hash; tokens issued before now stop working (as Keystone
    /// revokes a user's tokens on a password change).
    async fn update_user(
        &self,
        user_id: &str,
        password_hash: Option<String>,
        now: DateTime<Utc>,
    ) -> IdentityResult<IdentityUserRow> {
        let update = IdentityUserUpdate {
            password_hash,
            tokens_valid_after: Some(now),
            ..IdentityUserUpdate::default()
        };
        let user = self
            .store
            .update_identity_user(user_id, update, now)
            .await?;
        self.forget_validations();
        Ok(user)
    }

    async fn ensure_project(
        &self,
        name: &str,
        description: &str,
        now: DateTime<Utc>,
    ) -> IdentityResult<IdentityProjectRow> {
        match self
            .store
            .get_identity_project_by_name(DEFAULT_DOMAIN_ID, name)
            .await
        {
            Ok(project) => return Ok(project),
            Err(StoreError::NotFound(_)) => {}
            Err(err) => return Err(err.into()),
        }
        match self.add_project(name, description, now).await {
            // Created concurrently by another node.
            Err(IdentityError::Conflict(_)) => Ok(self
                .store
                .get_identity_project_by_name(DEFAULT_DOMAIN_ID, name)
                .await?),
            other => other,
        }
    }

    async fn insert_user(
        &self,
        name: &str,
        password: &str,
        default_project_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> IdentityResult<IdentityUserRow> {
        let password_hash = password::hash_blocking(password.to_owned())
            .await
            .map_err(IdentityError::Internal)?;
        let new = NewIdentityUser {
            id: new_id(),
            name: name.to_owned(),
            domain_id: DEFAULT_DOMAIN_ID.to_owned(),
            password_hash,
            enabled: true,
            default_project_id: default_project_id.map(str::to_owned),
            created_at: now,
        };
        match self.store.insert_identity_user(new).await {
            Ok(user) => Ok(user),
            Err(StoreError::Conflict(_)) => Err(IdentityError::Conflict(format!(
                "user {name} already exists"
            ))),
            Err(err) => Err(err.into()),
        }
    }

    // ---- tokens ----

    /// `POST /v3/auth/tokens`: checks the credentials and issues a token.
    /// `source` is the client's address, for the per-address failure limit.
    /// Every outcome is counted in `shoal_identity_logins_total` by method and result.
    pub async fn authenticate(
        &self,
        request: AuthRequest,
        source: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> IdentityResult<IssuedToken> {
        let method = match request.method {
            AuthMethod::Password { .. } => "password",
            AuthMethod::Token { .. } => "token",
        };
        let outcome = self.authenticate_unmetered(request, source, now).await;
        metrics::login(method, &outcome);
        outcome
    }

    async fn authenticate_unmetered(
        &self,
        request: AuthRequest,
        source: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> IdentityResult<IssuedToken> {
        if let Err(Refusal::AddressThrottled { retry_after }) =
            self.limiter.check_address(source, now)
        {
            tracing::warn!(
                ?source,
                "authentication refused: too many failures from {source:?}"
            );
            return Err(IdentityError::TooManyFailures { retry_after });
        }
        match request.method {
            AuthMethod::Password { user, password } => {
                self.authenticate_password(user, password, request.scope, source, now)
                    .await
            }
            AuthMethod::Token { token } => {
                let Ok(original) = self.validate(&token, now).await else {
                    self.limiter.record_failure(None, source, now);
                    return Err(IdentityError::Unauthorized(UNAUTHORIZED_MESSAGE.to_owned()));
                };
                let scope = match request.scope {
                    Scope::Default => match &original.project {
                        Some(project) => Scope::Project(ProjectRef::Id(project.id.clone())),
                        None => Scope::Unscoped,
                    },
                    other => other,
                };
                let mut methods = vec!["token".to_owned()];
                methods.extend(
                    original
                        .payload
                        .methods
                        .iter()
                        .filter(|m| *m != "token")
                        .cloned(),
                );
                // A rescoped token expires with its original, as in Keystone.
                let expires_at = original.payload.expires_at;
                let parent_audit = original.payload.audit_ids.first().cloned();
                self.issue(original.user, scope, methods, expires_at, parent_audit, now)
                    .await
            }
        }
    }

    async fn authenticate_password(
        &self,
        user_ref: UserRef,
        password: String,
        scope: Scope,
        source: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> IdentityResult<IssuedToken> {
        let unauthorized = || IdentityError::Unauthorized(UNAUTHORIZED_MESSAGE.to_owned());
        let user_key = match &user_ref {
            UserRef::Id(id) => id.clone(),
            UserRef::Name { name, domain } => format!("{domain:?}/{name}"),
        };
        let user = match self.find_user(&user_ref).await {
            Ok(user) => user,
            // An unknown user, or a domain that does not exist.
            Err(IdentityError::NotFound(_) | IdentityError::Unauthorized(_)) => {
                // Spend the same time as a wrong password would.
                password::verify_blocking(self.decoy_hash.clone(), password).await;
                self.limiter.record_failure(Some(&user_key), source, now);
                tracing::info!(user = %user_key, "authentication failed: unknown user {user_key}");
                return Err(unauthorized());
            }
            Err(err) => return Err(err),
        };
        if self.limiter.check_user(&user.id, now).is_err() {
            self.limiter.record_failure(None, source, now);
            tracing::warn!(user.id = %user.id, "authentication refused: user {} is locked", user.id);
            return Err(IdentityError::Unauthorized(format!(
                "The account is locked for user: {}.",
                user.id
            )));
        }
        if !password::verify_blocking(user.password_hash.clone(), password).await {
            self.limiter.record_failure(Some(&user.id), source, now);
            tracing::info!(user.id = %user.id, "authentication failed: wrong password for user {}", user.id);
            return Err(unauthorized());
        }
        if !user.enabled {
            return Err(unauthorized());
        }
        self.limiter.record_success(&user.id);
        let scope = match scope {
            Scope::Default => match &user.default_project_id {
                Some(id) => Scope::Project(ProjectRef::Id(id.clone())),
                None => Scope::Unscoped,
            },
            other => other,
        };
        let expires_at =
            now + TimeDelta::from_std(self.config.token_expiration).unwrap_or(TimeDelta::hours(1));
        self.issue(
            user,
            scope,
            vec!["password".to_owned()],
            expires_at,
            None,
            now,
        )
        .await
    }

    async fn issue(
        &self,
        user: IdentityUserRow,
        scope: Scope,
        methods: Vec<String>,
        expires_at: DateTime<Utc>,
        parent_audit: Option<String>,
        now: DateTime<Utc>,
    ) -> IdentityResult<IssuedToken> {
        let (project, roles) = match scope {
            Scope::Default | Scope::Unscoped => (None, Vec::new()),
            Scope::Unsupported(what) => {
                return Err(IdentityError::Unauthorized(format!(
                    "User {} has no access to {what}; the built-in identity grants project \
                     scopes only.",
                    user.id
                )));
            }
            Scope::Project(project_ref) => {
                let project = match self.find_project(&project_ref).await {
                    Ok(project) => project,
                    Err(IdentityError::NotFound(_)) => {
                        return Err(IdentityError::Unauthorized(format!(
                            "Could not find project: {}.",
                            describe_project(&project_ref)
                        )));
                    }
                    Err(err) => return Err(err),
                };
                let roles = effective_roles(
                    self.store
                        .list_identity_roles(&user.id, &project.id)
                        .await?,
                );
                if roles.is_empty() || !project.enabled {
                    return Err(IdentityError::Unauthorized(format!(
                        "User {} has no access to project {}",
                        user.id, project.id
                    )));
                }
                (Some(project), roles)
            }
        };
        let mut audit_ids = vec![token::new_audit_id()];
        audit_ids.extend(parent_audit);
        let payload = TokenPayload {
            user_id: user.id.clone(),
            project_id: project.as_ref().map(|p| p.id.clone()),
            methods,
            issued_at: shoal_store::truncate_to_micros(now),
            expires_at: shoal_store::truncate_to_micros(expires_at),
            audit_ids,
        };
        let token = token::encode(&payload, &self.key);
        tracing::info!(user.id = %user.id, project.id = ?payload.project_id, "issued a token for user {}", user.id);
        Ok(IssuedToken {
            token,
            valid: ValidToken {
                payload,
                user,
                project,
                roles,
            },
        })
    }

    /// Checks a token: signature, expiry, revocation, and that its user and project still
    /// exist, are enabled and (for a scoped token) still hold a role there.
    pub async fn validate(&self, token: &str, now: DateTime<Utc>) -> IdentityResult<ValidToken> {
        if let Some(cache) = &self.cache
            && let Some(valid) = cache.get(token).await
            && valid.payload.expires_at > now
        {
            return Ok(valid);
        }
        let valid = self.validate_uncached(token, now).await?;
        if let Some(cache) = &self.cache {
            cache.insert(token.to_owned(), valid.clone()).await;
        }
        Ok(valid)
    }

    /// Forgets every cached validation: something on this node changed what tokens grant.
    fn forget_validations(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    async fn validate_uncached(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> IdentityResult<ValidToken> {
        let payload = token::decode(token, &self.key).map_err(|_| IdentityError::InvalidToken)?;
        if payload.expires_at <= now {
            return Err(IdentityError::InvalidToken);
        }
        for audit_id in &payload.audit_ids {
            if self.store.is_identity_token_revoked(audit_id).await? {
                return Err(IdentityError::InvalidToken);
            }
        }
        let user = match self.store.get_identity_user(&payload.user_id).await {
            Ok(user) => user,
            Err(StoreError::NotFound(_)) => return Err(IdentityError::InvalidToken),
            Err(err) => return Err(err.into()),
        };
        if !user.enabled || payload.issued_at < user.tokens_valid_after {
            return Err(IdentityError::InvalidToken);
        }
        let (project, roles) = match &payload.project_id {
            None => (None, Vec::new()),
            Some(project_id) => {
                let project = match self.store.get_identity_project(project_id).await {
                    Ok(project) => project,
                    Err(StoreError::NotFound(_)) => return Err(IdentityError::InvalidToken),
                    Err(err) => return Err(err.into()),
                };
                let roles =
                    effective_roles(self.store.list_identity_roles(&user.id, project_id).await?);
                if roles.is_empty() || !project.enabled {
                    return Err(IdentityError::InvalidToken);
                }
                (Some(project), roles)
            }
        };
        Ok(ValidToken {
            payload,
            user,
            project,
            roles,
        })
    }

    /// `DELETE /v3/auth/tokens`: revokes a valid token (and every token made from it).
    pub async fn revoke(&self, token: &str, now: DateTime<Utc>) -> IdentityResult<()> {
        let valid = self.validate(token, now).await?;
        let audit_id = valid
            .payload
            .audit_ids
            .first()
            .ok_or(IdentityError::InvalidToken)?;
        self.store
            .revoke_identity_token(audit_id, valid.payload.expires_at, now)
            .await?;
        // Tokens made from this one die with it, so drop them all from the cache.
        self.forget_validations();
        self.store.delete_expired_identity_revocations(now).await?;
        tracing::info!(user.id = %valid.user.id, "revoked a token of user {}", valid.user.id);
        Ok(())
    }

    async fn find_user(&self, user: &UserRef) -> IdentityResult<IdentityUserRow> {
        let found = match user {
            UserRef::Id(id) => self.store.get_identity_user(id).await,
            UserRef::Name { name, domain } => {
                let domain_id = resolve_domain(domain)?;
                self.store.get_identity_user_by_name(domain_id, name).await
            }
        };
        Ok(found?)
    }

    async fn find_project(&self, project: &ProjectRef) -> IdentityResult<IdentityProjectRow> {
        let found = match project {
            ProjectRef::Id(id) => self.store.get_identity_project(id).await,
            ProjectRef::Name { name, domain } => {
                let domain_id = resolve_domain(domain)?;
                self.store
                    .get_identity_project_by_name(domain_id, name)
                    .await
            }
        };
        Ok(found?)
    }

    // ---- administration (the `shoal identity` CLI) ----

    /// Creates a project.
    pub async fn add_project(
        &self,
        name: &str,
        description: &str,
        now: DateTime<Utc>,
    ) -> IdentityResult<IdentityProjectRow> {
        let new = NewIdentityProject {
            id: new_id(),
            name: name.to_owned(),
            domain_id: DEFAULT_DOMAIN_ID.to_owned(),
            description: description.to_owned(),
            enabled: true,
            created_at: now,
        };
        match self.store.insert_identity_project(new).await {
            Ok(project) => Ok(project),
            Err(StoreError::Conflict(_)) => Err(IdentityError::Conflict(format!(
                "project {name} already exists"
            ))),
            Err(err) => Err(err.into()),
        }
    }

    /// Creates a user; with `project`, that project (created if missing) becomes its
    /// default project and `roles` are granted there.
    pub async fn add_user(
        &self,
        name: &str,
        password: &str,
        project: Option<&str>,
        roles: &[String],
        now: DateTime<Utc>,
    ) -> IdentityResult<IdentityUserRow> {
        if name.trim().is_empty() || password.is_empty() {
            return Err(IdentityError::BadRequest(
                "a user needs a name and a password".to_owned(),
            ));
        }
        if !roles.is_empty() && project.is_none() {
            return Err(IdentityError::BadRequest("roles need a project".to_owned()));
        }
        let project = match project {
            Some(name) => Some(self.ensure_project(name, "", now).await?),
            None => None,
        };
        let user = self
            .insert_user(name, password, project.as_ref().map(|p| p.id.as_str()), now)
            .await?;
        if let Some(project) = &project {
            for role in roles {
                self.store
                    .grant_identity_role(&user.id, &project.id, role)
                    .await?;
            }
        }
        Ok(user)
    }

    /// Replaces a user's password; its older tokens stop working.
    pub async fn set_password(
        &self,
        name: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> IdentityResult<()> {
        if password.is_empty() {
            return Err(IdentityError::BadRequest(
                "the password is empty".to_owned(),
            ));
        }
        let user = self.user_by_name(name).await?;
        let hash = password::hash_blocking(password.to_owned())
            .await
            .map_err(IdentityError::Internal)?;
        self.update_user(&user.id, Some(hash), now).await?;
        Ok(())
    }

    /// Enables or disables a user; disabling also ends its tokens.
    pub async fn set_enabled(
        &self,
        name: &str,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> IdentityResult<()> {
        let user = self.user_by_name(name).await?;
        let update = IdentityUserUpdate {
            enabled: Some(enabled),
            tokens_valid_after: (!enabled).then_some(now),
            ..IdentityUserUpdate::default()
        };
        self.store
            .update_identity_user(&user.id, update, now)
            .await?;
        self.forget_validations();
        Ok(())
    }

    /// Deletes a user and its role assignments.
    pub async fn delete_user(&self, name: &str) -> IdentityResult<()> {
        let user = self.user_by_name(name).await?;
        self.store.delete_identity_user(&user.id).await?;
        self.forget_validations();
        Ok(())
    }

    /// Grants `role` on `project` to `user` (by names).
    pub async fn grant_role(&self, user: &str, project: &str, role: &str) -> IdentityResult<()> {
        let user = self.user_by_name(user).await?;
        let project = self.project_by_name(project).await?;
        Ok(self
            .store
            .grant_identity_role(&user.id, &project.id, role)
            .await?)
    }

    /// Revokes `role` on `project` from `user` (by names).
    pub async fn revoke_role(&self, user: &str, project: &str, role: &str) -> IdentityResult<()> {
        let user = self.user_by_name(user).await?;
        let project = self.project_by_name(project).await?;
        self.store
            .revoke_identity_role(&user.id, &project.id, role)
            .await?;
        self.forget_validations();
        Ok(())
    }

    /// Every user.
    pub async fn list_users(&self) -> IdentityResult<Vec<IdentityUserRow>> {
        Ok(self.store.list_identity_users().await?)
    }

    /// Every project.
    pub async fn list_projects(&self) -> IdentityResult<Vec<IdentityProjectRow>> {
        Ok(self.store.list_identity_projects().await?)
    }

    /// Every role assignment.
    pub async fn list_role_assignments(&self) -> IdentityResult<Vec<RoleAssignmentRow>> {
        Ok(self.store.list_identity_role_assignments().await?)
    }

    /// A project by id; `NotFound` when there is none.
    pub async fn get_project(&self, id: &str) -> IdentityResult<IdentityProjectRow> {
        Ok(self.store.get_identity_project(id).await?)
    }

    /// A user by id; `NotFound` when there is none.
    pub async fn get_user(&self, id: &str) -> IdentityResult<IdentityUserRow> {
        Ok(self.store.get_identity_user(id).await?)
    }

    /// The projects `user_id` holds a role on (Keystone's `/v3/auth/projects`).
    pub async fn projects_of_user(&self, user_id: &str) -> IdentityResult<Vec<IdentityProjectRow>> {
        let assignments = self.store.list_identity_role_assignments().await?;
        let mut projects: Vec<IdentityProjectRow> = self
            .store
            .list_identity_projects()
            .await?
            .into_iter()
            .filter(|p| {
                assignments
                    .iter()
                    .any(|a| a.user_id == user_id && a.project_id == p.id)
            })
            .collect();
        projects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(projects)
    }

    async fn user_by_name(&self, name: &str) -> IdentityResult<IdentityUserRow> {
        match self
            .store
            .get_identity_user_by_name(DEFAULT_DOMAIN_ID, name)
            .await
        {
            Err(StoreError::NotFound(_)) => {
                Err(IdentityError::NotFound(format!("no user named {name}")))
            }
            other => Ok(other?),
        }
    }

    async fn project_by_name(&self, name: &str) -> IdentityResult<IdentityProjectRow> {
        match self
            .store
            .get_identity_project_by_name(DEFAULT_DOMAIN_ID, name)
            .await
        {
            Err(StoreError::NotFound(_)) => {
                Err(IdentityError::NotFound(format!("no project named {name}")))
            }
            other => Ok(other?),
        }
    }
}

/// The only domain is `Default` (id `default`); naming another is an authentication failure.
fn resolve_domain(domain: &DomainRef) -> IdentityResult<&'static str> {
    match domain {
        DomainRef::Id(id) if id == DEFAULT_DOMAIN_ID => Ok(DEFAULT_DOMAIN_ID),
        DomainRef::Name(name) if name == DEFAULT_DOMAIN_NAME => Ok(DEFAULT_DOMAIN_ID),
        DomainRef::Id(other) | DomainRef::Name(other) => Err(IdentityError::Unauthorized(format!(
            "Could not find domain: {other}."
        ))),
    }
}

fn describe_project(project: &ProjectRef) -> String {
    match project {
        ProjectRef::Id(id) => id.clone(),
        ProjectRef::Name { name, .. } => name.clone(),
    }
}

#[cfg(test)]
mod tests;
