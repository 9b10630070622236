//! Admin token commands (issue, list, revoke) against SQLite and PostgreSQL.

use std::sync::Arc;

use chrono::TimeZone;
use domain::{
    AdminPrincipal, Domain, DomainError, DomainOptions, FixedClock, SetupRequest, SystemFeatures,
};
use eventstore::testing::Harness;
use eventstore::{AggregateRef, EventQuery, EventStore, Position};

async fn set_up(store: Arc<dyn EventStore>) -> (Domain, AdminPrincipal) {
    let clock = Arc::new(FixedClock(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
            .unwrap(),
    ));
    let domain = Domain::new(
        store,
        clock,
        DomainOptions {
            system_features: SystemFeatures::default(),
            ..Default::default()
        },
    );
    domain.install().await.unwrap();
    let token = domain
        .setup(&SetupRequest {
            external_url: "http://localhost:8080".into(),
            initial_admin_token: None,
            display_name: None,
        })
        .await
        .unwrap()
        .generated_admin_token
        .unwrap();
    let admin = domain.authenticate_admin(&token).await.unwrap().unwrap();
    (domain, admin)
}

async fn event_count(store: &dyn EventStore, instance_id: &str, token_id: &str) -> usize {
    store
        .aggregate_events(&AggregateRef::new(instance_id, "admin_token", token_id))
        .await
        .unwrap()
        .len()
}

/// Every admin token event of an instance.
async fn admin_token_events(store: &dyn EventStore, instance_id: &str) -> usize {
    store
        .events(&EventQuery {
            instance_id: Some(instance_id.into()),
            after: Position::START,
            aggregate_types: vec!["admin_token".into()],
            event_types: vec![],
            limit: 1000,
        })
        .await
        .unwrap()
        .len()
}

eventstore::on_both_backends!(
    issued_tokens_authenticate_and_are_listed_without_secrets,
    bad_descriptions_write_nothing,
    revoked_tokens_stop_working,
    tokens_are_scoped_to_their_instance,
);

async fn issued_tokens_authenticate_and_are_listed_without_secrets(h: Harness) {
    let (domain, admin) = set_up(h.store.clone()).await;
    let issued = domain
        .add_admin_token(&admin, "deploy pipeline")
        .await
        .unwrap();
    assert!(issued.token.starts_with(domain::admin_token::TOKEN_PREFIX));
    assert_eq!(issued.view.description, "deploy pipeline");
    assert!(!issued.view.revoked);
    let principal = domain
        .authenticate_admin(&issued.token)
        .await
        .unwrap()
        .expect("a new token works at once");
    assert_eq!(principal.instance_id, admin.instance_id);
    assert_eq!(principal.token_id, issued.view.token_id);

    let listed = domain
        .admin_tokens(&admin.instance_id, false)
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|view| view.token_id.as_str()).collect();
    assert_eq!(
        ids,
        [admin.token_id.as_str(), issued.view.token_id.as_str()]
    );
    assert_eq!(listed[0].description, "initial admin token");

    // The stored event holds the hash only, and the creator is the issuing token.
    let events = h
        .store
        .aggregate_events(&AggregateRef::new(
            &admin.instance_id,
            "admin_token",
            &issued.view.token_id,
        ))
        .await
        .unwrap();
    assert!(!events[0].payload.contains(&issued.token));
    assert_eq!(events[0].creator, admin.token_id);
}

async fn bad_descriptions_write_nothing(h: Harness) {
    let (domain, admin) = set_up(h.store.clone()).await;
    let before = admin_token_events(h.store.as_ref(), &admin.instance_id).await;
    for description in ["", " ", "tab\there", &"x".repeat(201)] {
        match domain.add_admin_token(&admin, description).await {
            Err(DomainError::Invalid { field, .. }) => assert_eq!(field, "description"),
            other => panic!("{description:?}: expected invalid description, got {other:?}"),
        }
    }
    assert_eq!(
        admin_token_events(h.store.as_ref(), &admin.instance_id).await,
        before,
        "nothing appended"
    );
    assert_eq!(
        domain
            .admin_tokens(&admin.instance_id, true)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn revoked_tokens_stop_working(h: Harness) {
    let (domain, admin) = set_up(h.store.clone()).await;
    let issued = domain.add_admin_token(&admin, "temporary").await.unwrap();
    let token_id = issued.view.token_id.clone();

    domain.revoke_admin_token(&admin, &token_id).await.unwrap();
    assert_eq!(
        domain.authenticate_admin(&issued.token).await.unwrap(),
        None,
        "revocation is visible to the very next request"
    );
    assert!(
        domain
            .admin_token(&admin.instance_id, &token_id)
            .await
            .unwrap()
            .revoked
    );
    let live = domain
        .admin_tokens(&admin.instance_id, false)
        .await
        .unwrap();
    assert!(live.iter().all(|view| view.token_id != token_id));
    let all = domain.admin_tokens(&admin.instance_id, true).await.unwrap();
    assert!(
        all.iter()
            .any(|view| view.token_id == token_id && view.revoked)
    );

    // Again: succeeds and records nothing.
    domain.revoke_admin_token(&admin, &token_id).await.unwrap();
    assert_eq!(
        event_count(h.store.as_ref(), &admin.instance_id, &token_id).await,
        2
    );

    // A token cannot revoke itself, so the last live token survives.
    match domain.revoke_admin_token(&admin, &admin.token_id).await {
        Err(DomainError::Invalid { field, .. }) => assert_eq!(field, "token_id"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        !domain
            .admin_token(&admin.instance_id, &admin.token_id)
            .await
            .unwrap()
            .revoked
    );

    assert!(matches!(
        domain.revoke_admin_token(&admin, "no-such-token").await,
        Err(DomainError::NotFound(_))
    ));
}

async fn tokens_are_scoped_to_their_instance(h: Harness) {
    let (domain, admin) = set_up(h.store.clone()).await;
    let issued = domain.add_admin_token(&admin, "scoped").await.unwrap();
    let elsewhere = AdminPrincipal {
        instance_id: "another-instance".into(),
        token_id: "another-token".into(),
    };
    assert!(matches!(
        domain
            .revoke_admin_token(&elsewhere, &issued.view.token_id)
            .await,
        Err(DomainError::NotFound(_))
    ));
    assert!(matches!(
        domain
            .admin_token(&elsewhere.instance_id, &issued.view.token_id)
            .await,
        Err(DomainError::NotFound(_))
    ));
    assert!(
        domain
            .admin_tokens(&elsewhere.instance_id, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        domain
            .authenticate_admin(&issued.token)
            .await
            .unwrap()
            .is_some()
    );
}
