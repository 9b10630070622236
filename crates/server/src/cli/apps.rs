//! `portcullis app …`

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::client::ApiClient;
use super::output::{self, or_dash};
use crate::http::admin::application_settings::ApplicationConfig;
use crate::http::admin::applications::{
    ApplicationBody, ApplicationList, CreatedApplication, NewClientSecret,
};

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
    /// Token endpoint authentication (default: client_secret_basic, or none when --public).
    #[arg(long, value_parser = ["client_secret_basic", "client_secret_post", "none"])]
    auth_method: Option<String>,
    /// ID token signing algorithm (default RS256).
    #[arg(long, value_parser = ["RS256", "ES256", "EdDSA"])]
    alg: Option<String>,
    /// An allowed grant (repeat; default: authorization_code and refresh_token).
    #[arg(long = "grant-type", value_parser = ["authorization_code", "refresh_token"])]
    grant_types: Vec<String>,
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
    /// Require `sid` in logout tokens.
    #[arg(long, requires = "back_channel_logout_uri")]
    back_channel_logout_session_required: bool,
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
        auth_method,
        alg,
        grant_types,
        access_token_lifetime,
        id_token_lifetime,
        refresh_token_lifetime,
        back_channel_logout_uri,
        back_channel_logout_session_required,
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
    let optional = [
        ("auth_method", auth_method.map(Value::from)),
        ("id_token_signing_alg", alg.map(Value::from)),
        (
            "access_token_lifetime_secs",
            access_token_lifetime.map(Value::from),
        ),
        ("id_token_lifetime_secs", id_token_lifetime.map(Value::from)),
        (
            "refresh_token_lifetime_secs",
            refresh_token_lifetime.map(Value::from),
        ),
        (
            "back_channel_logout_uri",
            back_channel_logout_uri.map(Value::from),
        ),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    if back_channel_logout_session_required {
        body.insert("back_channel_logout_session_required".into(), json!(true));
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
        ("has_client_secret", app.has_client_secret.to_string()),
        ("created_at", app.created_at.clone()),
    ]
}
