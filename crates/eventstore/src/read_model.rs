//! Back-end neutral access to read-model tables, so a projection's SQL is written once.
//!
//! Statements use `$1, $2 …` placeholders, which both SQLite and PostgreSQL accept, and the
//! common subset of their dialects (`INSERT … ON CONFLICT … DO UPDATE`, `TEXT`, `BIGINT`,
//! `BOOLEAN`). Values are the few types read models need.

use async_trait::async_trait;

use crate::error::StoreError;

/// A value bound to, or read from, a read-model statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// A 64-bit integer (`BIGINT`), or a typed NULL.
    Int(Option<i64>),
    /// Text, or a typed NULL.
    Text(Option<String>),
    /// A boolean (`BOOLEAN`; SQLite reads it back as an integer), or a typed NULL.
    Bool(Option<bool>),
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        SqlValue::Int(Some(value))
    }
}

impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        SqlValue::Bool(Some(value))
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(Some(value.to_owned()))
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(Some(value))
    }
}

impl From<Option<String>> for SqlValue {
    fn from(value: Option<String>) -> Self {
        SqlValue::Text(value)
    }
}

/// One row read from a read-model table, columns in select order.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRow(pub Vec<SqlValue>);

impl SqlRow {
    fn column(&self, index: usize) -> Result<&SqlValue, StoreError> {
        self.0.get(index).ok_or_else(|| StoreError::Column {
            column: index,
            reason: format!("the row has only {} columns", self.0.len()),
        })
    }

    /// The integer in column `index`, or `None` for NULL.
    pub fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        match self.column(index)? {
            SqlValue::Int(value) => Ok(*value),
            SqlValue::Bool(value) => Ok(value.map(i64::from)),
            SqlValue::Text(None) => Ok(None),
            SqlValue::Text(Some(text)) => Err(StoreError::Column {
                column: index,
                reason: format!("expected an integer, found text {text:?}"),
            }),
        }
    }

    /// The integer in column `index`; NULL is an error.
    pub fn int(&self, index: usize) -> Result<i64, StoreError> {
        self.opt_int(index)?.ok_or_else(|| null_column(index))
    }

    /// The text in column `index`, or `None` for NULL.
    pub fn opt_text(&self, index: usize) -> Result<Option<&str>, StoreError> {
        match self.column(index)? {
            SqlValue::Text(value) => Ok(value.as_deref()),
            SqlValue::Int(None) | SqlValue::Bool(None) => Ok(None),
            other => Err(StoreError::Column {
                column: index,
                reason: format!("expected text, found {other:?}"),
            }),
        }
    }

    /// The text in column `index`; NULL is an error.
    pub fn text(&self, index: usize) -> Result<&str, StoreError> {
        self.opt_text(index)?.ok_or_else(|| null_column(index))
    }

    /// The boolean in column `index` (an integer 0 or 1 counts), or `None` for NULL.
    pub fn opt_bool(&self, index: usize) -> Result<Option<bool>, StoreError> {
        match self.column(index)? {
            SqlValue::Bool(value) => Ok(*value),
            SqlValue::Int(Some(0)) => Ok(Some(false)),
            SqlValue::Int(Some(1)) => Ok(Some(true)),
            SqlValue::Int(None) | SqlValue::Text(None) => Ok(None),
            other => Err(StoreError::Column {
                column: index,
                reason: format!("expected a boolean, found {other:?}"),
            }),
        }
    }

    /// The boolean in column `index`; NULL is an error.
    pub fn bool(&self, index: usize) -> Result<bool, StoreError> {
        self.opt_bool(index)?.ok_or_else(|| null_column(index))
    }
}

fn null_column(index: usize) -> StoreError {
    StoreError::Column {
        column: index,
        reason: "unexpected NULL".into(),
    }
}

/// Statements against read-model tables, inside the transaction that also advances the
/// projection's position.
#[async_trait]
pub trait ReadModelTx: Send {
    /// Runs a statement and returns the number of rows it changed.
    async fn execute(&mut self, sql: &'static str, params: &[SqlValue]) -> Result<u64, StoreError>;
    /// Runs a query and returns its rows.
    async fn fetch(
        &mut self,
        sql: &'static str,
        params: &[SqlValue],
    ) -> Result<Vec<SqlRow>, StoreError>;
}

/// How many keys one [`execute_for_keys`] statement carries.
pub const KEYS_PER_STATEMENT: usize = 100;

/// `$first, $first+1, …`: [`KEYS_PER_STATEMENT`] placeholders for an `IN (…)` list of keys.
pub fn key_placeholders(first: usize) -> String {
    (first..first + KEYS_PER_STATEMENT)
        .map(|number| format!("${number}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `sql` for every key in `keys`, [`KEYS_PER_STATEMENT`] at a time, and returns the rows
/// it changed. Its parameters are `fixed`, then the keys (placeholders from
/// [`key_placeholders`]). One statement for many rows matters because each statement is a
/// round trip (on SQLite, a hand-off to the connection's worker thread). A short last chunk
/// repeats its last key, which an `IN` list ignores, so one prepared statement serves every
/// size.
pub async fn execute_for_keys(
    tx: &mut dyn ReadModelTx,
    sql: &'static str,
    fixed: &[SqlValue],
    keys: &[&str],
) -> Result<u64, StoreError> {
    let mut changed = 0;
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let mut params = fixed.to_vec();
        params.extend(
            (0..KEYS_PER_STATEMENT).map(|index| SqlValue::from(chunk[index.min(chunk.len() - 1)])),
        );
        changed += tx.execute(sql, &params).await?;
    }
    Ok(changed)
}
