//! `shoal identity ...`: the admin CLI of the built-in identity. Every command opens the
//! configured database (applying migrations, like `shoal db sync`) and calls
//! [`IdentityService`], so what it changes is seen by every node at once.

use std::io::BufRead;

use anyhow::{Context, bail};
use chrono::Utc;
use shoal_identity::{IdentityService, password};

use crate::cli::{
    CommonArgs, IdentityCommand, PasswordArgs, ProjectCommand, RoleCommand, UserCommand,
};
use crate::server::open_store;

/// Reads the password named by `args`.
fn read_password(args: &PasswordArgs) -> anyhow::Result<String> {
    if let Some(password) = &args.password {
        return Ok(password.clone());
    }
    if !args.password_stdin {
        bail!("give the password with --password-stdin (preferred) or --password");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("the password on standard input is empty");
    }
    Ok(password)
}

async fn open(common: &CommonArgs) -> anyhow::Result<IdentityService> {
    let config = common.load()?;
    let store = open_store(&config).await?;
    IdentityService::open(store, config.identity.clone())
        .await
        .context("opening the built-in identity")
}

/// Runs one `shoal identity` command, printing what it did on standard output.
pub async fn run(command: IdentityCommand) -> anyhow::Result<()> {
    let now = Utc::now();
    match command {
        IdentityCommand::HashPassword(args) => {
            let plain = read_password(&args)?;
            println!(
                "{}",
                password::hash_password(&plain).map_err(anyhow::Error::msg)?
            );
        }
        IdentityCommand::User { command } => match command {
            UserCommand::Add {
                name,
                project,
                roles,
                password,
                common,
            } => {
                let plain = read_password(&password)?;
                let identity = open(&common).await?;
                let user = identity
                    .add_user(&name, &plain, project.as_deref(), &roles, now)
                    .await?;
                println!("created user {} ({})", user.name, user.id);
            }
            UserCommand::SetPassword {
                name,
                password,
                common,
            } => {
                let plain = read_password(&password)?;
                open(&common)
                    .await?
                    .set_password(&name, &plain, now)
                    .await?;
                println!("password of {name} changed; its older tokens are no longer valid");
            }
            UserCommand::Enable { name, common } => {
                open(&common).await?.set_enabled(&name, true, now).await?;
                println!("enabled user {name}");
            }
            UserCommand::Disable { name, common } => {
                open(&common).await?.set_enabled(&name, false, now).await?;
                println!("disabled user {name}");
            }
            UserCommand::Delete { name, common } => {
                open(&common).await?.delete_user(&name).await?;
                println!("deleted user {name}");
            }
            UserCommand::List(common) => {
                let identity = open(&common).await?;
                let projects = identity.list_projects().await?;
                let assignments = identity.list_role_assignments().await?;
                let project_name = |id: &str| {
                    projects
                        .iter()
                        .find(|p| p.id == id)
                        .map_or(id.to_owned(), |p| p.name.clone())
                };
                for user in identity.list_users().await? {
                    let roles: Vec<String> = assignments
                        .iter()
                        .filter(|a| a.user_id == user.id)
                        .map(|a| format!("{}:{}", project_name(&a.project_id), a.role))
                        .collect();
                    println!(
                        "{}\t{}\t{}\t{}",
                        user.name,
                        user.id,
                        if user.enabled { "enabled" } else { "disabled" },
                        roles.join(",")
                    );
                }
            }
        },
        IdentityCommand::Project { command } => match command {
            ProjectCommand::Add {
                name,
                description,
                common,
            } => {
                let project = open(&common)
                    .await?
                    .add_project(&name, &description, now)
                    .await?;
                println!("created project {} ({})", project.name, project.id);
            }
            ProjectCommand::List(common) => {
                for project in open(&common).await?.list_projects().await? {
                    println!("{}\t{}\t{}", project.name, project.id, project.description);
                }
            }
        },
        IdentityCommand::Role { command } => match command {
            RoleCommand::Add(args) => {
                open(&args.common)
                    .await?
                    .grant_role(&args.user, &args.project, &args.role)
                    .await?;
                println!("granted {} on {} to {}", args.role, args.project, args.user);
            }
            RoleCommand::Remove(args) => {
                open(&args.common)
                    .await?
                    .revoke_role(&args.user, &args.project, &args.role)
                    .await?;
                println!(
                    "revoked {} on {} from {}",
                    args.role, args.project, args.user
                );
            }
        },
    }
    Ok(())
}
