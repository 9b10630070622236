//! Domain commands and read models (setup, features, users, applications) against SQLite and PostgreSQL.

use std::sync::Arc;

use chrono::TimeZone;
use domain::session_logout::DeliveryStage;
use domain::{
    Domain, DomainError, DomainOptions, Feature, FixedClock, SetupRequest, SystemFeatures,
};
use eventstore::EventStore;
use eventstore::testing::{Harness, sqlite};

fn domain(store: Arc<dyn EventStore>, system_features: SystemFeatures) -> Domain {
    let clock = Arc::new(FixedClock(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
            .unwrap(),
    ));
    Domain::new(
        store,
        clock,
        DomainOptions {
            system_features,
            ..Default::default()
        },
    )
}

/// Whether a token the domain issued is active now.
async fn is_active(domain: &Domain, instance: &str, token: &str) -> bool {
    domain
        .token(instance, token)
        .await
        .unwrap()
        .expect("a token the domain issued")
        .1
}

fn request(url: &str, token: Option<&str>) -> SetupRequest {
    SetupRequest {
        external_url: url.into(),
        initial_admin_token: token.map(Into::into),
        display_name: None,
    }
}

eventstore::on_both_backends!(
    first_start_creates_default_instance_and_shows_a_token_once,
    configured_token_is_used_and_validated,
    concurrent_first_starts_create_one_instance,
    instance_feature_value_wins_over_system,
    instances_are_created_with_a_first_token_and_removed,
);

/// The system API's commands: an instance answers on its own origin with its own first admin
/// token; a taken origin is refused; removal takes it off every host at once and, with no
/// session left to end, removes it (its events stay).
async fn instances_are_created_with_a_first_token_and_removed(h: Harness) {
    let domain = domain(h.store.clone(), SystemFeatures::default());
    domain.install().await.unwrap();
    let setup = domain
        .setup(&request(
            "http://localhost:8080",
            Some("initial-token-0123456789abcdef"),
        ))
        .await
        .unwrap();
    let created = domain
        .create_instance("https://tenant.example.com/a", " Tenant ")
        .await
        .unwrap();
    let tenant = created.instance.clone();
    assert_eq!(
        (
            tenant.display_name.as_str(),
            tenant.is_default,
            tenant.removing
        ),
        ("Tenant", false, false)
    );
    let admin = domain
        .authenticate_admin(&created.admin_token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.instance_id, tenant.instance_id);
    assert_eq!(
        domain
            .instance_for_origin("https://tenant.example.com")
            .await
            .unwrap(),
        tenant
    );
    assert!(matches!(
        domain
            .instance_for_origin("https://elsewhere.example")
            .await,
        Err(DomainError::NotFound(_))
    ));
    for taken in ["https://tenant.example.com/b", "http://localhost:8080"] {
        assert!(
            matches!(
                domain.create_instance(taken, "Again").await,
                Err(DomainError::StateConflict(_))
            ),
            "{taken}"
        );
    }
    assert!(matches!(
        domain.create_instance("https://x.example", " ").await,
        Err(DomainError::Invalid {
            field: "display_name",
            ..
        })
    ));
    assert!(matches!(
        domain
            .start_instance_removal(&setup.instance.instance_id)
            .await,
        Err(DomainError::StateConflict(_))
    ));

    domain
        .start_instance_removal(&tenant.instance_id)
        .await
        .unwrap();
    assert!(domain.instance(&tenant.instance_id).await.unwrap().removing);
    assert!(matches!(
        domain
            .instance_for_origin("https://tenant.example.com")
            .await,
        Err(DomainError::NotFound(_))
    ));
    assert!(
        domain
            .authenticate_admin(&created.admin_token)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!domain.continue_instance_removals().await.unwrap());
    assert!(matches!(
        domain.instance(&tenant.instance_id).await,
        Err(DomainError::NotFound(_))
    ));
    assert_eq!(
        domain.list_instances().await.unwrap(),
        std::slice::from_ref(&setup.instance)
    );
    assert!(matches!(
        domain.start_instance_removal(&tenant.instance_id).await,
        Err(DomainError::NotFound(_))
    ));
    // The origin is free again; two creations racing for it: exactly one wins.
    let (first, second) = tokio::join!(
        domain.create_instance("https://tenant.example.com", "First"),
        domain.create_instance("https://tenant.example.com/other", "Second"),
    );
    assert_eq!(
        [&first, &second]
            .iter()
            .filter(|created| created.is_ok())
            .count(),
        1,
        "{first:?} {second:?}"
    );
    assert!(
        [first, second]
            .into_iter()
            .any(|created| matches!(created, Err(DomainError::StateConflict(_))))
    );
    // The events stay, for audit.
    let events = h
        .store
        .events(&eventstore::EventQuery {
            instance_id: Some(tenant.instance_id.clone()),
            after: eventstore::Position::START,
            aggregate_types: vec!["instance".into()],
            event_types: vec![],
            limit: 100,
        })
        .await
        .unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "instance.added",
            "instance.display_name.changed",
            "instance.removal.started",
            "instance.removed"
        ]
    );
}

async fn first_start_creates_default_instance_and_shows_a_token_once(h: Harness) {
    let first = domain(h.store.clone(), SystemFeatures::default());
    first.install().await.unwrap();
    let setup = first
        .setup(&request("http://localhost:8080", None))
        .await
        .unwrap();
    assert!(setup.instance.is_default);
    assert_eq!(setup.instance.external_url, "http://localhost:8080");
    let token = setup
        .generated_admin_token
        .expect("a token is generated on first start");
    let principal = first
        .authenticate_admin(&token)
        .await
        .unwrap()
        .expect("the token works");
    assert_eq!(principal.instance_id, setup.instance.instance_id);
    assert!(
        first
            .authenticate_admin("pcat_wrong")
            .await
            .unwrap()
            .is_none()
    );

    // A restart (new store, new domain) finds the instance and shows no token; a changed
    // external URL is brought in line with configuration.
    let restarted = domain(h.reopen.open().await.unwrap(), SystemFeatures::default());
    restarted.install().await.unwrap();
    let again = restarted
        .setup(&request("https://id.example.com", None))
        .await
        .unwrap();
    assert_eq!(again.generated_admin_token, None);
    assert_eq!(again.instance.instance_id, setup.instance.instance_id);
    assert_eq!(again.instance.external_url, "https://id.example.com");
    assert_eq!(restarted.default_instance().await.unwrap(), again.instance);
    restarted.check_ready().await.unwrap();
}

async fn configured_token_is_used_and_validated(h: Harness) {
    let domain = domain(h.store.clone(), SystemFeatures::default());
    domain.install().await.unwrap();
    let error = domain
        .setup(&request("http://localhost:8080", Some("too-short")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DomainError::Invalid {
                field: "admin.initial_token",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        domain.default_instance().await.is_err(),
        "nothing was created"
    );

    let token = "a-configured-admin-token-0123456789";
    let setup = domain
        .setup(&request("http://localhost:8080", Some(token)))
        .await
        .unwrap();
    assert_eq!(setup.generated_admin_token, None);
    assert!(domain.authenticate_admin(token).await.unwrap().is_some());
}

async fn concurrent_first_starts_create_one_instance(h: Harness) {
    let mut starts = Vec::new();
    for _ in 0..4 {
        let domain = domain(h.reopen.open().await.unwrap(), SystemFeatures::default());
        domain.install().await.unwrap();
        starts.push(tokio::spawn(async move {
            domain.setup(&request("http://localhost:8080", None)).await
        }));
    }
    let mut instances = Vec::new();
    let mut tokens = 0;
    for start in starts {
        let outcome = start.await.unwrap().unwrap();
        tokens += usize::from(outcome.generated_admin_token.is_some());
        instances.push(outcome.instance.instance_id);
    }
    instances.dedup();
    assert_eq!(
        instances.len(),
        1,
        "every process sees the same default instance"
    );
    assert_eq!(
        tokens, 1,
        "exactly one process created (and shows) the token"
    );
}

async fn instance_feature_value_wins_over_system(h: Harness) {
    let system_on = SystemFeatures {
        back_channel_logout: true,
        ..SystemFeatures::default()
    };
    let domain = domain(h.store.clone(), system_on);
    domain.install().await.unwrap();
    let token = domain
        .setup(&request("http://localhost:8080", None))
        .await
        .unwrap()
        .generated_admin_token
        .unwrap();
    let admin = domain.authenticate_admin(&token).await.unwrap().unwrap();

    let initial = domain
        .feature(&admin.instance_id, Feature::BackChannelLogout)
        .await
        .unwrap();
    assert_eq!(
        (initial.system, initial.instance, initial.effective),
        (true, None, true)
    );

    let off = domain
        .set_feature(&admin, Feature::BackChannelLogout, false)
        .await
        .unwrap();
    assert_eq!((off.instance, off.effective), (Some(false), false));
    // Setting the same value again records nothing new.
    domain
        .set_feature(&admin, Feature::BackChannelLogout, false)
        .await
        .unwrap();
    let instance_events = h
        .store
        .aggregate_events(&eventstore::AggregateRef::new(
            &admin.instance_id,
            "instance",
            &admin.instance_id,
        ))
        .await
        .unwrap();
    assert_eq!(
        instance_events
            .iter()
            .filter(|e| e.event_type == "instance.feature.set")
            .count(),
        1
    );
    assert_eq!(instance_events.last().unwrap().creator, admin.token_id);

    let reset = domain
        .reset_feature(&admin, Feature::BackChannelLogout)
        .await
        .unwrap();
    assert_eq!((reset.instance, reset.effective), (None, true));
}

#[tokio::test]
async fn unreadable_instance_event_is_named() {
    let h = sqlite().await;
    let domain = domain(h.store.clone(), SystemFeatures::default());
    domain.install().await.unwrap();
    let setup = domain
        .setup(&request("http://localhost:8080", None))
        .await
        .unwrap();
    let instance_id = setup.instance.instance_id;
    let foreign = eventstore::AggregateAppend {
        aggregate: eventstore::AggregateRef::new(&instance_id, "instance", &instance_id),
        expected_sequence: 1,
        events: vec![eventstore::NewEvent {
            event_type: "instance.teleported".into(),
            revision: 1,
            payload: "{}".into(),
            creator: "someone else".into(),
            created_at: chrono::Utc::now(),
        }],
    };
    // Written as a newer release would, beside this one: through a store of its own (this
    // domain's store refuses to record an event its inline read models cannot read).
    let newer = h.reopen.open().await.unwrap();
    newer.append(&[foreign]).await.unwrap();
    let admin = domain::AdminPrincipal {
        instance_id: instance_id.clone(),
        token_id: "t".into(),
    };
    let error = domain
        .set_feature(&admin, Feature::BackChannelLogout, true)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("instance.teleported") && message.contains("unknown event type"),
        "{message}"
    );
    // Nothing was appended after the unreadable event.
    let events = h
        .store
        .aggregate_events(&eventstore::AggregateRef::new(
            &instance_id,
            "instance",
            &instance_id,
        ))
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
}

/// The payloads of a session's `session.terminated` events.
async fn terminations(h: &Harness, instance: &str, session_id: &str) -> Vec<serde_json::Value> {
    h.store
        .aggregate_events(&eventstore::AggregateRef::new(
            instance, "session", session_id,
        ))
        .await
        .unwrap()
        .iter()
        .filter(|event| event.event_type == "session.terminated")
        .map(|event| serde_json::from_str(&event.payload).unwrap())
        .collect()
}

mod users {
    use super::*;

    pub(super) const ORIGIN: &str = "https://id.example.com";
    use domain::{AdminPrincipal, NewUser, Profile, UserState};

    pub(super) async fn admin(domain: &Domain) -> AdminPrincipal {
        let token = domain
            .setup(&request("http://localhost:8080", None))
            .await
            .unwrap()
            .generated_admin_token
            .unwrap();
        domain.authenticate_admin(&token).await.unwrap().unwrap()
    }

    pub(super) fn alice() -> NewUser {
        NewUser {
            username: "Alice".into(),
            profile: Profile {
                email: Some("alice@example.com".into()),
                ..Profile::default()
            },
            password: "correct horse battery".into(),
        }
    }

    eventstore::on_both_backends!(
        login_names_are_unique_and_freed_on_removal,
        sign_in_checks_password_and_state
    );

    async fn login_names_are_unique_and_freed_on_removal(h: Harness) {
        let domain = domain(h.store.clone(), SystemFeatures::default());
        domain.install().await.unwrap();
        let admin = admin(&domain).await;
        let (first, second) = tokio::join!(
            domain.add_user(&admin, alice()),
            domain.add_user(&admin, alice())
        );
        let (created, refused) = match (first, second) {
            (Ok(user), Err(error)) | (Err(error), Ok(user)) => (user, error),
            other => panic!("exactly one of two concurrent registrations must win: {other:?}"),
        };
        assert!(
            matches!(
                refused,
                DomainError::Invalid {
                    field: "username",
                    ..
                }
            ),
            "{refused}"
        );
        let mut lower = alice();
        lower.username = "alice".into();
        assert!(matches!(
            domain.add_user(&admin, lower.clone()).await,
            Err(DomainError::Invalid {
                field: "username",
                ..
            })
        ));

        domain
            .remove_user(&admin, &created.user_id, ORIGIN)
            .await
            .unwrap();
        assert!(matches!(
            domain.user(&admin.instance_id, &created.user_id).await,
            Err(DomainError::NotFound(_))
        ));
        let again = domain.add_user(&admin, lower).await.unwrap();
        assert_ne!(again.user_id, created.user_id);
    }

    async fn sign_in_checks_password_and_state(h: Harness) {
        let domain = domain(h.store.clone(), SystemFeatures::default());
        domain.install().await.unwrap();
        let admin = admin(&domain).await;
        let user = domain.add_user(&admin, alice()).await.unwrap();
        assert!(user.password_hash.starts_with("$argon2id$"));
        let instance = &admin.instance_id;
        let check = |login: &'static str, password: &'static str| {
            domain.check_password(instance, login, password.into())
        };
        assert_eq!(
            check("alice", "correct horse battery")
                .await
                .unwrap()
                .unwrap()
                .user_id,
            user.user_id
        );
        assert!(
            check("ALICE@example.com", "correct horse battery")
                .await
                .unwrap()
                .is_some(),
            "by e-mail"
        );
        assert!(check("alice", "wrong password").await.unwrap().is_none());
        assert!(
            check("nobody", "correct horse battery")
                .await
                .unwrap()
                .is_none()
        );

        let inactive = domain
            .deactivate_user(&admin, &user.user_id, ORIGIN)
            .await
            .unwrap();
        assert_eq!(inactive.state, UserState::Inactive);
        assert!(
            check("alice", "correct horse battery")
                .await
                .unwrap()
                .is_none(),
            "inactive users cannot sign in"
        );
        domain.reactivate_user(&admin, &user.user_id).await.unwrap();
        domain
            .set_password(&admin, &user.user_id, "a new long password".into(), ORIGIN)
            .await
            .unwrap();
        assert!(
            check("alice", "correct horse battery")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            check("alice", "a new long password")
                .await
                .unwrap()
                .is_some()
        );
        let short = domain
            .set_password(&admin, &user.user_id, "short".into(), ORIGIN)
            .await
            .unwrap_err();
        assert!(matches!(
            short,
            DomainError::Invalid {
                field: "password",
                ..
            }
        ));
        assert_eq!(domain.users(instance, "", 10).await.unwrap().len(), 1);
    }
}

mod applications {
    use super::*;
    use domain::application::{ClientType, OidcConfig};

    fn config() -> OidcConfig {
        serde_json::from_value(serde_json::json!({
            "name": "Web app",
            "client_type": "confidential",
            "auth_method": "client_secret_basic",
            "redirect_uris": ["https://app.example.com/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "id_token_signing_alg": "RS256",
            "access_token_lifetime_secs": 3600,
            "id_token_lifetime_secs": 3600,
            "refresh_token_lifetime_secs": 86400,
            "back_channel_logout_uri": "https://app.example.com/backchannel"
        }))
        .unwrap()
    }

    eventstore::on_both_backends!(applications_are_created_changed_and_authenticated);

    async fn applications_are_created_changed_and_authenticated(h: Harness) {
        let domain = domain(h.store.clone(), SystemFeatures::default());
        domain.install().await.unwrap();
        let token = domain
            .setup(&request("http://localhost:8080", None))
            .await
            .unwrap()
            .generated_admin_token
            .unwrap();
        let admin = domain.authenticate_admin(&token).await.unwrap().unwrap();
        let instance = &admin.instance_id;

        let (app, secret) = domain.add_application(&admin, config()).await.unwrap();
        let secret = secret.unwrap();
        assert_eq!(app.config, config());
        assert!(
            domain
                .authenticate_client(instance, &app.client_id, &secret)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            domain
                .authenticate_client(instance, &app.client_id, "wrong")
                .await
                .unwrap()
                .is_none()
        );

        let new_secret = domain
            .regenerate_client_secret(&admin, &app.client_id)
            .await
            .unwrap();
        assert!(
            domain
                .authenticate_client(instance, &app.client_id, &secret)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            domain
                .authenticate_client(instance, &app.client_id, &new_secret)
                .await
                .unwrap()
                .is_some()
        );

        let mut changed = config();
        changed.name = "Renamed".into();
        changed.back_channel_logout_uri = None;
        assert_eq!(
            domain
                .change_application(&admin, &app.client_id, changed.clone())
                .await
                .unwrap()
                .config,
            changed
        );
        let mut bad = changed.clone();
        bad.client_type = ClientType::Public;
        assert!(
            domain
                .change_application(&admin, &app.client_id, bad)
                .await
                .is_err()
        );
        assert_eq!(
            domain.applications(instance, "", 10).await.unwrap().len(),
            1
        );

        domain
            .remove_application(&admin, &app.client_id)
            .await
            .unwrap();
        assert!(matches!(
            domain.application(instance, &app.client_id).await,
            Err(DomainError::NotFound(_))
        ));
    }
}

mod sessions {
    use std::time::Duration;

    use super::users::{ORIGIN, admin, alice};
    use super::*;
    use domain::TerminationReason;

    eventstore::on_both_backends!(
        sessions_end_every_way_with_their_origin,
        lapsed_sessions_end_together
    );

    /// The sweeper ends the lapsed sessions of an instance in one transaction (more than one
    /// multi-row statement carries), as expired, with the instance's URL as origin; a session
    /// still within its lifetime stays.
    async fn lapsed_sessions_end_together(h: Harness) {
        // The real clock: the sessions must actually run out.
        let domain = Domain::new(
            h.store.clone(),
            Arc::new(super::grants::RealClock),
            DomainOptions::default(),
        );
        domain.install().await.unwrap();
        let admin = admin(&domain).await;
        let instance = admin.instance_id.clone();
        let user = domain.add_user(&admin, alice()).await.unwrap();
        let count = eventstore::KEYS_PER_STATEMENT + 5;
        let mut lapsing = Vec::new();
        for _ in 0..count {
            let (session, _) = domain
                .create_session(&instance, &user.user_id, Duration::from_secs(1), None)
                .await
                .unwrap();
            lapsing.push(session.session_id);
        }
        let (staying, _) = domain
            .create_session(&instance, &user.user_id, Duration::from_secs(3600), None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await;

        assert_eq!(domain.expire_sessions(1_000).await.unwrap(), count);
        let mut transactions = std::collections::BTreeSet::new();
        for session_id in &lapsing {
            let events = h
                .store
                .aggregate_events(&eventstore::AggregateRef::new(
                    &instance, "session", session_id,
                ))
                .await
                .unwrap();
            let ended = events.last().unwrap();
            assert_eq!(ended.event_type, "session.terminated");
            let payload: serde_json::Value = serde_json::from_str(&ended.payload).unwrap();
            assert_eq!(payload["reason"], "expired");
            assert_eq!(payload["triggered_at_origin"], "http://localhost:8080");
            transactions.insert(ended.position.tx);
        }
        assert_eq!(transactions.len(), 1, "one transaction for the instance");
        let live = domain
            .sessions_of_user(&instance, &user.user_id, false)
            .await
            .unwrap();
        assert_eq!(
            live.iter()
                .map(|session| &session.session_id)
                .collect::<Vec<_>>(),
            [&staying.session_id]
        );
        assert_eq!(
            domain.expire_sessions(1_000).await.unwrap(),
            0,
            "nothing left"
        );
    }

    /// Each way a session ends records `session.terminated` with the origin.
    async fn sessions_end_every_way_with_their_origin(h: Harness) {
        let domain = domain(h.store.clone(), SystemFeatures::default());
        domain.install().await.unwrap();
        let admin = admin(&domain).await;
        let instance = admin.instance_id.clone();
        let user = domain.add_user(&admin, alice()).await.unwrap();
        let start = || {
            domain.create_session(
                &instance,
                &user.user_id,
                Duration::from_secs(3600),
                Some("test".into()),
            )
        };

        let (session, cookie) = start().await.unwrap();
        assert_eq!(
            domain
                .session_by_cookie(&instance, &cookie)
                .await
                .unwrap()
                .unwrap()
                .session_id,
            session.session_id
        );
        assert!(
            domain
                .session_by_cookie(&instance, "not-the-cookie")
                .await
                .unwrap()
                .is_none()
        );
        domain
            .terminate_session(
                &instance,
                &session.session_id,
                TerminationReason::RpInitiatedLogout,
                ORIGIN,
                "u",
            )
            .await
            .unwrap();
        domain
            .terminate_session(
                &instance,
                &session.session_id,
                TerminationReason::Admin,
                ORIGIN,
                "u",
            )
            .await
            .unwrap();
        assert!(
            domain
                .session_by_cookie(&instance, &cookie)
                .await
                .unwrap()
                .is_none()
        );

        let (two, three) = (start().await.unwrap().0, start().await.unwrap().0);
        assert_eq!(
            domain
                .sessions_of_user(&instance, &user.user_id, false)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            domain
                .sign_out_user(
                    &instance,
                    &user.user_id,
                    TerminationReason::UserSignedOut,
                    ORIGIN,
                    "u"
                )
                .await
                .unwrap(),
            2
        );

        let four = start().await.unwrap().0;
        domain
            .deactivate_user(&admin, &user.user_id, ORIGIN)
            .await
            .unwrap();
        domain.reactivate_user(&admin, &user.user_id).await.unwrap();
        let five = start().await.unwrap().0;
        domain
            .remove_user(&admin, &user.user_id, ORIGIN)
            .await
            .unwrap();

        let expected = [
            (&session, "rp_initiated_logout"),
            (&two, "user_signed_out"),
            (&three, "user_signed_out"),
            (&four, "user_deactivated"),
            (&five, "user_removed"),
        ];
        for (session, reason) in expected {
            let terminated = terminations(&h, &instance, &session.session_id).await;
            assert_eq!(terminated.len(), 1, "{reason}: ended exactly once");
            assert_eq!(terminated[0]["reason"], reason);
            assert_eq!(terminated[0]["triggered_at_origin"], ORIGIN);
        }
        assert!(
            domain
                .sessions_of_user(&instance, &user.user_id, false)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

mod grants {
    use std::time::Duration;

    use super::users::{ORIGIN, admin, alice};
    use super::*;
    use domain::application::OidcConfig;
    use domain::{CodeRequest, SessionView, TerminationReason};

    fn app_config() -> OidcConfig {
        serde_json::from_value(serde_json::json!({
            "name": "Web app",
            "client_type": "confidential",
            "auth_method": "client_secret_basic",
            "redirect_uris": ["https://app.example.com/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "id_token_signing_alg": "ES256",
            "access_token_lifetime_secs": 3600,
            "id_token_lifetime_secs": 3600,
            "refresh_token_lifetime_secs": 86400
        }))
        .unwrap()
    }

    eventstore::on_both_backends!(
        codes_are_single_use_and_tokens_follow_the_session,
        applications_with_a_back_channel_uri_are_registered_once_per_session,
        a_mass_sign_out_reaches_every_read_model,
        a_new_password_ends_the_users_sessions_unless_turned_off,
        signing_out_everyone_runs_in_chunks_resumes_and_runs_once,
        delivery_health_follows_the_recorded_outcomes,
        a_client_token_has_no_user_and_outlives_sessions_until_revoked,
        live_sessions_are_listed_newest_first_a_page_at_a_time,
    );

    /// A domain on the real clock (codes and tokens expire relative to it), set up, with its
    /// admin and the user alice.
    async fn with_alice(h: &Harness) -> (Domain, domain::AdminPrincipal, domain::UserView) {
        let domain = Domain::new(
            h.store.clone(),
            Arc::new(RealClock),
            DomainOptions::default(),
        );
        domain.install().await.unwrap();
        let admin = admin(&domain).await;
        let user = domain.add_user(&admin, alice()).await.unwrap();
        (domain, admin, user)
    }

    /// Setting a password ends the user's live sessions (reason `credential_changed`), and
    /// their applications' deliveries fall due; an instance can turn that off.
    async fn a_new_password_ends_the_users_sessions_unless_turned_off(h: Harness) {
        let (domain, admin, user) = with_alice(&h).await;
        let instance = admin.instance_id.clone();
        let mut config = app_config();
        config.back_channel_logout_uri = Some("https://app.example.com/logout".into());
        let (app, _) = domain.add_application(&admin, config).await.unwrap();
        let sign_in = || async {
            let session = domain
                .create_session(&instance, &user.user_id, Duration::from_secs(3600), None)
                .await
                .unwrap()
                .0;
            tokens_for(&domain, &session, &app).await;
            session
        };
        let live = || async {
            domain
                .sessions_of_user(&instance, &user.user_id, false)
                .await
                .unwrap()
                .len()
        };

        let (first, second) = (sign_in().await, sign_in().await);
        domain
            .set_password(&admin, &user.user_id, "a new long password".into(), ORIGIN)
            .await
            .unwrap();
        assert_eq!(live().await, 0, "both sessions ended");
        for session in [&first, &second] {
            let terminated = terminations(&h, &instance, &session.session_id).await;
            assert_eq!(terminated.len(), 1, "the session ended once");
            assert_eq!(terminated[0]["reason"], "credential_changed");
            assert_eq!(terminated[0]["triggered_at_origin"], ORIGIN);
            let deliveries = domain
                .deliveries_of_session(&instance, &session.session_id)
                .await
                .unwrap();
            let stages: Vec<DeliveryStage> = deliveries.iter().map(|d| d.stage).collect();
            assert_eq!(
                stages,
                [DeliveryStage::Due],
                "the application is to be told"
            );
        }

        domain
            .set_feature(&admin, Feature::EndSessionsOnCredentialChange, false)
            .await
            .unwrap();
        sign_in().await;
        domain
            .set_password(&admin, &user.user_id, "yet another password".into(), ORIGIN)
            .await
            .unwrap();
        assert_eq!(live().await, 1, "turned off: the session stays");
        assert!(
            domain
                .check_password(&instance, "alice", "yet another password".into())
                .await
                .unwrap()
                .is_some(),
            "the password changed all the same"
        );
    }

    /// "Sign out everyone" ends every session that was live when it began, a chunk per
    /// transaction; a second start while it runs returns the same operation; a new process
    /// over the same store picks it up where it stopped; each end names the reason and the
    /// admin token; progress counts sessions and the deliveries of the sessions it ended.
    async fn signing_out_everyone_runs_in_chunks_resumes_and_runs_once(h: Harness) {
        const SESSIONS: usize = 600;
        let (domain, admin, user) = with_alice(&h).await;
        let instance = admin.instance_id.clone();
        let mut config = app_config();
        config.back_channel_logout_uri = Some("https://app.example.com/logout".into());
        let (app, _) = domain.add_application(&admin, config).await.unwrap();
        let mut sessions = Vec::new();
        for index in 0..SESSIONS {
            let session = domain
                .create_session(&instance, &user.user_id, Duration::from_secs(3600), None)
                .await
                .unwrap()
                .0;
            if index % 120 == 0 {
                tokens_for(&domain, &session, &app).await;
            }
            sessions.push(session);
        }

        let (operation, started) = domain.sign_out_everyone(&admin, ORIGIN).await.unwrap();
        assert!(started);
        assert_eq!(operation.started.total, SESSIONS as u64);
        let (again, started_again) = domain.sign_out_everyone(&admin, ORIGIN).await.unwrap();
        assert!(!started_again, "the running one is returned");
        assert_eq!(again.started.operation_id, operation.started.operation_id);
        // Started after the operation: not its to end.
        let later = domain
            .create_session(&instance, &user.user_id, Duration::from_secs(3600), None)
            .await
            .unwrap()
            .0;

        // One chunk here, then "a restart": a fresh domain over the same store finishes it.
        assert!(domain.continue_sign_out(&instance).await.unwrap());
        let id = operation.started.operation_id.as_str();
        let progress = domain.sign_out_progress(&instance, id).await.unwrap();
        let first_chunk = progress.operation.ended;
        assert!(
            first_chunk > 0 && first_chunk < SESSIONS as u64,
            "{first_chunk}"
        );
        assert!(progress.operation.running());
        drop(domain);
        let domain = Domain::new(
            h.store.clone(),
            Arc::new(RealClock),
            DomainOptions::default(),
        );
        domain.install().await.unwrap();
        let mut chunks = 0;
        while domain.continue_sign_outs().await.unwrap() {
            chunks += 1;
        }
        assert_eq!(
            chunks,
            (SESSIONS as u64 - first_chunk).div_ceil(first_chunk),
            "the rest, chunk by chunk"
        );
        let progress = domain.sign_out_progress(&instance, id).await.unwrap();
        assert_eq!(progress.operation.ended, SESSIONS as u64);
        assert!(!progress.operation.running());
        assert_eq!(
            progress.deliveries,
            domain::session_logout::DeliveryCounts {
                sent: 0,
                failed: 0,
                pending: 5,
            },
            "every registered application is to be told"
        );
        let live = domain
            .sessions_of_user(&instance, &user.user_id, false)
            .await
            .unwrap();
        assert_eq!(
            live.iter()
                .map(|session| &session.session_id)
                .collect::<Vec<_>>(),
            [&later.session_id]
        );
        for session in [&sessions[0], &sessions[SESSIONS - 1]] {
            let terminated = terminations(&h, &instance, &session.session_id).await;
            assert_eq!(terminated.len(), 1);
            assert_eq!(terminated[0]["reason"], "instance_sign_out");
            let events = h
                .store
                .aggregate_events(&eventstore::AggregateRef::new(
                    &instance,
                    "session",
                    &session.session_id,
                ))
                .await
                .unwrap();
            assert_eq!(events.last().unwrap().creator, admin.token_id);
        }
        let (next, started) = domain.sign_out_everyone(&admin, ORIGIN).await.unwrap();
        assert!(started, "a finished operation does not block a new one");
        assert_ne!(next.started.operation_id, id);
        assert_eq!(
            domain.sign_out_operations(&instance).await.unwrap().len(),
            2
        );
        assert!(matches!(
            domain.sign_out_progress(&instance, "nope").await,
            Err(domain::DomainError::NotFound(_))
        ));
    }

    async fn codes_are_single_use_and_tokens_follow_the_session(h: Harness) {
        // The real clock: codes and tokens expire relative to it.
        let (domain, admin, user) = with_alice(&h).await;
        let instance = admin.instance_id.clone();
        let (app, _) = domain.add_application(&admin, app_config()).await.unwrap();
        let (session, _) = domain
            .create_session(&instance, &user.user_id, Duration::from_secs(3600), None)
            .await
            .unwrap();
        let request = |scopes: &[&str]| CodeRequest {
            session_id: session.session_id.clone(),
            client_id: app.client_id.clone(),
            user_id: user.user_id.clone(),
            redirect_uri: "https://app.example.com/callback".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            nonce: Some("n-0S6_WzA2Mj".into()),
            code_challenge: None,
            auth_time: chrono::Utc::now(),
        };
        let pkce_ok = |_: Option<&str>| true;
        let redirect = Some("https://app.example.com/callback");

        let code = domain
            .issue_code(&instance, request(&["openid"]))
            .await
            .unwrap();
        let wrong_redirect = domain
            .redeem_code(
                &instance,
                &app,
                &code,
                Some("https://evil.example"),
                &pkce_ok,
            )
            .await;
        assert!(matches!(wrong_redirect, Err(DomainError::Grant(_))));
        let tokens = domain
            .redeem_code(&instance, &app, &code, redirect, &pkce_ok)
            .await
            .unwrap();
        assert_eq!(tokens.code.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
        assert!(
            is_active(&domain, &instance, &tokens.access_token).await,
            "access token is active"
        );

        // Replaying the code fails and revokes what it issued.
        assert!(
            domain
                .redeem_code(&instance, &app, &code, redirect, &pkce_ok)
                .await
                .is_err()
        );
        assert!(
            !is_active(&domain, &instance, &tokens.access_token).await,
            "revoked by the replay"
        );

        let same_scope = |granted: &[String]| Some(granted.to_vec());
        // Refresh tokens rotate; the old one stops working and its replay revokes the grant.
        let code = domain
            .issue_code(&instance, request(&["openid"]))
            .await
            .unwrap();
        let first = domain
            .redeem_code(&instance, &app, &code, redirect, &pkce_ok)
            .await
            .unwrap();
        let refreshed = domain
            .refresh(
                &instance,
                &app,
                first.refresh_token.as_deref().unwrap(),
                &same_scope,
            )
            .await
            .unwrap();
        assert_ne!(refreshed.access_token, first.access_token);
        assert!(
            domain
                .refresh(
                    &instance,
                    &app,
                    first.refresh_token.as_deref().unwrap(),
                    &same_scope
                )
                .await
                .is_err()
        );
        assert!(
            domain
                .refresh(
                    &instance,
                    &app,
                    refreshed.refresh_token.as_deref().unwrap(),
                    &same_scope
                )
                .await
                .is_err()
        );

        // Ending the session ends its tokens, except offline ones.
        let online = domain
            .issue_code(&instance, request(&["openid"]))
            .await
            .unwrap();
        let online = domain
            .redeem_code(&instance, &app, &online, redirect, &pkce_ok)
            .await
            .unwrap();
        let offline = domain
            .issue_code(&instance, request(&["openid", "offline_access"]))
            .await
            .unwrap();
        let offline = domain
            .redeem_code(&instance, &app, &offline, redirect, &pkce_ok)
            .await
            .unwrap();
        domain
            .terminate_session(
                &instance,
                &session.session_id,
                TerminationReason::RpInitiatedLogout,
                ORIGIN,
                "u",
            )
            .await
            .unwrap();
        assert!(!is_active(&domain, &instance, &online.access_token).await);
        assert!(
            domain
                .refresh(
                    &instance,
                    &app,
                    online.refresh_token.as_deref().unwrap(),
                    &same_scope
                )
                .await
                .is_err()
        );
        assert!(
            !is_active(&domain, &instance, &offline.access_token).await,
            "an access token dies with its session, offline_access or not"
        );
        let offline = domain
            .refresh(
                &instance,
                &app,
                offline.refresh_token.as_deref().unwrap(),
                &same_scope,
            )
            .await
            .expect("an offline refresh token outlives the session");
        assert!(
            is_active(&domain, &instance, &offline.access_token).await,
            "bound to the offline grant, not to the ended session"
        );

        // Revocation (RFC 7009) by the owning client only.
        domain
            .revoke_token(&instance, "someone-else", &offline.access_token)
            .await
            .unwrap();
        assert!(is_active(&domain, &instance, &offline.access_token).await);
        domain
            .revoke_token(&instance, &app.client_id, &offline.access_token)
            .await
            .unwrap();
        assert!(!is_active(&domain, &instance, &offline.access_token).await);
    }

    /// The client credentials grant: a token whose subject is the client, found by
    /// introspection's lookup, untouched by any session's end, ended by revocation.
    async fn a_client_token_has_no_user_and_outlives_sessions_until_revoked(h: Harness) {
        let (domain, admin, user) = with_alice(&h).await;
        let instance = admin.instance_id.clone();
        let mut config = app_config();
        config
            .grant_types
            .push(domain::application::GrantType::ClientCredentials);
        config.client_credentials_scopes = vec!["read".into(), "write".into()];
        let (app, _) = domain.add_application(&admin, config).await.unwrap();
        let (web, _) = domain.add_application(&admin, app_config()).await.unwrap();

        let issued = domain
            .issue_client_token(&instance, &app, vec!["read".into()])
            .await
            .unwrap();
        assert_eq!(issued.scopes, ["read"]);
        assert_eq!(issued.expires_in, 3600);
        assert!(issued.access_token.starts_with(&issued.grant_id));
        let (view, active) = domain
            .token(&instance, &issued.access_token)
            .await
            .unwrap()
            .expect("the token is found");
        assert!(active);
        assert_eq!(view.subject, domain::grant::GrantSubject::Client);
        assert_eq!((view.user_id(), view.session_id()), (None, None));
        assert_eq!(view.client_id, app.client_id);
        assert_eq!(view.kind, domain::grant::TokenKind::Access);

        // Beyond the allowed scopes, or from an application without the grant: refused, and
        // nothing written.
        assert!(matches!(
            domain
                .issue_client_token(&instance, &app, vec!["admin".into()])
                .await,
            Err(DomainError::Grant(
                domain::grant::GrantRejection::ScopeExceeded
            ))
        ));
        assert!(matches!(
            domain.issue_client_token(&instance, &web, vec![]).await,
            Err(DomainError::Invalid {
                field: "grant_type",
                ..
            })
        ));

        // The user's sessions ending (all of them) does not touch the client's token.
        let (session, _) = domain
            .create_session(&instance, &user.user_id, Duration::from_secs(3600), None)
            .await
            .unwrap();
        domain
            .terminate_session(
                &instance,
                &session.session_id,
                TerminationReason::RpInitiatedLogout,
                ORIGIN,
                "u",
            )
            .await
            .unwrap();
        assert!(is_active(&domain, &instance, &issued.access_token).await);
        // It cannot be used as a refresh token either.
        let same_scope = |granted: &[String]| Some(granted.to_vec());
        assert!(
            domain
                .refresh(&instance, &app, &issued.access_token, &same_scope)
                .await
                .is_err()
        );

        // Revocation by another client does nothing; by the owner, it ends the token.
        domain
            .revoke_token(&instance, &web.client_id, &issued.access_token)
            .await
            .unwrap();
        assert!(is_active(&domain, &instance, &issued.access_token).await);
        domain
            .revoke_token(&instance, &app.client_id, &issued.access_token)
            .await
            .unwrap();
        assert!(!is_active(&domain, &instance, &issued.access_token).await);
        let events = h
            .store
            .aggregate_events(&eventstore::AggregateRef::new(
                &instance,
                "oidc_grant",
                &issued.grant_id,
            ))
            .await
            .unwrap();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "oidc_grant.client_credentials.granted",
                "oidc_grant.tokens.issued",
                "oidc_grant.revoked"
            ]
        );
    }

    async fn applications_with_a_back_channel_uri_are_registered_once_per_session(h: Harness) {
        let (domain, admin, user) = with_alice(&h).await;
        let instance = admin.instance_id.clone();
        let with_uri = |name: &str| {
            let mut config = app_config();
            config.name = name.into();
            config.back_channel_logout_uri = Some(format!("https://{name}.example.com/logout"));
            config
        };
        let (first, _) = domain
            .add_application(&admin, with_uri("first"))
            .await
            .unwrap();
        let (second, _) = domain
            .add_application(&admin, with_uri("second"))
            .await
            .unwrap();
        let (plain, _) = domain.add_application(&admin, app_config()).await.unwrap();
        let sign_in = || async {
            domain
                .create_session(&instance, &user.user_id, Duration::from_secs(3600), None)
                .await
                .unwrap()
                .0
        };
        // Feature switched off for the instance (it is on by default): nothing is registered.
        domain
            .set_feature(&admin, Feature::BackChannelLogout, false)
            .await
            .unwrap();
        let session = sign_in().await;
        tokens_for(&domain, &session, &first).await;
        let logout = domain
            .session_logout(&instance, &session.session_id)
            .await
            .unwrap();
        assert!(logout.registrations.is_empty());

        // Feature on: each application with a URI once, however often it gets tokens.
        domain
            .set_feature(&admin, Feature::BackChannelLogout, true)
            .await
            .unwrap();
        let session = sign_in().await;
        for app in [&first, &first, &second, &plain] {
            tokens_for(&domain, &session, app).await;
        }
        let logout = domain
            .session_logout(&instance, &session.session_id)
            .await
            .unwrap();
        let registered: Vec<&String> = logout.registrations.keys().collect();
        let mut expected = vec![&first.client_id, &second.client_id];
        expected.sort();
        assert_eq!(registered, expected);
        let registration = &logout.registrations[&first.client_id].registered;
        assert_eq!(registration.uri, "https://first.example.com/logout");
        assert_eq!(registration.user_id, user.user_id);
        assert_eq!(registration.signing_alg, "ES256");
    }

    /// More sessions end at once than one multi-row statement carries, next to a session of
    /// another user that must stay as it is.
    async fn a_mass_sign_out_reaches_every_read_model(h: Harness) {
        let domain = Domain::new(
            h.store.clone(),
            Arc::new(RealClock),
            DomainOptions::default(),
        );
        domain.install().await.unwrap();
        let admin = admin(&domain).await;
        let instance = admin.instance_id.clone();
        domain
            .set_feature(&admin, Feature::BackChannelLogout, true)
            .await
            .unwrap();
        let mut config = app_config();
        config.back_channel_logout_uri = Some("https://app.example.com/logout".into());
        let (app, _) = domain.add_application(&admin, config).await.unwrap();
        let alice = domain.add_user(&admin, alice()).await.unwrap();
        let mut bob = super::users::alice();
        bob.username = "bob".into();
        bob.profile.email = None;
        let bob = domain.add_user(&admin, bob).await.unwrap();
        let signed_in = |user_id: String| {
            let (domain, instance, app) = (&domain, instance.clone(), app.clone());
            async move {
                let (session, _) = domain
                    .create_session(&instance, &user_id, Duration::from_secs(3600), None)
                    .await
                    .unwrap();
                tokens_for(domain, &session, &app).await;
                session
            }
        };
        let sessions = eventstore::KEYS_PER_STATEMENT + 30;
        for _ in 0..sessions {
            signed_in(alice.user_id.clone()).await;
        }
        let bobs = signed_in(bob.user_id.clone()).await;

        let ended = domain
            .sign_out_user(
                &instance,
                &alice.user_id,
                TerminationReason::Admin,
                ORIGIN,
                "admin",
            )
            .await
            .unwrap();
        assert_eq!(ended, sessions);
        let live = domain
            .sessions_of_user(&instance, &alice.user_id, false)
            .await
            .unwrap();
        assert!(live.is_empty(), "{} still live", live.len());
        let far_future = chrono::Utc::now() + chrono::Duration::days(1);
        let expiring = domain::session::expired_sessions(h.store.as_ref(), far_future, 1000)
            .await
            .unwrap();
        assert_eq!(expiring, [(instance.clone(), bobs.session_id.clone())]);
        let deliveries = domain
            .deliveries_of_client(&instance, &app.client_id, 1000)
            .await
            .unwrap();
        let state_of = |deliveries: &[domain::session_logout::DeliveryView],
                        stage: DeliveryStage| {
            deliveries
                .iter()
                .filter(|delivery| delivery.stage == stage)
                .count()
        };
        assert_eq!(state_of(&deliveries, DeliveryStage::Due), sessions);
        assert_eq!(
            state_of(&deliveries, DeliveryStage::Registered),
            1,
            "bob's session is live"
        );
        assert!(deliveries.iter().all(|delivery| {
            (delivery.stage == DeliveryStage::Due)
                == (delivery.triggered_at_origin.as_deref() == Some(ORIGIN))
        }));

        let outcomes: Vec<_> = deliveries
            .iter()
            .filter(|delivery| delivery.stage == DeliveryStage::Due)
            .map(|delivery| {
                let sent = domain::session_logout::SessionLogoutEvent::Sent(
                    domain::session_logout::BackChannelSent {
                        client_id: delivery.client_id.clone(),
                        attempts: 2,
                        attempt: None,
                    },
                );
                (instance.clone(), delivery.session_id.clone(), sent)
            })
            .collect();
        // Recorded in one transaction per batch; what is admitted is the caller's decision.
        let recorded = domain
            .append_delivery_events(&outcomes, "test", &|registration, _| {
                registration.history.is_empty()
            })
            .await
            .unwrap();
        assert!(recorded.iter().all(|recorded| *recorded));
        let again = domain
            .append_delivery_events(&outcomes, "test", &|registration, _| {
                registration.history.is_empty()
            })
            .await
            .unwrap();
        assert!(
            again.iter().all(|recorded| !*recorded),
            "refused by the caller"
        );
        let deliveries = domain
            .deliveries_of_client(&instance, &app.client_id, 1000)
            .await
            .unwrap();
        assert_eq!(state_of(&deliveries, DeliveryStage::Sent), sessions);
        assert_eq!(state_of(&deliveries, DeliveryStage::Registered), 1);
        assert!(deliveries.iter().all(|delivery| {
            (delivery.stage == DeliveryStage::Sent)
                == (delivery.attempts == 2 && delivery.settled_at.is_some())
        }));
        // A batch of outcomes counts once each in the application's health.
        let health = domain
            .delivery_health(&instance, Some(&app.client_id))
            .await
            .unwrap();
        let health = &health[&app.client_id];
        assert_eq!(health.last_hour.sent, sessions as u64);
        assert_eq!(health.last_day.sent, sessions as u64);
        assert_eq!(
            health
                .last_day
                .latency
                .as_ref()
                .map(|latency| latency.samples),
            Some(sessions as u64)
        );
        assert_eq!(health.consecutive_failures, 0);
    }

    /// Counts what the domain reports.
    #[derive(Default)]
    struct Reported {
        started: std::sync::atomic::AtomicU64,
        ended: std::sync::Mutex<Vec<TerminationReason>>,
    }

    impl domain::Observer for Reported {
        fn session_started(&self) {
            self.started
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }

        fn session_ended(&self, reason: TerminationReason) {
            self.ended.lock().unwrap().push(reason);
        }
    }

    /// Outcomes recorded for an application show in its health: the counts of the windows,
    /// the run of failed attempts since the last acknowledged one, the last error, and the
    /// instance's live sessions and deliveries by outcome (the console's figures); another
    /// instance sees none of it. The observer hears of every session started and ended.
    async fn delivery_health_follows_the_recorded_outcomes(h: Harness) {
        use domain::session_logout::{
            AttemptRecord, BackChannelFailed, BackChannelRetryScheduled, BackChannelSent,
            SessionLogoutEvent,
        };
        let reported = Arc::new(Reported::default());
        let domain = Domain::new(
            h.store.clone(),
            Arc::new(RealClock),
            DomainOptions::default(),
        )
        .with_observer(reported.clone());
        domain.install().await.unwrap();
        let admin = admin(&domain).await;
        let instance = admin.instance_id.clone();
        domain
            .set_feature(&admin, Feature::BackChannelLogout, true)
            .await
            .unwrap();
        let user = domain.add_user(&admin, alice()).await.unwrap();
        let mut config = app_config();
        config.back_channel_logout_uri = Some("https://app.example.com/logout".into());
        let (app, _) = domain.add_application(&admin, config).await.unwrap();
        let mut sessions = Vec::new();
        for _ in 0..3 {
            let (session, _) = domain
                .create_session(&instance, &user.user_id, Duration::from_secs(3600), None)
                .await
                .unwrap();
            tokens_for(&domain, &session, &app).await;
            sessions.push(session.session_id);
        }
        let counts = |sent, failed, pending| domain::session_logout::DeliveryCounts {
            sent,
            failed,
            pending,
        };
        assert_eq!(
            domain.live_sessions_of_instance(&instance).await.unwrap(),
            3
        );
        assert_eq!(
            domain.delivery_counts_of_instance(&instance).await.unwrap(),
            counts(0, 0, 0),
            "a live session's registration has nothing to send"
        );
        domain
            .sign_out_user(
                &instance,
                &user.user_id,
                TerminationReason::Admin,
                ORIGIN,
                "admin",
            )
            .await
            .unwrap();
        assert_eq!(
            reported.started.load(std::sync::atomic::Ordering::Relaxed),
            3
        );
        assert_eq!(
            *reported.ended.lock().unwrap(),
            [TerminationReason::Admin; 3]
        );

        let client_id = app.client_id.clone();
        let attempt = |status: u16, error: Option<&str>| AttemptRecord {
            at: chrono::Utc::now(),
            duration_ms: 3,
            status: Some(status),
            error: error.map(str::to_owned),
        };
        let retried = |error: &str| {
            SessionLogoutEvent::RetryScheduled(BackChannelRetryScheduled {
                client_id: client_id.clone(),
                attempts: 1,
                retry_at: chrono::Utc::now(),
                attempt: attempt(503, Some(error)),
            })
        };
        let sent = || {
            SessionLogoutEvent::Sent(BackChannelSent {
                client_id: client_id.clone(),
                attempts: 2,
                attempt: Some(attempt(200, None)),
            })
        };
        let failed = SessionLogoutEvent::Failed(BackChannelFailed {
            client_id: client_id.clone(),
            attempts: 1,
            reason: "HTTP 400: invalid_request".into(),
            attempt: Some(attempt(400, Some("HTTP 400: invalid_request"))),
        });
        // One record at a time, so the log holds them in this order.
        let record = |session: &str, event: SessionLogoutEvent| {
            let entries = vec![(instance.clone(), session.to_owned(), event)];
            let domain = &domain;
            async move {
                let recorded = domain
                    .append_delivery_events(&entries, "test", &|_, _| true)
                    .await
                    .unwrap();
                assert_eq!(recorded, [true]);
            }
        };
        record(&sessions[0], retried("HTTP 503")).await;
        record(&sessions[0], sent()).await;
        record(&sessions[1], failed).await;
        record(&sessions[2], retried("connection refused")).await;

        let health = domain.delivery_health(&instance, None).await.unwrap();
        let app_health = &health[&client_id];
        for window in [&app_health.last_hour, &app_health.last_day] {
            assert_eq!((window.sent, window.retried, window.failed), (1, 2, 1));
            assert_eq!(window.latency.as_ref().unwrap().samples, 1);
        }
        // The chart's hours: the whole day, every outcome in the hour it happened (the sums
        // hold even if the hour turned while the test ran), the acknowledged one's latency.
        let hours = domain.delivery_hours(&instance).await.unwrap();
        let day = &hours[&client_id];
        assert_eq!(day.len(), domain::session_logout::HOURS);
        assert!(day.windows(2).all(|pair| pair[0].start < pair[1].start));
        assert_eq!(day.iter().map(|hour| hour.sent).sum::<u64>(), 1);
        assert_eq!(day.iter().map(|hour| hour.failed).sum::<u64>(), 3);
        assert_eq!(
            day.iter()
                .filter(|hour| hour.median_latency_ms.is_some())
                .count(),
            1
        );
        let activity = domain.session_activity(&instance).await.unwrap();
        let both = domain::session::SessionCounts {
            started: 3,
            ended: 3,
        };
        assert_eq!((activity.last_hour, activity.last_day), (both, both));
        assert_eq!(app_health.consecutive_failures, 2, "since the one sent");
        assert_eq!(app_health.last_error.as_deref(), Some("connection refused"));
        assert!(app_health.last_error_at.is_some() && app_health.last_sent_at.is_some());
        assert_eq!(
            domain.live_sessions_of_instance(&instance).await.unwrap(),
            0
        );
        assert_eq!(
            domain.delivery_counts_of_instance(&instance).await.unwrap(),
            counts(1, 1, 1),
            "one sent, one given up, one waiting for a retry"
        );

        // A delivery acknowledged ends the run; the last error stays to be read.
        record(&sessions[2], sent()).await;
        let health = domain
            .delivery_health(&instance, Some(&client_id))
            .await
            .unwrap();
        assert_eq!(health[&client_id].consecutive_failures, 0);
        assert_eq!(health[&client_id].last_day.sent, 2);
        assert_eq!(
            health[&client_id].last_error.as_deref(),
            Some("connection refused")
        );
        assert!(
            domain
                .delivery_health(&instance, Some("no-such-app"))
                .await
                .unwrap()
                .is_empty()
        );
        let other = domain
            .add_instance("other", "https://other.example.com")
            .await
            .unwrap();
        assert!(
            domain
                .delivery_health(&other.instance_id, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            domain
                .delivery_counts_of_instance(&other.instance_id)
                .await
                .unwrap(),
            counts(0, 0, 0)
        );
        assert_eq!(
            domain
                .live_sessions_of_instance(&other.instance_id)
                .await
                .unwrap(),
            0
        );
        assert_eq!(domain.live_sessions().await.unwrap(), 0);
    }

    /// The live sessions of an instance come newest first, a page at a time (the pages
    /// together are every live session once), with their users' login names and their
    /// applications' names; filtered by login name (as sign-in compares it) and by
    /// application; ended sessions and other instances' are not listed.
    async fn live_sessions_are_listed_newest_first_a_page_at_a_time(h: Harness) {
        use domain::session::{SessionCursor, SessionFilter};
        let (domain, admin, alice) = with_alice(&h).await;
        let instance = admin.instance_id.clone();
        let mut bob = super::users::alice();
        bob.username = "bob".into();
        let bob = domain.add_user(&admin, bob).await.unwrap();
        let (web, _) = domain.add_application(&admin, app_config()).await.unwrap();
        let mut other = app_config();
        other.name = "Other".into();
        let (other, _) = domain.add_application(&admin, other).await.unwrap();
        let mut created = Vec::new();
        for user in [&alice, &alice, &bob, &alice] {
            let (session, _) = domain
                .create_session(&instance, &user.user_id, Duration::from_secs(3600), None)
                .await
                .unwrap();
            created.push(session);
            // Distinct start times, so newest first is one order.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokens_for(&domain, &created[0], &web).await;
        tokens_for(&domain, &created[0], &other).await;
        tokens_for(&domain, &created[2], &other).await;
        domain
            .terminate_session(
                &instance,
                &created[1].session_id,
                TerminationReason::Admin,
                ORIGIN,
                "admin",
            )
            .await
            .unwrap();

        let mut listed = Vec::new();
        let mut after: Option<SessionCursor> = None;
        loop {
            let page = domain
                .live_sessions_page(&instance, &SessionFilter::default(), after.as_ref(), 2)
                .await
                .unwrap();
            assert!(page.len() <= 2);
            after = page.last().map(|last| last.cursor.clone());
            let full = page.len() == 2;
            listed.extend(page);
            if !full {
                break;
            }
        }
        let ids: Vec<&str> = listed
            .iter()
            .map(|live| live.session.session_id.as_str())
            .collect();
        let expected: Vec<&str> = [3, 2, 0]
            .iter()
            .map(|&index| created[index].session_id.as_str())
            .collect();
        assert_eq!(ids, expected, "newest first, the ended one left out");
        assert_eq!(listed[0].username.as_deref(), Some("Alice"));
        assert_eq!(listed[1].username.as_deref(), Some("bob"));
        assert_eq!(listed[2].applications, ["Other", "Web app"]);
        assert_eq!(listed[1].applications, ["Other"]);
        assert!(listed[0].applications.is_empty());

        let filtered = |username: Option<&str>, client_id: Option<&str>| {
            let filter = SessionFilter {
                username: username.map(str::to_owned),
                client_id: client_id.map(str::to_owned),
            };
            let domain = &domain;
            let instance = &instance;
            async move {
                domain
                    .live_sessions_page(instance, &filter, None, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|live| live.session.session_id)
                    .collect::<Vec<_>>()
            }
        };
        let id = |index: usize| created[index].session_id.clone();
        assert_eq!(filtered(Some("ALICE"), None).await, [id(3), id(0)]);
        assert_eq!(filtered(None, Some(&other.client_id)).await, [id(2), id(0)]);
        assert_eq!(
            filtered(Some("alice"), Some(&other.client_id)).await,
            [id(0)]
        );
        assert!(filtered(Some("nobody"), None).await.is_empty());
        assert!(filtered(None, Some("no-such-app")).await.is_empty());
        let elsewhere = domain
            .add_instance("other", "https://other.example.com")
            .await
            .unwrap();
        assert!(
            domain
                .live_sessions_page(&elsewhere.instance_id, &SessionFilter::default(), None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Tokens issued to `app` in `session` (so an application with a back-channel URI is
    /// registered there when the feature is on).
    async fn tokens_for(
        domain: &Domain,
        session: &SessionView,
        app: &domain::application::ApplicationView,
    ) -> domain::IssuedTokens {
        let redirect = "https://app.example.com/callback";
        let code = domain
            .issue_code(
                &session.instance_id,
                CodeRequest {
                    session_id: session.session_id.clone(),
                    client_id: app.client_id.clone(),
                    user_id: session.user_id.clone(),
                    redirect_uri: redirect.into(),
                    scopes: vec!["openid".into()],
                    nonce: None,
                    code_challenge: None,
                    auth_time: chrono::Utc::now(),
                },
            )
            .await
            .unwrap();
        domain
            .redeem_code(&session.instance_id, app, &code, Some(redirect), &|_| true)
            .await
            .unwrap()
    }

    pub(super) struct RealClock;

    impl domain::Clock for RealClock {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            chrono::Utc::now()
        }
    }
}
