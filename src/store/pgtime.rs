//! Event times travel as microseconds since the Unix epoch; PostgreSQL's binary timestamptz is
//! microseconds since 2000-01-01. Converting with one subtraction keeps COPY's per-row cost low.

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgTimestamp(pub i64);

impl ToSql for PgTimestamp {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let pg = self.0.checked_sub(PG_EPOCH_OFFSET_US).ok_or("timestamp out of range")?;
        out.extend_from_slice(&pg.to_be_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ || *ty == Type::TIMESTAMP
    }

    to_sql_checked!();
}
