//! Values the whole installation shares (every instance of one database reads the same).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::tables::server_settings;
use crate::{Database, Error};

impl Database {
    pub async fn server_setting(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(server_settings::Entity::find_by_id(name.to_owned())
            .one(self.connection())
            .await?
            .map(|row| row.value))
    }

    /// Writes the value unless one is stored already; `true` when this call wrote it.
    pub async fn insert_server_setting_if_missing(
        &self,
        name: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let inserted = server_settings::Entity::insert(server_settings::ActiveModel {
            name: Set(name.to_owned()),
            value: Set(value.to_owned()),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(server_settings::Column::Name)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(self.connection())
        .await?;
        Ok(inserted > 0)
    }
}

impl Database {
    /// Takes this period's round of a periodic task (`task`, e.g. removing old runs) for
    /// `instance`, if no instance took one within the last `period`: one conditional update of
    /// the task's row (created the first time), so of instances asking at once exactly one
    /// gets the round. `true` when this call took it.
    pub async fn take_periodic_round(
        &self,
        task: &str,
        instance: &str,
        period: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        // A task never run is due: its row starts a period in the past.
        self.insert_server_setting_if_missing(task, "", now - period - period)
            .await?;
        let taken = server_settings::Entity::update_many()
            .col_expr(server_settings::Column::Value, Expr::value(instance))
            .col_expr(server_settings::Column::UpdatedAt, Expr::value(now))
            .filter(server_settings::Column::Name.eq(task))
            .filter(server_settings::Column::UpdatedAt.lte(now - period))
            .exec(self.connection())
            .await?;
        Ok(taken.rows_affected == 1)
    }
}

/// Writes the value, replacing any stored one (inside the caller's transaction when given one).
pub(crate) async fn upsert_server_setting(
    connection: &impl ConnectionTrait,
    name: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    server_settings::Entity::insert(server_settings::ActiveModel {
        name: Set(name.to_owned()),
        value: Set(value.to_owned()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(server_settings::Column::Name)
            .update_columns([
                server_settings::Column::Value,
                server_settings::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(connection)
    .await?;
    Ok(())
}
