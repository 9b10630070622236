-- The event log. `position` is the id of the appending transaction (pg_current_xact_id) and
-- `in_tx_order` orders events within it. Transactions commit out of id order, so readers only
-- read below the oldest transaction still running (see `Dialect::POSTGRES` in the crate).
CREATE TABLE events (
    instance_id    TEXT        NOT NULL,
    aggregate_type TEXT        NOT NULL,
    aggregate_id   TEXT        NOT NULL,
    sequence       BIGINT      NOT NULL,
    position       BIGINT      NOT NULL,
    in_tx_order    INTEGER     NOT NULL,
    event_type     TEXT        NOT NULL,
    revision       INTEGER     NOT NULL,
    payload        JSON        NOT NULL,
    creator        TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (instance_id, aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_position ON events (position, in_tx_order);
CREATE INDEX events_instance_position ON events (instance_id, position, in_tx_order);

CREATE TABLE event_instances (
    instance_id TEXT PRIMARY KEY
);

CREATE TABLE current_states (
    projection  TEXT        NOT NULL,
    instance_id TEXT        NOT NULL,
    position    BIGINT      NOT NULL,
    in_tx_order INTEGER     NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (projection, instance_id)
);

CREATE TABLE projection_installs (
    projection   TEXT   PRIMARY KEY,
    installed_at BIGINT NOT NULL
);
