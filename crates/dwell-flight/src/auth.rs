//! Who may call: the `--auth` file, Basic credentials and bearer tokens.
//!
//! The file is TOML:
//!
//! ```toml
//! # Users log in with Basic credentials (the Flight SQL handshake, or on any call) and get a
//! # bearer token for the calls that follow.
//! [[users]]
//! name = "analyst"
//! password_sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
//! account = "acme"      # sees and lands the events of account_id "acme" only
//!
//! [[users]]
//! name = "ops"
//! password_sha256 = "..."
//! admin = true          # sees every account
//!
//! # Long-lived tokens for tools that send `authorization: Bearer <token>` directly.
//! [[tokens]]
//! name = "grafana"
//! token_sha256 = "..."
//! account = "acme"
//! ```
//!
//! Every entry names its `account` or says `admin = true`: there is no default, so a
//! forgotten line cannot open every account's data.
//!
//! `password = "..."` and `token = "..."` (plain text) are accepted too, for tests and local
//! use; the `_sha256` forms keep the file free of secrets. Handshake tokens live for
//! `token_lifetime` (default `12h`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use dwell_engine::Scope;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::error::{Error, Result};

/// Standard base64 that accepts padding or none: ADBC sends Basic credentials unpadded.
const BASE64_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Most handshake tokens alive at once; the oldest is dropped beyond it.
const MAX_LIVE_TOKENS: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(default)]
    users: Vec<UserEntry>,
    #[serde(default)]
    tokens: Vec<TokenEntry>,
    token_lifetime: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    password: Option<String>,
    password_sha256: Option<String>,
    account: Option<String>,
    admin: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    token: Option<String>,
    token_sha256: Option<String>,
    account: Option<String>,
    admin: Option<bool>,
}

type Digest32 = [u8; 32];

fn sha256(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

/// Compares digests in time independent of where they differ.
fn same_digest(a: &Digest32, b: &Digest32) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_hex_digest(text: &str) -> Option<Digest32> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The credentials a server accepts, read from an `--auth` file.
pub struct AuthConfig {
    users: HashMap<String, (Digest32, Scope)>,
    tokens: Vec<(String, Digest32, Scope)>,
    token_lifetime: Duration,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: digests stay out of logs.
        let mut users: Vec<_> = self.users.keys().collect();
        users.sort();
        f.debug_struct("AuthConfig")
            .field("users", &users)
            .field(
                "tokens",
                &self.tokens.iter().map(|(n, _, _)| n).collect::<Vec<_>>(),
            )
            .field("token_lifetime", &self.token_lifetime)
            .finish()
    }
}

impl AuthConfig {
    /// Names of the users and tokens confined to one account, sorted.
    #[must_use]
    pub fn account_scoped(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .users
            .iter()
            .filter(|(_, (_, scope))| matches!(scope, Scope::Account(_)))
            .map(|(name, _)| name.as_str())
            .chain(
                self.tokens
                    .iter()
                    .filter(|(_, _, scope)| matches!(scope, Scope::Account(_)))
                    .map(|(name, _, _)| name.as_str()),
            )
            .collect();
        names.sort_unstable();
        names
    }

    /// The scope of `user` if `password` is theirs.
    #[must_use]
    pub fn check_password(&self, user: &str, password: &str) -> Option<Scope> {
        let presented = sha256(password.as_bytes());
        match self.users.get(user) {
            Some((expected, scope)) if same_digest(expected, &presented) => Some(scope.clone()),
            _ => None,
        }
    }

    /// The name and scope of one of the file's `[[tokens]]`.
    #[must_use]
    pub fn check_token(&self, token: &str) -> Option<(&str, Scope)> {
        let presented = sha256(token.trim().as_bytes());
        self.tokens
            .iter()
            .find(|(_, digest, _)| same_digest(digest, &presented))
            .map(|(name, _, scope)| (name.as_str(), scope.clone()))
    }

    /// The caller an HTTP `authorization` header names: `Basic` credentials of a user (base64
    /// padded or not) or `Bearer` one of the file's tokens. (Handshake tokens belong to the
    /// Flight SQL server that issued them.) `None` for anything else.
    #[must_use]
    pub fn check_header(&self, header: &str) -> Option<(String, Scope)> {
        if let Some(token) = strip_scheme(header, "Bearer") {
            return self
                .check_token(token)
                .map(|(name, scope)| (name.to_owned(), scope));
        }
        let encoded = strip_scheme(header, "Basic")?;
        let text = String::from_utf8(BASE64_ANY_PADDING.decode(encoded.trim()).ok()?).ok()?;
        let (user, password) = text.split_once(':')?;
        self.check_password(user, password)
            .map(|scope| (user.to_owned(), scope))
    }

    /// Reads an auth file.
    pub fn read(path: &std::path::Path) -> Result<AuthConfig> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Auth {
            file: file.clone(),
            key: "(file)".into(),
            reason: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses the text of an auth file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<AuthConfig> {
        let error = |key: String, reason: String| Error::Auth {
            file: file.to_owned(),
            key,
            reason,
        };
        let parsed: AuthFile = toml::from_str(text).map_err(|e| {
            error(
                "(file)".into(),
                e.message().lines().next().unwrap_or_default().to_owned(),
            )
        })?;
        let secret =
            |key: String, plain: Option<String>, hashed: Option<String>| match (plain, hashed) {
                (Some(plain), None) if !plain.is_empty() => Ok(sha256(plain.as_bytes())),
                (None, Some(hex)) => parse_hex_digest(&hex.to_ascii_lowercase())
                    .ok_or_else(|| error(key, "not a SHA-256 digest (64 hex digits)".into())),
                (Some(_), None) => Err(error(key, "is empty".into())),
                (Some(_), Some(_)) => Err(error(
                    key,
                    "give the secret or its SHA-256, not both".into(),
                )),
                (None, None) => Err(error(key, "missing".into())),
            };
        let scope = |key: String, account: Option<String>, admin: Option<bool>| {
            match (
            account, admin,
        ) {
            (Some(account), None | Some(false)) if !account.is_empty() => {
                Ok(Scope::Account(account))
            }
            (None, Some(true)) => Ok(Scope::All),
            (Some(_), Some(true)) => Err(error(
                key,
                "give account = \"...\" or admin = true, not both".into(),
            )),
            (Some(_), _) => Err(error(key, "account is empty".into())),
            (None, _) => Err(error(
                key,
                "names no account: give account = \"...\" (that account's data only) or admin = true (every account)".into(),
            )),
        }
        };
        let mut users = HashMap::new();
        for (i, user) in parsed.users.into_iter().enumerate() {
            if user.name.is_empty() || user.name.contains(':') {
                return Err(error(
                    format!("users[{i}].name"),
                    "must be non-empty and without ':'".into(),
                ));
            }
            let digest = secret(
                format!("users[{i}].password"),
                user.password,
                user.password_sha256,
            )?;
            let scope = scope(format!("users[{i}].account"), user.account, user.admin)?;
            if users.insert(user.name.clone(), (digest, scope)).is_some() {
                return Err(error(
                    format!("users[{i}].name"),
                    format!("{} is listed twice", user.name),
                ));
            }
        }
        let mut tokens = Vec::new();
        for (i, token) in parsed.tokens.into_iter().enumerate() {
            if token.name.is_empty() {
                return Err(error(format!("tokens[{i}].name"), "is empty".into()));
            }
            let digest = secret(
                format!("tokens[{i}].token"),
                token.token,
                token.token_sha256,
            )?;
            let scope = scope(format!("tokens[{i}].account"), token.account, token.admin)?;
            tokens.push((token.name, digest, scope));
        }
        if users.is_empty() && tokens.is_empty() {
            return Err(error(
                "(file)".into(),
                "lists no [[users]] and no [[tokens]]: nobody could connect".into(),
            ));
        }
        let token_lifetime = match parsed.token_lifetime {
            None => Duration::from_hours(12),
            Some(text) => humantime::parse_duration(&text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    error(
                        "token_lifetime".into(),
                        format!("{text:?} is not a positive duration such as \"12h\""),
                    )
                })?,
        };
        Ok(AuthConfig {
            users,
            tokens,
            token_lifetime,
        })
    }
}

/// Who made a call (a user or token name from the auth file, or `anonymous` without one) and
/// whose data it may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Caller {
    pub(crate) name: String,
    pub(crate) scope: Scope,
}

impl Caller {
    /// The caller of a server without an auth file (loopback only, unless told otherwise).
    fn anonymous() -> Self {
        Caller {
            name: "anonymous".into(),
            scope: Scope::All,
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Checks credentials and issues and checks bearer tokens.
#[derive(Debug)]
pub(crate) struct Authenticator {
    config: Option<AuthConfig>,
    /// SHA-256 of each issued token → its caller and expiry.
    issued: Mutex<HashMap<Digest32, (Caller, Instant)>>,
}

/// The status for any failed authentication: the same words whatever failed, so a caller
/// learns nothing about which names exist.
fn unauthenticated() -> Status {
    Status::unauthenticated(
        "authentication failed: log in with Basic credentials (handshake) or send a valid bearer token",
    )
}

impl Authenticator {
    pub(crate) fn new(config: Option<AuthConfig>) -> Self {
        Authenticator {
            config,
            issued: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.config.is_some()
    }

    /// Checks `Basic base64(user:password)` (padded or not).
    fn check_basic(&self, encoded: &str) -> Result<Caller, Status> {
        let Some(config) = &self.config else {
            return Ok(Caller::anonymous());
        };
        let bytes = BASE64_ANY_PADDING
            .decode(encoded.trim())
            .map_err(|_| Status::invalid_argument("Basic credentials are not base64"))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Status::invalid_argument("Basic credentials are not UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| Status::invalid_argument("Basic credentials must be user:password"))?;
        match config.check_password(user, password) {
            Some(scope) => Ok(Caller {
                name: user.to_owned(),
                scope,
            }),
            None => Err(unauthenticated()),
        }
    }

    fn check_bearer(&self, token: &str) -> Result<Caller, Status> {
        let Some(config) = &self.config else {
            return Ok(Caller::anonymous());
        };
        if let Some((name, scope)) = config.check_token(token) {
            return Ok(Caller {
                name: name.to_owned(),
                scope,
            });
        }
        let presented = sha256(token.trim().as_bytes());
        let mut issued = self
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match issued.get(&presented) {
            Some((caller, expiry)) if *expiry > Instant::now() => Ok(caller.clone()),
            Some(_) => {
                issued.remove(&presented);
                Err(Status::unauthenticated(
                    "the bearer token has expired: log in again",
                ))
            }
            None => Err(unauthenticated()),
        }
    }

    /// The caller of a request, from its `authorization` header (Bearer or Basic).
    pub(crate) fn caller(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Caller, Status> {
        if !self.enabled() {
            return Ok(Caller::anonymous());
        }
        let header = metadata
            .get("authorization")
            .ok_or_else(unauthenticated)?
            .to_str()
            .map_err(|_| Status::invalid_argument("the authorization header is not text"))?;
        if let Some(token) = strip_scheme(header, "Bearer") {
            self.check_bearer(token)
        } else if let Some(basic) = strip_scheme(header, "Basic") {
            self.check_basic(basic)
        } else {
            Err(Status::unauthenticated(
                "the authorization header must be Basic or Bearer",
            ))
        }
    }

    /// The handshake: Basic credentials (or a valid bearer token) in, a fresh token out.
    pub(crate) fn handshake(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Option<(Caller, String)>, Status> {
        let Some(config) = &self.config else {
            return Ok(None);
        };
        let caller = self.caller(metadata)?;
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|_| Status::internal("no randomness for a token"))?;
        let token = general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let mut issued = self
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        issued.retain(|_, (_, expiry)| *expiry > now);
        if issued.len() >= MAX_LIVE_TOKENS
            && let Some(oldest) = issued
                .iter()
                .min_by_key(|(_, (_, expiry))| *expiry)
                .map(|(k, _)| *k)
        {
            issued.remove(&oldest);
        }
        issued.insert(
            sha256(token.as_bytes()),
            (caller.clone(), now + config.token_lifetime),
        );
        Ok(Some((caller, token)))
    }
}

fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}
