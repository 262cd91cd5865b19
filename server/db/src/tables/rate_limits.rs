use sea_orm::entity::prelude::*;

/// One rate limit's state, shared by every server instance: failures (or events in the current
/// window) under `key`, when the window started or the last failure came, and the end of the
/// delay the key serves. Changed only under the row's lock ([`crate::Database::update_rate_limit`]).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rate_limits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub count: i64,
    pub since: DateTimeUtc,
    pub blocked_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
