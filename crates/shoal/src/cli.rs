//! Command line of the `shoal` binary. Flags override the config file and `SHOAL_*`
//! variables, which override the embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use shoal_core::config::{AuthStrategy, Role};
use shoal_core::{Config, config::ConfigError};

/// shoal: a Manila-compatible shared file systems service with real share replication.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (all roles by default).
    Serve(ServeArgs),
    /// Database administration.
    Db {
        /// Database command.
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Configuration tools.
    Config {
        /// Config command.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Users, projects and roles of the built-in identity (`auth_strategy = "builtin"`).
    Identity {
        /// Identity command.
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Benchmarks that print figures for docs/BENCHMARKS.md.
    Bench {
        /// Benchmark to run.
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// `shoal bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Share create → available throughput on dummy back ends, through the HTTP API.
    Shares {
        /// Concurrent clients per round, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        clients: Vec<usize>,
        /// Shares created per round.
        #[arg(long, default_value_t = 640)]
        shares: usize,
        /// Database URL (default: SQLite in a temp dir).
        #[arg(long, default_value = "")]
        database_url: String,
    },
    /// API throughput with one API node against two, separate processes on one PostgreSQL.
    ApiNodes {
        /// PostgreSQL URL; the benchmark works in a schema of its own and drops it.
        #[arg(long)]
        database_url: String,
        /// API node counts to measure, comma-separated (1 and/or 2).
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        nodes: Vec<usize>,
        /// Concurrent clients per workload.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds each workload runs.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The local back end's replication engine against `cp -a` and `rsync -a`.
    Replication(TreeArgs),
    /// Replication between two network namespaces of this host (root, `ip netns`): the
    /// engine over its node-to-node endpoint against `rsync -a` over ssh and an rsync daemon.
    ReplicationPeer(TreeArgs),
    /// The embedded NFSv3 server against NFS-Ganesha (root, `ip netns`; Debian packages
    /// nfs-ganesha, nfs-ganesha-vfs, rpcbind): sequential write and read of a large file,
    /// create + write of small files, through the same client.
    Nfs(NfsArgs),
    /// Replication lag of a readable secondary under a steady write load through NFS, on
    /// an in-process node (embedded default: SQLite, two `local` back ends).
    NfsLag(LagArgs),
    /// Load and soak: concurrent clients mix share, replica, snapshot and access calls on
    /// an in-process node with three `local` back ends for a while, then delete everything
    /// and check that no object, operation, quota usage, row or directory is left behind.
    Soak(SoakArgs),
    /// Serve `--dir` over NFSv3 (shoal-nfs) until killed (the shoal side of `bench nfs`).
    #[command(hide = true)]
    NfsServe {
        /// Directory to export (as `/shares/<fixed id>`).
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on (NFS and MOUNT).
        #[arg(long)]
        listen: SocketAddr,
        /// Clients admitted read-write (address or CIDR).
        #[arg(long)]
        client: String,
    },
    /// Serve the share data roots `<pool>/shares/<uuid>` on the replication endpoint until
    /// killed (the serving side of `replication-peer`).
    PeerServe {
        /// Pool directory.
        #[arg(long)]
        pool: PathBuf,
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// File holding the cluster secret.
        #[arg(long)]
        secret_file: PathBuf,
    },
    /// One sync of a replica from a share data root on another node's endpoint; prints the
    /// report as one JSON line (the syncing side of `replication-peer`).
    PeerSync {
        /// Replica directory (created if missing).
        #[arg(long)]
        replica: PathBuf,
        /// The peer's replication endpoint, `host:port`.
        #[arg(long)]
        peer: String,
        /// The share data root on the peer, `<pool>/shares/<uuid>`.
        #[arg(long)]
        root: PathBuf,
        /// File holding the cluster secret.
        #[arg(long)]
        secret_file: PathBuf,
    },
}

/// `shoal identity ...`: works on the database directly, so it needs no running server and
/// takes effect on every node at once.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Users.
    User {
        /// User command.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Projects.
    Project {
        /// Project command.
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Role assignments.
    Role {
        /// Role command.
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Print the argon2 hash of a password, for `password_hash` in `[[identity.users]]`.
    HashPassword(PasswordArgs),
}

/// `shoal identity user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; with --project, that project (created if missing) is its default
    /// project and the --role roles are granted there.
    Add {
        /// User name.
        name: String,
        /// Project to grant the roles on; the user's default project.
        #[arg(long)]
        project: Option<String>,
        /// Role on the project (repeat for several): admin, member, reader, service...
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The password.
        #[command(flatten)]
        password: PasswordArgs,
        /// Config, data directory and database.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Replace a user's password; its existing tokens stop working.
    SetPassword {
        /// User name.
        name: String,
        /// The new password.
        #[command(flatten)]
        password: PasswordArgs,
        /// Config, data directory and database.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Allow a disabled user to authenticate again.
    Enable {
        /// User name.
        name: String,
        /// Config, data directory and database.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Refuse a user's authentications and end its tokens.
    Disable {
        /// User name.
        name: String,
        /// Config, data directory and database.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Delete a user and its role assignments.
    Delete {
        /// User name.
        name: String,
        /// Config, data directory and database.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List users with their role assignments.
    List(CommonArgs),
}

/// `shoal identity project ...`.
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project.
    Add {
        /// Project name.
        name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// Config, data directory and database.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List projects.
    List(CommonArgs),
}

/// `shoal identity role ...`.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Grant a role on a project to a user.
    Add(RoleArgs),
    /// Revoke a role on a project from a user.
    Remove(RoleArgs),
}

/// Who gets or loses which role where.
/// The replication benchmarks' tree and scratch directory.
#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct TreeArgs {
    /// Scratch directory (default: a temp dir under the current directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Small files in the source tree.
    #[arg(long, default_value_t = 20_000)]
    pub files: usize,
    /// Size of the one large file, in GiB.
    #[arg(long, default_value_t = 1)]
    pub big_gib: u64,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl From<TreeArgs> for crate::bench_replication::ReplicationBench {
    fn from(a: TreeArgs) -> Self {
        Self {
            dir: a.dir,
            files: a.files,
            big_gib: a.big_gib,
            seed: a.seed,
        }
    }
}

/// Settings of `shoal bench nfs`. Sizes take a unit: 4096, 4KiB, 1MiB, 1GiB, 1GB.
#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct NfsArgs {
    /// Scratch directory; the export is made in it (default: a temp dir under the current
    /// directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Size of the large file.
    #[arg(long, default_value = "1GiB", value_parser = crate::bench_nfs::parse_size)]
    pub size: u64,
    /// Bytes per READ and WRITE of the large file (at most 1 MiB).
    #[arg(long, default_value = "1MiB", value_parser = crate::bench_nfs::parse_size)]
    pub io_size: u64,
    /// Small files created.
    #[arg(long, default_value_t = 10_000)]
    pub files: usize,
    /// Size of each small file (at most 1 MiB).
    #[arg(long, default_value = "4KiB", value_parser = crate::bench_nfs::parse_size)]
    pub file_size: u64,
    /// TCP connections (one mount each) the client uses at once per server.
    #[arg(long, default_value_t = 4)]
    pub streams: usize,
    /// Runs; the medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

impl From<NfsArgs> for crate::bench_nfs::NfsBench {
    fn from(a: NfsArgs) -> Self {
        Self {
            dir: a.dir,
            size: a.size,
            io_size: a.io_size,
            files: a.files,
            file_size: a.file_size,
            streams: a.streams,
            runs: a.runs,
        }
    }
}

/// Settings of `shoal bench nfs-lag`.
#[derive(Debug, Args, Clone, PartialEq)]
pub struct LagArgs {
    /// Scratch directory for the node's data (default: a temp dir under the current
    /// directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Files of the replication benchmark's tree in the share before the load.
    #[arg(long, default_value_t = 20_000)]
    pub tree_files: usize,
    /// Seconds the writer writes.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Files written per second.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Size of each written file (at most 1 MiB).
    #[arg(long, default_value = "64KiB", value_parser = crate::bench_nfs::parse_size)]
    pub file_size: u64,
    /// Milliseconds between two looks of the reader at the secondary.
    #[arg(long, default_value_t = 10)]
    pub poll_ms: u64,
}

impl From<LagArgs> for crate::bench_lag::LagBench {
    fn from(a: LagArgs) -> Self {
        Self {
            dir: a.dir,
            tree_files: a.tree_files,
            duration: std::time::Duration::from_secs(a.seconds),
            rate: a.rate,
            file_size: a.file_size,
            poll: std::time::Duration::from_millis(a.poll_ms),
        }
    }
}

/// Settings of `shoal bench soak`.
#[derive(Debug, Args, Clone, PartialEq)]
pub struct SoakArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// How long the clients load the node before they clean up (`20s`, `10m`).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Database URL (default: SQLite in the scratch directory); a PostgreSQL URL gets a
    /// schema of its own, dropped afterwards.
    #[arg(long, default_value = "")]
    pub database_url: String,
    /// Seed of the clients' random generators.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scratch directory for the node's data (default: the system's temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// A duration with a unit: `500ms`, `20s`, `10m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 20s or 10m"))?;
    let secs = |k: u64| std::time::Duration::from_secs(n.saturating_mul(k));
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "" | "s" => Ok(secs(1)),
        "m" | "min" => Ok(secs(60)),
        "h" => Ok(secs(3600)),
        _ => Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    }
}

impl From<SoakArgs> for crate::bench_soak::SoakBench {
    fn from(a: SoakArgs) -> Self {
        Self {
            clients: a.clients,
            duration: a.duration,
            database_url: a.database_url,
            seed: a.seed,
            dir: a.dir,
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct RoleArgs {
    /// Role name.
    pub role: String,
    /// User name.
    #[arg(long)]
    pub user: String,
    /// Project name.
    #[arg(long)]
    pub project: String,
    /// Config, data directory and database.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Where a password comes from: standard input (preferred: it stays out of `ps` and shell
/// history) or the command line.
#[derive(Debug, Args, Clone, Default)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// The password itself.
    #[arg(long)]
    pub password: Option<String>,
}

/// `shoal db ...`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations and exit.
    Sync(CommonArgs),
}

/// `shoal config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (file, environment, flags and policy file) and print it.
    Check(ServeArgs),
}

/// Flags shared by every command that reads the configuration.
#[derive(Debug, Args, Clone, Default)]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for everything the default configuration writes.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Database URL (`sqlite://PATH` or `postgres://...`).
    #[arg(long)]
    pub database_url: Option<String>,
}

/// Flags of `shoal serve`.
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Config, data directory and database.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address and port of the API.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Roles to run, comma-separated: api, scheduler, share.
    #[arg(long, value_delimiter = ',')]
    pub roles: Option<Vec<Role>>,
    /// Authentication strategy.
    #[arg(long)]
    pub auth: Option<AuthStrategy>,
}

impl CommonArgs {
    /// Loads the layered configuration and applies these flags on top.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            config.database_url = url.clone();
        }
        config.validate()?;
        Ok(config)
    }
}

impl ServeArgs {
    /// Loads the configuration with every serve flag applied.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = self.common.load()?;
        if let Some(listen) = self.listen {
            config.api.listen = listen;
        }
        if let Some(roles) = &self.roles {
            config.roles = roles.clone();
        }
        if let Some(auth) = self.auth {
            config.api.auth_strategy = auth;
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_parse() {
        let cli = Cli::parse_from([
            "shoal",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--roles",
            "api,share",
            "--auth",
            "keystone",
            "--data-dir",
            "/tmp/x",
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(args.roles, Some(vec![Role::Api, Role::Share]));
        assert_eq!(args.auth, Some(AuthStrategy::Keystone));
        assert_eq!(args.common.data_dir, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn identity_flags_parse() {
        let cli = Cli::parse_from([
            "shoal",
            "identity",
            "user",
            "add",
            "demo",
            "--project",
            "demo",
            "--role",
            "member",
            "--role",
            "reader",
            "--password-stdin",
            "--data-dir",
            "/tmp/x",
        ]);
        let Command::Identity {
            command:
                IdentityCommand::User {
                    command:
                        UserCommand::Add {
                            name,
                            project,
                            roles,
                            password,
                            common,
                        },
                },
        } = cli.command
        else {
            panic!("identity user add expected")
        };
        assert_eq!(name, "demo");
        assert_eq!(project.as_deref(), Some("demo"));
        assert_eq!(roles, vec!["member", "reader"]);
        assert!(password.password_stdin);
        assert_eq!(common.data_dir, Some(PathBuf::from("/tmp/x")));
        let cli = Cli::parse_from(["shoal", "serve", "--auth", "builtin"]);
        let Command::Serve(args) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(args.auth, Some(AuthStrategy::Builtin));
    }

    #[test]
    fn bench_nfs_flags_parse() {
        let cli = Cli::parse_from(["shoal", "bench", "nfs"]);
        let Command::Bench {
            command: BenchCommand::Nfs(args),
        } = cli.command
        else {
            panic!("bench nfs expected")
        };
        let settings = crate::bench_nfs::NfsBench::from(args);
        assert_eq!(
            (
                settings.size,
                settings.io_size,
                settings.files,
                settings.file_size
            ),
            (1 << 30, 1 << 20, 10_000, 4096)
        );
        assert_eq!(
            (settings.streams, settings.runs, settings.dir),
            (4, 3, None)
        );

        let cli = Cli::parse_from([
            "shoal",
            "bench",
            "nfs",
            "--size",
            "64MiB",
            "--io-size",
            "256k",
            "--files",
            "10",
            "--file-size",
            "1KB",
            "--streams",
            "2",
            "--runs",
            "1",
            "--dir",
            "/tmp/x",
        ]);
        let Command::Bench {
            command: BenchCommand::Nfs(args),
        } = cli.command
        else {
            panic!("bench nfs expected")
        };
        assert_eq!(
            args,
            NfsArgs {
                dir: Some(PathBuf::from("/tmp/x")),
                size: 64 << 20,
                io_size: 256 << 10,
                files: 10,
                file_size: 1000,
                streams: 2,
                runs: 1,
            }
        );
        assert!(Cli::try_parse_from(["shoal", "bench", "nfs", "--size", "1XB"]).is_err());

        let cli = Cli::parse_from([
            "shoal",
            "bench",
            "nfs-serve",
            "--dir",
            "/e",
            "--listen",
            "10.78.0.1:12049",
            "--client",
            "10.78.0.0/24",
        ]);
        let Command::Bench {
            command:
                BenchCommand::NfsServe {
                    dir,
                    listen,
                    client,
                },
        } = cli.command
        else {
            panic!("bench nfs-serve expected")
        };
        assert_eq!(dir, PathBuf::from("/e"));
        assert_eq!(listen, "10.78.0.1:12049".parse::<SocketAddr>().unwrap());
        assert_eq!(client, "10.78.0.0/24");
    }

    #[test]
    fn bench_soak_flags_parse() {
        let cli = Cli::parse_from(["shoal", "bench", "soak", "--duration", "20s", "--seed", "7"]);
        let Command::Bench {
            command: BenchCommand::Soak(args),
        } = cli.command
        else {
            panic!("bench soak expected")
        };
        let settings = crate::bench_soak::SoakBench::from(args);
        assert_eq!(settings.clients, 64);
        assert_eq!(settings.duration, std::time::Duration::from_secs(20));
        assert_eq!(settings.seed, 7);
        assert!(settings.database_url.is_empty());
        assert_eq!(
            parse_duration("10m"),
            Ok(std::time::Duration::from_secs(600))
        );
        assert_eq!(parse_duration("90"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(
            parse_duration("250ms"),
            Ok(std::time::Duration::from_millis(250))
        );
        assert!(Cli::try_parse_from(["shoal", "bench", "soak", "--duration", "soon"]).is_err());
        assert!(Cli::try_parse_from(["shoal", "bench", "soak", "--duration", "5d"]).is_err());
    }

    #[test]
    fn bench_nfs_lag_flags_parse() {
        let cli = Cli::parse_from([
            "shoal",
            "bench",
            "nfs-lag",
            "--tree-files",
            "100",
            "--seconds",
            "5",
            "--rate",
            "50",
            "--file-size",
            "4KiB",
            "--poll-ms",
            "5",
        ]);
        let Command::Bench {
            command: BenchCommand::NfsLag(args),
        } = cli.command
        else {
            panic!("bench nfs-lag expected")
        };
        let settings = crate::bench_lag::LagBench::from(args);
        assert_eq!(settings.tree_files, 100);
        assert_eq!(settings.duration, std::time::Duration::from_secs(5));
        assert_eq!((settings.rate, settings.file_size), (50.0, 4096));
        assert_eq!(settings.poll, std::time::Duration::from_millis(5));
        assert!(Cli::try_parse_from(["shoal", "bench", "nfs-lag", "--rate", "fast"]).is_err());
    }

    #[test]
    fn bench_peer_flags_parse() {
        let cli = Cli::parse_from([
            "shoal",
            "bench",
            "replication-peer",
            "--dir",
            "/tmp/x",
            "--files",
            "100",
        ]);
        let Command::Bench {
            command:
                BenchCommand::ReplicationPeer(TreeArgs {
                    dir,
                    files,
                    big_gib,
                    seed,
                }),
        } = cli.command
        else {
            panic!("bench replication-peer expected")
        };
        assert_eq!(dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!((files, big_gib, seed), (100, 1, 1));

        let cli = Cli::parse_from([
            "shoal",
            "bench",
            "peer-serve",
            "--pool",
            "/p",
            "--listen",
            "10.77.0.1:7390",
            "--secret-file",
            "/s",
        ]);
        let Command::Bench {
            command:
                BenchCommand::PeerServe {
                    pool,
                    listen,
                    secret_file,
                },
        } = cli.command
        else {
            panic!("bench peer-serve expected")
        };
        assert_eq!(pool, PathBuf::from("/p"));
        assert_eq!(listen, "10.77.0.1:7390".parse::<SocketAddr>().unwrap());
        assert_eq!(secret_file, PathBuf::from("/s"));

        let cli = Cli::parse_from([
            "shoal",
            "bench",
            "peer-sync",
            "--replica",
            "/r",
            "--peer",
            "10.77.0.1:7390",
            "--root",
            "/p/shares/6b1f1f8e-2f0a-4c55-9d3e-5a0c7b9e4d21",
            "--secret-file",
            "/s",
        ]);
        let Command::Bench {
            command:
                BenchCommand::PeerSync {
                    replica,
                    peer,
                    root,
                    secret_file,
                },
        } = cli.command
        else {
            panic!("bench peer-sync expected")
        };
        assert_eq!(replica, PathBuf::from("/r"));
        assert_eq!(peer, "10.77.0.1:7390");
        assert_eq!(
            root,
            PathBuf::from("/p/shares/6b1f1f8e-2f0a-4c55-9d3e-5a0c7b9e4d21")
        );
        assert_eq!(secret_file, PathBuf::from("/s"));
        assert!(
            Cli::try_parse_from([
                "shoal",
                "bench",
                "peer-serve",
                "--pool",
                "/p",
                "--listen",
                "x"
            ])
            .is_err(),
            "a listen address that is not host:port is refused"
        );
    }
}
