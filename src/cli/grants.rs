//! `manifold grants grafana ROLE`: the read-only role Grafana's PostgreSQL data source uses.
//! Printed by default (a DBA runs it); `--execute` runs it, creating the role through an admin
//! URL, because the application role cannot create roles, and granting through the
//! application's own URL, because it owns the views.

use anyhow::Context;
use clap::Subcommand;

use crate::config::{Config, DatabaseUrl};
use crate::store::Store;
use crate::store::grants::{self, GRAFANA_VIEWS, RoleName};

#[derive(Debug, Subcommand)]
pub enum GrantsAction {
    /// A read-only role that can read exactly the views the Grafana dashboards read, in every
    /// tenant (Grafana is an operator tool). Prints the SQL unless --execute.
    Grafana(GrafanaGrants),
}

#[derive(Debug, clap::Args)]
pub struct GrafanaGrants {
    /// The role to create (or update): lowercase letters, digits and _.
    #[arg(value_parser = RoleName::parse)]
    pub role: RoleName,
    /// Let the role log in (Grafana's data source user) with the password in GRAFANA_PG_PASSWORD
    /// (printed SQL leaves psql's :'grafana_password' in its place).
    #[arg(long)]
    pub login: bool,
    /// Run the SQL instead of printing it: the role is created through --admin-url, the grants
    /// are made through the configured database URL (the owner of manifold's tables).
    #[arg(long, requires = "admin_url")]
    pub execute: bool,
    /// A role allowed to create roles (CREATEROLE or superuser), e.g. postgres://admin@host/manifold.
    #[arg(long, env = "MANIFOLD_PG_ADMIN_URL", value_name = "URL", hide_env_values = true)]
    pub admin_url: Option<String>,
    #[arg(long, env = "GRAFANA_PG_PASSWORD", hide_env_values = true, hide = true)]
    pub password: Option<String>,
}

pub async fn run(config: &Config, action: GrantsAction, home: Option<&std::path::Path>) -> anyhow::Result<i32> {
    let GrantsAction::Grafana(args) = action;
    if !args.execute {
        println!("-- Read-only role {} for Grafana. Part 1 needs CREATEROLE; part 2 runs as the application role", args.role.as_str());
        println!("-- (the owner of manifold's tables) in manifold's database. With psql: psql -v grafana_password=… -f FILE");
        print!("{}", grants::role_sql(&args.role, args.login, None));
        print!("{}", grants::grants_sql(&args.role));
        return Ok(0);
    }
    let password = match (args.login, args.password.as_deref()) {
        (true, None | Some("")) => anyhow::bail!("--login --execute: set GRAFANA_PG_PASSWORD to the password the role logs in with"),
        (true, Some(p)) => Some(p),
        (false, _) => None,
    };
    let admin_url = args.admin_url.context("--execute needs --admin-url (or MANIFOLD_PG_ADMIN_URL)")?;
    let mut admin = config.database.clone();
    admin.url = DatabaseUrl::new(&admin_url);
    admin.resolve_tls(home).context("--admin-url")?;
    let mut client = Store::dedicated(&admin).await.with_context(|| format!("connecting to --admin-url {}", admin.url.redacted()))?;
    grants::execute(&mut client, &grants::role_sql(&args.role, args.login, password), "create the role (needs CREATEROLE)").await?;
    let mut owner = Store::dedicated(&config.database).await.with_context(|| format!("connecting to {}", config.database.url.redacted()))?;
    grants::execute(&mut owner, &grants::grants_sql(&args.role), "grant SELECT on the grafana views (needs their owner)").await?;
    println!(
        "role {} {}: SELECT on {}",
        args.role.as_str(),
        if args.login { "may log in" } else { "cannot log in (NOLOGIN)" },
        GRAFANA_VIEWS.join(", ")
    );
    Ok(0)
}
