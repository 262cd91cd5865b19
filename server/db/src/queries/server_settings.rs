//! Values the whole installation shares (every instance of one database reads the same).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

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
