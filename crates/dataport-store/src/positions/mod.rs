//! Positions in the shared database (`bars_url`): the latest position of
//! every entity, durable, and the news of each publish for every replica.
//!
//! A publish is one statement: it updates the entity's row (its revision one
//! higher, so revisions are the same on every replica) and notifies
//! `dataport_positions` with the new row, which reaches every replica's
//! listener (the publisher's too) when it commits. The payload carries the
//! whole position, so a replica hands it to its watchers without a query.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dataport_core::position::Vec3;

use crate::postgres::{Database, DbError, Notice};

/// The schema, one script per version.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql")];

/// The channel publishes notify, with [`Stored::payload`] as payload.
const CHANNEL: &str = "dataport_positions";

/// One entity's position as of one publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub entity: String,
    pub position: Vec3,
    pub time: SystemTime,
    pub revision: u64,
}

/// What a replica hears of publishes ([`PgPositions::subscribe`]).
#[derive(Clone, Debug, PartialEq)]
pub enum News {
    /// A publish, through any replica.
    Published(Stored),
    /// The connection was lost and is back: publishes may have been missed,
    /// so read them again ([`PgPositions::all`]).
    Resync,
}

/// The latest positions, in the shared database.
#[derive(Debug)]
pub struct PgPositions {
    db: Arc<Database>,
}

/// The columns every query returns, in [`Stored::from_row`]'s order.
const COLUMNS: &str = "entity, x, y, z, updated, revision";

impl PgPositions {
    /// Brings the positions' schema in `db` up to date.
    pub fn open(db: Arc<Database>) -> Result<Self, DbError> {
        db.migrate("positions", MIGRATIONS)?;
        Ok(PgPositions { db })
    }

    /// Records `position` for `entity` (both already validated) and tells
    /// every replica. `None`: the entity is new and `max_entities` are
    /// stored already.
    pub fn publish(
        &self,
        entity: &str,
        position: Vec3,
        max_entities: usize,
    ) -> Result<Option<Stored>, DbError> {
        let entity = entity.to_owned();
        let limit = i64::try_from(max_entities).unwrap_or(i64::MAX);
        let row = self.db.query(move |client| async move {
            let statement = client
                .prepare_cached(&format!(
                    "WITH up AS (
                         INSERT INTO positions AS p (entity, x, y, z, updated, revision)
                         SELECT $1, $2, $3, $4, clock_timestamp(), 1
                         WHERE EXISTS (SELECT 1 FROM positions WHERE entity = $1)
                            OR (SELECT COUNT(*) FROM positions) < $5
                         ON CONFLICT (entity) DO UPDATE SET x = EXCLUDED.x, y = EXCLUDED.y, z = EXCLUDED.z,
                             updated = EXCLUDED.updated, revision = p.revision + 1
                         RETURNING {COLUMNS})
                     SELECT {COLUMNS}, pg_notify('{CHANNEL}', concat_ws(' ', x, y, z,
                         floor(extract(epoch FROM updated) * 1000000)::bigint, revision, entity))
                     FROM up"
                ))
                .await?;
            client.query_opt(&statement, &[&entity, &position.x, &position.y, &position.z, &limit]).await
        })?;
        Ok(row.map(|r| Stored::from_row(&r)))
    }

    /// The latest position of `entity`, if it was ever published.
    pub fn get(&self, entity: &str) -> Result<Option<Stored>, DbError> {
        let entity = entity.to_owned();
        let row = self.db.query(move |client| async move {
            let statement =
                client.prepare_cached(&format!("SELECT {COLUMNS} FROM positions WHERE entity = $1")).await?;
            client.query_opt(&statement, &[&entity]).await
        })?;
        Ok(row.map(|r| Stored::from_row(&r)))
    }

    /// Every entity's latest position.
    pub fn all(&self) -> Result<Vec<Stored>, DbError> {
        let rows = self.db.query(|client| async move {
            client.query(&format!("SELECT {COLUMNS} FROM positions"), &[]).await
        })?;
        Ok(rows.iter().map(Stored::from_row).collect())
    }

    /// Calls `subscriber` with every publish and after every reconnect. It
    /// runs on the database's own thread: it must hand the news on, never
    /// query the database itself.
    pub fn subscribe(&self, subscriber: Arc<dyn Fn(News) + Send + Sync>) {
        let url = self.db.url().to_owned();
        self.db.subscribe(
            CHANNEL,
            Arc::new(move |notice| match notice {
                Notice::Reconnected => subscriber(News::Resync),
                Notice::Message(payload) => match Stored::from_payload(&payload) {
                    Some(stored) => subscriber(News::Published(stored)),
                    None => tracing::warn!(url, payload, "positions: a notification that does not parse"),
                },
            }),
        );
    }

    /// Whether the database can be reached now.
    pub fn reachable(&self) -> bool {
        self.db.reachable()
    }
}

impl Stored {
    fn from_row(row: &tokio_postgres::Row) -> Stored {
        Stored {
            entity: row.get(0),
            position: Vec3 { x: row.get(1), y: row.get(2), z: row.get(3) },
            time: row.get(4),
            revision: row.get::<_, i64>(5).unsigned_abs(),
        }
    }

    /// Parses `x y z micros revision entity`, as the publish statement
    /// notifies (PostgreSQL writes each double exactly, in the fewest digits).
    fn from_payload(payload: &str) -> Option<Stored> {
        let mut parts = payload.splitn(6, ' ');
        let mut number = || parts.next().and_then(|p| p.parse::<f64>().ok());
        let position = Vec3 { x: number()?, y: number()?, z: number()? };
        let micros: u64 = parts.next()?.parse().ok()?;
        let revision = parts.next()?.parse().ok()?;
        let entity = parts.next()?.to_owned();
        Some(Stored { entity, position, time: UNIX_EPOCH + Duration::from_micros(micros), revision })
    }
}

#[cfg(test)]
mod tests;
