//! `shoal` entry point: logging, the command line, and signal handling.

use anyhow::Context;
use clap::Parser;
use shoal::cli::{BenchCommand, Cli, Command, ConfigCommand, DbCommand};
use shoal::server::{Server, load_policy, open_store};
use tracing_subscriber::EnvFilter;

/// `default` is the level when `RUST_LOG` is unset.
/// Colour only for a person at a terminal: a log file or a pipe to journald would keep the
/// escape codes, and `NO_COLOR` set to anything but the empty string turns it off
/// (no-color.org).
fn use_color(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn init_logging(default: &str) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let color = use_color(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr);
    // RUST_LOG_FORMAT=json switches to structured logs for log shippers.
    if std::env::var("RUST_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on unix");
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The identity CLI prints its own results; start-up chatter would only hide them.
    init_logging(match cli.command {
        Command::Identity { .. } => "warn",
        _ => "info",
    });
    // Failpoints armed from FAILPOINTS (`<name>=return` aborts there); only in a build with
    // the `testing` feature, which release builds never have.
    #[cfg(feature = "testing")]
    let _failpoints = {
        let scenario = fail::FailScenario::setup();
        tracing::warn!(
            "failpoints compiled in (testing build); FAILPOINTS={:?}",
            std::env::var("FAILPOINTS").unwrap_or_default()
        );
        scenario
    };
    match cli.command {
        Command::Serve(args) => {
            let config = args.load()?;
            let server = Server::start(config).await?;
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = server.wait() => tracing::warn!("a task stopped unexpectedly"),
            }
            server.shutdown().await;
        }
        Command::Db {
            command: DbCommand::Sync(args),
        } => {
            let config = args.load()?;
            let store = open_store(&config).await?;
            store.close().await;
            println!(
                "database {} is up to date",
                config.effective_database_url_redacted()
            );
        }
        Command::Bench {
            command:
                BenchCommand::Shares {
                    clients,
                    shares,
                    database_url,
                },
        } => {
            let settings = shoal::bench::SharesBench {
                clients,
                shares,
                database_url,
            };
            let rounds = shoal::bench::run(&settings).await?;
            shoal::bench::print(&rounds);
        }
        Command::Bench {
            command:
                BenchCommand::ApiNodes {
                    database_url,
                    nodes,
                    clients,
                    seconds,
                },
        } => {
            let settings = shoal::bench_api_nodes::ApiNodesBench {
                database_url,
                nodes,
                clients,
                duration: std::time::Duration::from_secs(seconds),
            };
            let rows = shoal::bench_api_nodes::run(&settings).await?;
            shoal::bench_api_nodes::print(&rows);
        }
        Command::Bench {
            command: BenchCommand::Replication(tree),
        } => {
            let settings = shoal::bench_replication::ReplicationBench::from(tree);
            let rows =
                tokio::task::spawn_blocking(move || shoal::bench_replication::run(&settings))
                    .await??;
            shoal::bench_replication::print(&rows);
        }
        Command::Bench {
            command: BenchCommand::ReplicationPeer(tree),
        } => {
            let settings = shoal::bench_replication::ReplicationBench::from(tree);
            let mut run = tokio::task::spawn_blocking(move || shoal::bench_peer::run(&settings));
            let results = tokio::select! {
                results = &mut run => results??,
                _ = shutdown_signal() => {
                    // The run fails at once and removes its namespaces and scratch dir.
                    shoal::bench_peer::interrupt();
                    run.await??
                }
            };
            shoal::bench_peer::print(&results);
        }
        Command::Bench {
            command: BenchCommand::NfsLag(args),
        } => {
            let settings = shoal::bench_lag::LagBench::from(args);
            let results = shoal::bench_lag::run(&settings).await?;
            shoal::bench_lag::print(&settings, &results);
        }
        Command::Bench {
            command: BenchCommand::Soak(args),
        } => {
            let settings = shoal::bench_soak::SoakBench::from(args);
            let results = shoal::bench_soak::run(&settings).await?;
            shoal::bench_soak::print(&results);
            if !results.passed() {
                anyhow::bail!(
                    "soak failed: {} failures, {} checks broken",
                    results.failures.len(),
                    results.checks.iter().filter(|c| !c.passed).count()
                );
            }
        }
        Command::Bench {
            command: BenchCommand::Nfs(args),
        } => {
            let settings = shoal::bench_nfs::NfsBench::from(args);
            let mut run = tokio::task::spawn_blocking(move || shoal::bench_nfs::run(&settings));
            let results = tokio::select! {
                results = &mut run => results??,
                _ = shutdown_signal() => {
                    // The run fails at once and removes its namespaces and scratch dir.
                    shoal::netns::interrupt();
                    run.await??
                }
            };
            shoal::bench_nfs::print(&results);
        }
        Command::Bench {
            command:
                BenchCommand::NfsServe {
                    dir,
                    listen,
                    client,
                },
        } => shoal::bench_nfs::serve(&dir, listen, &client, shutdown_signal()).await?,
        Command::Bench {
            command:
                BenchCommand::PeerServe {
                    pool,
                    listen,
                    secret_file,
                },
        } => shoal::bench_peer::serve(&pool, listen, &secret_file, shutdown_signal()).await?,
        Command::Bench {
            command:
                BenchCommand::PeerSync {
                    replica,
                    peer,
                    root,
                    secret_file,
                },
        } => {
            let report = shoal::bench_peer::sync_once(replica, peer, root, &secret_file).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Identity { command } => shoal::identity_cli::run(command).await?,
        Command::Config {
            command: ConfigCommand::Check(args),
        } => {
            let config = args.load()?;
            load_policy(&config).context("policy file")?;
            let text = toml::to_string_pretty(&config.redacted())
                .context("rendering the configuration")?;
            println!("{text}");
            eprintln!("configuration is valid");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::use_color;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))));
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(false, None));
        assert!(!use_color(false, Some(OsStr::new("1"))));
    }
}
