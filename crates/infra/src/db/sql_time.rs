//! Timestamps as each backend stores them: `timestamptz` on PostgreSQL, and on SQLite integer
//! microseconds since the epoch, which compare and sort correctly in SQL (text timestamps with
//! differing fractional digits do not). sqlx encodes PostgreSQL's `timestamptz` and `date` for
//! the `time` crate, not for jiff, so there the values cross as `time`'s types; the domain, this
//! crate and the web crate otherwise speak jiff alone.

use carehub_domain::kernel::{format_date, parse_date};
use jiff::Timestamp;
use jiff::civil::Date;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use time::OffsetDateTime;

/// An instant as stored in either database, with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DbTime(pub Timestamp);

impl From<Timestamp> for DbTime {
    fn from(at: Timestamp) -> Self {
        Self(at)
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Sqlite>>::encode(self.0.as_microsecond(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let micros = <i64 as Decode<Sqlite>>::decode(value)?;
        Ok(Self(Timestamp::from_microsecond(micros)?))
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        let at = OffsetDateTime::from_unix_timestamp_nanos(self.0.as_nanosecond())?;
        <OffsetDateTime as Encode<Postgres>>::encode(at, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let at = <OffsetDateTime as Decode<Postgres>>::decode(value)?;
        Ok(Self(Timestamp::from_nanosecond(at.unix_timestamp_nanos())?))
    }
}

/// A calendar date as stored in either database: `date` on PostgreSQL, `YYYY-MM-DD` text on
/// SQLite. Like [`DbTime`], it crosses PostgreSQL as the `time` crate's type, which sqlx encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DbDate(pub Date);

impl Type<Sqlite> for DbDate {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for DbDate {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(format_date(self.0), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbDate {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let raw = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Self(parse_date(raw)?))
    }
}

impl Type<Postgres> for DbDate {
    fn type_info() -> PgTypeInfo {
        <time::Date as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <time::Date as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for DbDate {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        let month = time::Month::try_from(u8::try_from(self.0.month())?)?;
        let date = time::Date::from_calendar_date(
            i32::from(self.0.year()),
            month,
            u8::try_from(self.0.day())?,
        )?;
        <time::Date as Encode<Postgres>>::encode(date, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbDate {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let date = <time::Date as Decode<Postgres>>::decode(value)?;
        Ok(Self(Date::new(
            i16::try_from(date.year())?,
            i8::try_from(u8::from(date.month()))?,
            i8::try_from(date.day())?,
        )?))
    }
}
