//! Configuration: defaults, then an optional TOML file, then `PORTCULLIS_*` environment
//! variables (`PORTCULLIS_SECTION__KEY`, e.g. `PORTCULLIS_SERVER__LISTEN`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use domain::SystemFeatures;
use eventstore::Durability;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The environment variable prefix; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "PORTCULLIS_";

/// Everything the server can be configured with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where and as what the server listens.
    pub server: ServerConfig,
    /// Which store to use.
    pub database: DatabaseConfig,
    /// System-level feature values.
    pub features: SystemFeatures,
    /// The first admin credential.
    pub admin: AdminConfig,
    /// Logging.
    pub log: LogConfig,
    /// Read-model maintenance.
    pub projections: ProjectionConfig,
    /// Signing keys.
    pub keys: KeysConfig,
    /// Sign-in and sessions.
    pub sessions: SessionConfig,
    /// Back-channel logout delivery.
    pub back_channel: BackChannelConfig,
}

/// `[back_channel]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackChannelConfig {
    /// Lifetime of a logout token in seconds (`exp - iat`).
    pub token_lifetime_secs: u32,
    /// Time allowed to connect to an application, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time allowed for a whole delivery attempt, in milliseconds.
    pub timeout_ms: u64,
    /// Attempts before a delivery that keeps failing recoverably is given up.
    pub max_attempts: u32,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight to one host at once.
    pub per_host_concurrency: usize,
    /// How long the end-session response may wait for the session's applications to be told,
    /// in milliseconds (0: do not wait). A dead application cannot hold the user longer.
    pub end_session_wait_ms: u64,
    /// Failed delivery attempts in a row (retried or given up) after which an application's
    /// alert is raised: one warning in the log and `portcullis_back_channel_alert` at 1, until
    /// a delivery to it succeeds.
    pub alert_consecutive_failures: u32,
    /// Special-use networks (CIDR, e.g. `10.0.0.0/8`) deliveries may reach anyway. Unset
    /// means loopback only, and only when the external URL is on localhost (development).
    #[serde(deserialize_with = "list_setting::optional")]
    pub allowed_networks: Option<Vec<String>>,
}

impl Default for BackChannelConfig {
    fn default() -> Self {
        BackChannelConfig {
            token_lifetime_secs: 120,
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
            max_attempts: 8,
            concurrency: 64,
            per_host_concurrency: 8,
            end_session_wait_ms: 0,
            alert_consecutive_failures: notify::back_channel::DEFAULT_ALERT_AFTER,
            allowed_networks: None,
        }
    }
}

impl BackChannelConfig {
    /// The notifier's settings; `external_url` decides the default allow-list.
    pub fn settings(
        &self,
        external_url: &str,
    ) -> Result<notify::back_channel::Settings, ConfigError> {
        let allowed = match &self.allowed_networks {
            Some(networks) => networks
                .iter()
                .map(|network| {
                    network.trim().parse::<ipnet::IpNet>().map_err(|error| {
                        invalid(
                            "back_channel.allowed_networks",
                            format!("{network:?} is not a network in CIDR form such as 10.0.0.0/8 ({error})"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => {
                if is_localhost(external_url) {
                    vec!["127.0.0.0/8".parse().expect("valid"), "::1/128".parse().expect("valid")]
                } else {
                    vec![]
                }
            }
        };
        let positive = |key: &'static str, value: u64| {
            if value == 0 {
                Err(invalid(key, "must be at least 1".into()))
            } else {
                Ok(value)
            }
        };
        Ok(notify::back_channel::Settings {
            token_lifetime: std::time::Duration::from_secs(positive(
                "back_channel.token_lifetime_secs",
                u64::from(self.token_lifetime_secs),
            )?),
            connect_timeout: std::time::Duration::from_millis(positive(
                "back_channel.connect_timeout_ms",
                self.connect_timeout_ms,
            )?),
            timeout: std::time::Duration::from_millis(positive(
                "back_channel.timeout_ms",
                self.timeout_ms,
            )?),
            max_attempts: positive("back_channel.max_attempts", u64::from(self.max_attempts))?
                as u32,
            concurrency: positive("back_channel.concurrency", self.concurrency as u64)? as usize,
            per_host_concurrency: positive(
                "back_channel.per_host_concurrency",
                self.per_host_concurrency as u64,
            )? as usize,
            targets: notify::back_channel::TargetPolicy { allowed },
            ..notify::back_channel::Settings::default()
        })
    }
}

/// `[keys]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Base64 of the 32-byte key that seals private signing keys at rest; unset means the file
    /// `master.key` in the data directory (created on first start). Replicas must share it.
    pub master_key: Option<String>,
    /// Days a signing key signs new tokens before a new one takes over.
    pub rotation_days: u32,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            master_key: None,
            rotation_days: 90,
        }
    }
}

/// `[sessions]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Absolute session lifetime in hours.
    pub lifetime_hours: u32,
    /// How often the server looks for sessions whose lifetime ran out, in milliseconds.
    pub expiry_check_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            lifetime_hours: 12,
            expiry_check_ms: 5_000,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The socket address to listen on.
    pub listen: SocketAddr,
    /// The URL applications reach the default instance on: its issuer.
    pub external_url: String,
    /// The default instance's name on the pages people see; unset shows the issuer's host.
    pub display_name: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            external_url: "http://localhost:8080".into(),
            display_name: None,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// A `postgres://` URL selects PostgreSQL; unset means the embedded SQLite store.
    pub url: Option<String>,
    /// Where the SQLite file (and later other local state) lives.
    pub data_dir: PathBuf,
    /// `full` (fsync every commit) or `normal` (survives process crashes, not power loss).
    pub sqlite_durability: Durability,
    /// PostgreSQL connection pool size.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            data_dir: PathBuf::from("./data"),
            sqlite_durability: Durability::Full,
            max_connections: 16,
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The initial admin token (at least 24 characters); generated and logged once if unset.
    pub initial_token: Option<String>,
    /// The system API's token (at least 24 characters): it creates, lists and removes
    /// instances. Unset, the system API is off.
    pub system_token: Option<String>,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `portcullis=debug,sqlx=warn`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[projections]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectionConfig {
    /// How often read models look for events when no wake-up arrives, in milliseconds.
    pub poll_interval_ms: u64,
    /// Events applied per transaction.
    pub batch_size: u32,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        ProjectionConfig {
            poll_interval_ms: 1_000,
            batch_size: 1_000,
        }
    }
}

/// List-valued settings: a TOML array in the file, or one comma-separated string (the only
/// form an environment variable can carry), e.g. `10.0.0.0/8,fd00::/8`.
mod list_setting {
    use serde::{Deserialize, Deserializer};

    /// Every list-valued setting, as `section.key`; the tests check each one's two forms.
    #[cfg(test)]
    pub const ALL: &[&str] = &["back_channel.allowed_networks"];

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Items(Vec<String>),
        CommaSeparated(String),
    }

    /// Reads an optional list given either way; items are trimmed and empty items dropped, so
    /// an empty variable is an empty list.
    pub fn optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        let items = match Option::<Given>::deserialize(deserializer)? {
            None => return Ok(None),
            Some(Given::Items(items)) => items,
            Some(Given::CommaSeparated(joined)) => joined.split(',').map(str::to_owned).collect(),
        };
        Ok(Some(
            items
                .into_iter()
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect(),
        ))
    }
}

/// A configuration problem, naming the setting and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `--config` does not exist.
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    /// A value could not be read (wrong type, unknown key, bad syntax).
    #[error("invalid configuration: {0}")]
    Parse(Box<figment::Error>),
    /// A value was read but is not acceptable.
    #[error("invalid configuration: {key} (environment variable {env}): {reason}")]
    Invalid {
        /// The setting, as `section.key`.
        key: &'static str,
        /// The matching environment variable.
        env: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: String) -> ConfigError {
    let env = format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    );
    ConfigError::Invalid { key, env, reason }
}

impl Config {
    /// Loads defaults, then `file` (if given), then the environment; then checks the values.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_owned()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        // These name the config file and the admin subcommands' target, token and password
        // (read by the CLI), not settings: exporting them must not break `portcullis start`.
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&[
            "config",
            "url",
            "admin_token",
            "system_token",
            "user_password",
        ]));
        let mut config: Config = figment
            .extract()
            .map_err(|error| ConfigError::Parse(Box::new(error)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        self.server.external_url = normalize_external_url(&self.server.external_url)
            .map_err(|reason| invalid("server.external_url", reason))?;
        if let Some(name) = &self.server.display_name {
            domain::instance::Instance::check_display_name(name)
                .map_err(|error| invalid("server.display_name", error.to_string()))?;
        }
        if let Some(url) = &self.database.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must be a postgres:// or postgresql:// URL; leave it unset for the embedded SQLite store".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid(
                "database.max_connections",
                "must be at least 1".into(),
            ));
        }
        if let Some(token) = &self.admin.initial_token {
            domain::admin_token::check_token(token)
                .map_err(|error| invalid("admin.initial_token", error.to_string()))?;
        }
        if let Some(token) = &self.admin.system_token {
            domain::admin_token::check_token(token)
                .map_err(|error| invalid("admin.system_token", error.to_string()))?;
            if self.admin.initial_token.as_deref() == Some(token.as_str()) {
                return Err(invalid(
                    "admin.system_token",
                    "must differ from admin.initial_token: the system token is never an instance's admin token".into(),
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|error| invalid("log.level", format!("{error} (try `info` or `debug`)")))?;
        if let Some(master_key) = &self.keys.master_key {
            jose::MasterKey::from_base64(master_key.trim())
                .map_err(|error| invalid("keys.master_key", error.to_string()))?;
        }
        if self.keys.rotation_days == 0 {
            return Err(invalid("keys.rotation_days", "must be at least 1".into()));
        }
        self.back_channel.settings(&self.server.external_url)?;
        if self.back_channel.alert_consecutive_failures == 0 {
            return Err(invalid(
                "back_channel.alert_consecutive_failures",
                "must be at least 1".into(),
            ));
        }

        if self.sessions.expiry_check_ms == 0 {
            return Err(invalid(
                "sessions.expiry_check_ms",
                "must be at least 1".into(),
            ));
        }
        if self.sessions.lifetime_hours == 0 {
            return Err(invalid(
                "sessions.lifetime_hours",
                "must be at least 1".into(),
            ));
        }
        if self.projections.poll_interval_ms == 0 || self.projections.batch_size == 0 {
            return Err(invalid(
                "projections.poll_interval_ms",
                "poll interval and batch size must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Checks an issuer URL: http(s), a host, no query or fragment; drops a trailing slash.
pub(crate) fn normalize_external_url(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|error| format!("{raw:?} is not a URL ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{raw:?} must be an http or https URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "{raw:?} must not have a query, fragment or user name (an issuer URL cannot)"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Whether `url`'s host is localhost or a loopback address.
pub(crate) fn is_localhost(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .is_some_and(|host| matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_urls_are_checked_and_normalized() {
        let cases = [
            ("http://localhost:8080", Ok("http://localhost:8080")),
            ("https://id.example.com/", Ok("https://id.example.com")),
            (
                "https://example.com/tenant/a/",
                Ok("https://example.com/tenant/a"),
            ),
            ("ftp://example.com", Err(())),
            ("https://example.com/?x=1", Err(())),
            ("https://example.com/#frag", Err(())),
            ("localhost:8080", Err(())),
            ("not a url", Err(())),
        ];
        for (raw, expected) in cases {
            let got = normalize_external_url(raw);
            assert_eq!(
                got.as_deref().map_err(drop),
                expected.map_err(drop),
                "{raw}"
            );
        }
    }

    #[test]
    fn the_system_token_is_checked_and_never_the_initial_admin_token() {
        let token = "system-token-0123456789abcdef";
        let mut config = Config::default();
        config.admin.system_token = Some("short".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("admin.system_token")
        );
        config.admin.system_token = Some(token.into());
        config.admin.initial_token = Some(token.into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("differ")
        );
        config.admin.initial_token = None;
        config.validate().unwrap();
    }

    /// The value of list setting `key` in a loaded configuration.
    fn list_value(config: &Config, key: &str) -> Option<Vec<String>> {
        match key {
            "back_channel.allowed_networks" => config.back_channel.allowed_networks.clone(),
            other => panic!("list setting {other} is missing from this test"),
        }
    }

    #[test]
    // The closure's error type is figment's own (`Jail::expect_with` fixes the signature).
    #[allow(clippy::result_large_err)]
    fn every_list_setting_takes_a_comma_separated_variable_and_a_toml_array() {
        for key in list_setting::ALL {
            let (section, name) = key.split_once('.').unwrap();
            let variable = format!("{ENV_PREFIX}{section}__{name}").to_ascii_uppercase();
            let expected = Some(vec!["127.0.0.0/8".to_owned(), "10.0.0.0/8".to_owned()]);
            figment::Jail::expect_with(|jail| {
                jail.set_env(&variable, "127.0.0.0/8, 10.0.0.0/8");
                let config = Config::load(None).map_err(|error| error.to_string())?;
                assert_eq!(list_value(&config, key), expected, "{variable}");

                jail.set_env(&variable, "127.0.0.0/8");
                let config = Config::load(None).map_err(|error| error.to_string())?;
                assert_eq!(
                    list_value(&config, key),
                    Some(vec!["127.0.0.0/8".to_owned()]),
                    "{variable} with one item"
                );

                jail.set_env(&variable, "");
                let config = Config::load(None).map_err(|error| error.to_string())?;
                assert_eq!(list_value(&config, key), Some(vec![]), "{variable} empty");

                jail.clear_env();
                jail.create_file(
                    "portcullis.toml",
                    &format!("[{section}]\n{name} = [\"127.0.0.0/8\", \"10.0.0.0/8\"]\n"),
                )?;
                let config = Config::load(Some(Path::new("portcullis.toml")))
                    .map_err(|error| error.to_string())?;
                assert_eq!(list_value(&config, key), expected, "{key} as a TOML array");
                Ok(())
            });
        }
    }

    #[test]
    fn errors_name_the_key_and_its_variable() {
        let error = invalid("server.external_url", "bad".into()).to_string();
        assert!(
            error.contains("server.external_url")
                && error.contains("PORTCULLIS_SERVER__EXTERNAL_URL"),
            "{error}"
        );
    }
}
