//! `portcullis app …`

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::client::ApiClient;
use super::output::{self, or_dash};
use crate::http::admin::application_settings::ApplicationConfig;
use crate::http::admin::applications::{
    ApplicationBody, ApplicationList, CreatedApplication, NewClientSecret,
};

/// Settings `app create` and `app update` both take; each one given is sent, the others are
/// left to the server's default (create) or as they are (update).
#[derive(Debug, Args)]
pub struct Settings {
    /// Token endpoint authentication (on create: client_secret_basic, or none when --public).
    #[arg(long, value_parser = ["client_secret_basic", "client_secret_post", "none"])]
    auth_method: Option<String>,
    /// ID token signing algorithm (on create: RS256 unless given).
    #[arg(long, value_parser = ["RS256", "ES256", "EdDSA"])]
    alg: Option<String>,
    /// Access token lifetime in seconds.
    #[arg(long)]
    access_token_lifetime: Option<u32>,
    /// ID token lifetime in seconds.
    #[arg(long)]
    id_token_lifetime: Option<u32>,
    /// Refresh token lifetime in seconds.
    #[arg(long)]
    refresh_token_lifetime: Option<u32>,
    /// Where back-channel logout tokens are POSTed.
    #[arg(long)]
    back_channel_logout_uri: Option<String>,
    /// The page a browser loads in a hidden iframe on sign-out (front-channel logout).
    #[arg(long)]
    front_channel_logout_uri: Option<String>,
    /// A scope the application may request with the client credentials grant (repeat for
    /// several; on update, replaces the list).
    #[arg(long = "client-credentials-scope")]
    client_credentials_scopes: Vec<String>,
}

impl Settings {
    /// Writes the given settings into `body` under the API's field names.
    fn apply(self, body: &mut Map<String, Value>) {
        let given = [
            ("auth_method", self.auth_method.map(Value::from)),
            ("id_token_signing_alg", self.alg.map(Value::from)),
            (
                "access_token_lifetime_secs",
                self.access_token_lifetime.map(Value::from),
            ),
            (
                "id_token_lifetime_secs",
                self.id_token_lifetime.map(Value::from),
            ),
            (
                "refresh_token_lifetime_secs",
                self.refresh_token_lifetime.map(Value::from),
            ),
            (
                "back_channel_logout_uri",
                self.back_channel_logout_uri.map(Value::from),
            ),
            (
                "front_channel_logout_uri",
                self.front_channel_logout_uri.map(Value::from),
            ),
        ];
        for (field, value) in given {
            if let Some(value) = value {
                body.insert(field.into(), value);
            }
        }
        if !self.client_credentials_scopes.is_empty() {
            body.insert(
                "client_credentials_scopes".into(),
                json!(self.client_credentials_scopes),
            );
        }
    }
}

/// The flags of `app create`.
#[derive(Debug, Args)]
pub struct CreateApp {
    /// Display name (shown on the sign-in page).
    #[arg(long)]
    name: String,
    /// A redirect URI (repeat for several).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// A post-logout redirect URI (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (browser or native app; PKCE, no secret).
    #[arg(long)]
    public: bool,
    /// An allowed grant (repeat; default: authorization_code and refresh_token).
    #[arg(long = "grant-type", value_parser = ["authorization_code", "refresh_token", "client_credentials"])]
    grant_types: Vec<String>,
    #[command(flatten)]
    settings: Settings,
    /// Require `sid` in logout tokens.
    #[arg(long, requires = "back_channel_logout_uri")]
    back_channel_logout_session_required: bool,
    /// Require `iss` and `sid` on the front-channel logout URI.
    #[arg(long, requires = "front_channel_logout_uri")]
    front_channel_logout_session_required: bool,
}

/// The flags of `app update`: each given one replaces that setting; the rest stay as they are.
#[derive(Debug, Args)]
pub struct UpdateApp {
    /// The application's client_id.
    client_id: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// A redirect URI (repeat for several; replaces the list).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// A post-logout redirect URI (repeat for several; replaces the list).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Remove every post-logout redirect URI.
    #[arg(long, conflicts_with = "post_logout_redirect_uris")]
    no_post_logout_redirect_uris: bool,
    /// An allowed grant (repeat; replaces the list).
    #[arg(long = "grant-type", value_parser = ["authorization_code", "refresh_token", "client_credentials"])]
    grant_types: Vec<String>,
    #[command(flatten)]
    settings: Settings,
    /// Stop back-channel logout for this application.
    #[arg(long, conflicts_with = "back_channel_logout_uri")]
    no_back_channel_logout: bool,
    /// Remove every client credentials scope.
    #[arg(long, conflicts_with = "client_credentials_scopes")]
    no_client_credentials_scopes: bool,
    /// Whether logout tokens must carry `sid` (`true` or `false`).
    #[arg(long)]
    back_channel_logout_session_required: Option<bool>,
    /// Stop front-channel logout for this application.
    #[arg(long, conflicts_with = "front_channel_logout_uri")]
    no_front_channel_logout: bool,
    /// Whether the front-channel logout URI gets `iss` and `sid` (`true` or `false`).
    #[arg(long)]
    front_channel_logout_session_required: Option<bool>,
}

/// Application subcommands.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an OIDC application; a confidential client's secret is printed once.
    Create(CreateApp),
    /// List applications by client_id.
    List {
        /// Page size (1 to 500).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start after this client_id.
        #[arg(long)]
        after: Option<String>,
    },
    /// Change settings of an application; only the given flags change.
    Update(UpdateApp),
    /// Show one application.
    Show {
        /// The application's client_id.
        client_id: String,
    },
    /// Remove an application.
    Delete {
        /// The application's client_id.
        client_id: String,
    },
    /// Replace a confidential application's secret; the new one is printed once.
    NewSecret {
        /// The application's client_id.
        client_id: String,
    },
}

/// Runs an application subcommand.
pub async fn run(client: &ApiClient, json: bool, command: AppCommand) -> anyhow::Result<()> {
    match command {
        AppCommand::Create(create) => {
            let answer = client
                .post(&["applications"], Some(&create_body(create)))
                .await?;
            if json {
                output::json(&answer.body);
            } else {
                let created: CreatedApplication = answer.parse()?;
                println!("Created application {}.", created.application.config.name);
                let mut rows = rows(&created.application);
                let secret_shown = created.client_secret.is_some();
                rows.extend(
                    created
                        .client_secret
                        .map(|secret| ("client_secret", secret)),
                );
                output::fields(&rows);
                if secret_shown {
                    println!("The client secret is shown only now; store it safely.");
                }
            }
        }
        AppCommand::List { limit, after } => {
            let mut query = vec![("limit", limit.to_string())];
            query.extend(after.map(|after| ("after", after)));
            let answer = client.get(&["applications"], &query).await?;
            if json {
                output::json(&answer.body);
            } else {
                let list: ApplicationList = answer.parse()?;
                let rows: Vec<Vec<String>> = list
                    .applications
                    .iter()
                    .map(|app| {
                        vec![
                            app.client_id.clone(),
                            app.config.name.clone(),
                            enum_name(&app.config.client_type),
                            app.config.redirect_uris.join(" "),
                        ]
                    })
                    .collect();
                output::table(&["CLIENT_ID", "NAME", "TYPE", "REDIRECT_URIS"], &rows);
                if let Some(next) = list.next_after {
                    println!("(more: --after {next})");
                }
            }
        }
        AppCommand::Update(update) => {
            let current = client
                .get(&["applications", &update.client_id], &[])
                .await?;
            let client_id = update.client_id.clone();
            let current: ApplicationBody = current.parse()?;
            let body = update_body(serde_json::to_value(&current.config)?, update);
            let answer = client
                .send(
                    reqwest::Method::PUT,
                    &["applications", &client_id],
                    &[],
                    Some(&body),
                )
                .await?;
            if json {
                output::json(&answer.body);
            } else {
                println!("Updated application {client_id}.");
                output::fields(&rows(&answer.parse()?));
            }
        }
        AppCommand::Show { client_id } => {
            let answer = client.get(&["applications", &client_id], &[]).await?;
            if json {
                output::json(&answer.body);
            } else {
                output::fields(&rows(&answer.parse()?));
            }
        }
        AppCommand::Delete { client_id } => {
            let answer = client.delete(&["applications", &client_id]).await?;
            if json {
                output::json(&answer.body);
            } else {
                println!("Deleted application {client_id}.");
            }
        }
        AppCommand::NewSecret { client_id } => {
            let answer = client
                .post(&["applications", &client_id, "secret"], None)
                .await?;
            if json {
                output::json(&answer.body);
            } else {
                let secret: NewClientSecret = answer.parse()?;
                output::fields(&[
                    ("client_id", secret.client_id),
                    ("client_secret", secret.client_secret),
                ]);
                println!("The old secret no longer works; the new one is shown only now.");
            }
        }
    }
    Ok(())
}

/// The `POST /applications` body: only what was given, so the server's defaults apply.
fn create_body(command: CreateApp) -> Value {
    let CreateApp {
        name,
        redirect_uris,
        post_logout_redirect_uris,
        public,
        grant_types,
        settings,
        back_channel_logout_session_required,
        front_channel_logout_session_required,
    } = command;
    let mut body = Map::new();
    body.insert("name".into(), json!(name));
    body.insert(
        "client_type".into(),
        json!(if public { "public" } else { "confidential" }),
    );
    body.insert("redirect_uris".into(), json!(redirect_uris));
    body.insert(
        "post_logout_redirect_uris".into(),
        json!(post_logout_redirect_uris),
    );
    if !grant_types.is_empty() {
        body.insert("grant_types".into(), json!(grant_types));
    }
    settings.apply(&mut body);
    for (field, required) in [
        (
            "back_channel_logout_session_required",
            back_channel_logout_session_required,
        ),
        (
            "front_channel_logout_session_required",
            front_channel_logout_session_required,
        ),
    ] {
        if required {
            body.insert(field.into(), json!(true));
        }
    }
    Value::Object(body)
}

/// The `PUT /applications/{client_id}` body: the current settings with the given flags laid
/// over them (the API replaces every setting, so none may be left out).
fn update_body(current: Value, update: UpdateApp) -> Value {
    let UpdateApp {
        client_id: _,
        name,
        redirect_uris,
        post_logout_redirect_uris,
        no_post_logout_redirect_uris,
        grant_types,
        settings,
        no_back_channel_logout,
        no_client_credentials_scopes,
        back_channel_logout_session_required,
        no_front_channel_logout,
        front_channel_logout_session_required,
    } = update;
    let mut body = match current {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let lists = [
        ("redirect_uris", redirect_uris),
        ("post_logout_redirect_uris", post_logout_redirect_uris),
        ("grant_types", grant_types),
    ];
    for (field, values) in lists {
        if !values.is_empty() {
            body.insert(field.into(), json!(values));
        }
    }
    if no_post_logout_redirect_uris {
        body.insert("post_logout_redirect_uris".into(), json!([]));
    }
    settings.apply(&mut body);
    if let Some(name) = name {
        body.insert("name".into(), json!(name));
    }
    if no_client_credentials_scopes {
        body.insert("client_credentials_scopes".into(), json!([]));
    }
    let channels = [
        (
            "back_channel_logout",
            back_channel_logout_session_required,
            no_back_channel_logout,
        ),
        (
            "front_channel_logout",
            front_channel_logout_session_required,
            no_front_channel_logout,
        ),
    ];
    for (channel, required, stop) in channels {
        if let Some(required) = required {
            body.insert(format!("{channel}_session_required"), json!(required));
        }
        if stop {
            body.insert(format!("{channel}_uri"), Value::Null);
            body.insert(format!("{channel}_session_required"), json!(false));
        }
    }
    Value::Object(body)
}

/// A unit enum's wire name (`confidential`, `RS256`), as the API spells it.
fn enum_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => "?".into(),
    }
}

/// What `app show` prints, label by label.
fn rows(app: &ApplicationBody) -> Vec<(&'static str, String)> {
    let config: &ApplicationConfig = &app.config;
    let list = |uris: &[String]| {
        if uris.is_empty() {
            "-".to_owned()
        } else {
            uris.join(" ")
        }
    };
    vec![
        ("client_id", app.client_id.clone()),
        ("name", config.name.clone()),
        ("client_type", enum_name(&config.client_type)),
        ("auth_method", enum_name(&config.auth_method)),
        ("redirect_uris", list(&config.redirect_uris)),
        (
            "post_logout_redirect_uris",
            list(&config.post_logout_redirect_uris),
        ),
        (
            "grant_types",
            config
                .grant_types
                .iter()
                .map(enum_name)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "id_token_signing_alg",
            enum_name(&config.id_token_signing_alg),
        ),
        (
            "token_lifetimes",
            format!(
                "access {}s, id {}s, refresh {}s",
                config.access_token_lifetime_secs,
                config.id_token_lifetime_secs,
                config.refresh_token_lifetime_secs
            ),
        ),
        (
            "back_channel_logout_uri",
            or_dash(config.back_channel_logout_uri.as_deref()),
        ),
        (
            "back_channel_logout_session_required",
            config.back_channel_logout_session_required.to_string(),
        ),
        (
            "front_channel_logout_uri",
            or_dash(config.front_channel_logout_uri.as_deref()),
        ),
        (
            "front_channel_logout_session_required",
            config.front_channel_logout_session_required.to_string(),
        ),
        (
            "client_credentials_scopes",
            list(&config.client_credentials_scopes),
        ),
        ("has_client_secret", app.has_client_secret.to_string()),
        ("created_at", app.created_at.clone()),
    ]
}
