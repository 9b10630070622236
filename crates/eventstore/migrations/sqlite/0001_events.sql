-- The event log. `position` is the number of the appending transaction (assigned under SQLite's
-- single writer, so it grows in commit order); `in_tx_order` orders events within it.
CREATE TABLE events (
    instance_id    TEXT    NOT NULL,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       BIGINT  NOT NULL,
    position       BIGINT  NOT NULL,
    in_tx_order    INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    revision       INTEGER NOT NULL,
    payload        TEXT    NOT NULL CHECK (json_valid(payload)),
    creator        TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    PRIMARY KEY (instance_id, aggregate_type, aggregate_id, sequence)
) WITHOUT ROWID;

CREATE UNIQUE INDEX events_position ON events (position, in_tx_order);
CREATE INDEX events_instance_position ON events (instance_id, position, in_tx_order);

-- Every instance that has events, so projection runners know whose progress to advance.
CREATE TABLE event_instances (
    instance_id TEXT PRIMARY KEY
);

-- How far each projection got, per instance.
CREATE TABLE current_states (
    projection  TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    position    BIGINT  NOT NULL,
    in_tx_order INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (projection, instance_id)
);

-- When a projection was first installed and where a new instance's progress starts.
CREATE TABLE projection_installs (
    projection   TEXT   PRIMARY KEY,
    installed_at BIGINT NOT NULL
);
