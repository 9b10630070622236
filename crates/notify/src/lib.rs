//! Notification handlers: projections with side effects. They find their work in read models
//! folded from the log and record what they did as events, so that after a crash, or on
//! another replica, nothing is forgotten and nothing is sent twice in normal operation.

pub mod back_channel;
