//! Every provider call is recorded, failed ones included: the outcome of the call (`ok`,
//! `error`, `incomplete`, `cancelled`, or `failed_over` for a fallback attempt that used tokens
//! before the next model answered) and, for failures, the kind of error.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiUsage::Table)
                    .add_column(string(ApiUsage::Outcome).default("ok"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiUsage::Table)
                    .add_column(string_null(ApiUsage::ErrorKind))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiUsage::Table)
                    .drop_column(ApiUsage::ErrorKind)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiUsage::Table)
                    .drop_column(ApiUsage::Outcome)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ApiUsage {
    Table,
    Outcome,
    ErrorKind,
}
