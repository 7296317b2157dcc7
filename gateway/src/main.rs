//! The `dcrgate` command: `run` the gateway, `check` a configuration, run the `demo`,
//! `explain` what the gateway would decide on a request object and certificate, run
//! `policy test` / `policy diff` on a profile's cases, `probe` a DCR endpoint as a TPP, or
//! print the `version`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dcrgate::config::{Config, LogFormat};
use dcrgate::explain::{explain_verified, ExplainArgs, Inputs};

/// mimalloc instead of the system allocator: a request allocates and frees a few hundred small
/// blocks (headers, claims, JSON values), and glibc's malloc and free were a tenth of the CPU of
/// a keep-alive request in the benchmark's profile (`benches/README.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dcrgate",
    version = dcrgate::version::LONG,
    about = "mTLS gateway for Open Banking dynamic client registration updates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// The configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Take the listening sockets over from a running instance, which hands them over when
        /// it receives SIGQUIT (zero-downtime upgrade).
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate a configuration file and the policy profile it names, then exit.
    Check {
        /// The configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Do not resolve `upstream.url` (its name resolves only where the gateway runs).
        #[arg(long)]
        offline: bool,
    },
    /// Print the version, the commit it was built from and the build date.
    Version,
    /// Print the metric catalogue as JSON: every series with its type, help text and labels,
    /// each label with the values it can take (null: names the configuration gives).
    Metrics,
    /// Run a self-contained demo on loopback: dev PKI, stand-in registry, sample TPP.
    Demo {
        /// Where to write the generated files (default: a new folder in the temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Policy cases: example requests with the verdict each profile is meant to reach.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Play a TPP against a DCR endpoint and report, scenario by scenario, whether it answered
    /// as a compliant one must. Exit code: 0 every scenario run passed, 1 one failed, 2 unusable
    /// input.
    Probe {
        #[command(flatten)]
        args: Box<dcrgate::probe::ProbeArgs>,
    },
    /// Explain, rule by rule, what the gateway would decide on a request object sent with a
    /// transport certificate; signatures and the bearer token are verified when their keys are
    /// given (--jwks, --directory-jwks, --token), NOT CHECKED otherwise.
    /// Exit code: 0 accept, 1 reject, 2 unusable input, 3 not checked (every check made passes,
    /// some could not be made).
    Explain {
        #[command(flatten)]
        args: ExplainArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Evaluate case files offline through the gateway's checks and compare each verdict with
    /// the one it expects. Exit code: 0 all hold, 1 a mismatch, 2 unusable input.
    Test {
        /// Case files or folders [default: policies/cases].
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also write the results as JUnit XML to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Which cases change verdict between two profiles. Exit code: 0 none, 1 some, 2 unusable
    /// input.
    Diff {
        /// The profile in force.
        old: PathBuf,
        /// The profile proposed.
        new: PathBuf,
        /// Case files or folders.
        #[arg(long, required = true, num_args = 1..)]
        cases: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// How `explain` prints its report.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Lines for a reader.
    Text,
    /// One JSON object.
    Json,
}

fn init_logging(format: LogFormat, default: &str) {
    dcrgate::logsafe::install(format, default);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config, offline } => match if offline {
            Config::load_offline(&config)
        } else {
            Config::load(&config)
        } {
            Ok(c) => {
                let upstream = if offline {
                    format!("{} (not resolved: --offline)", c.upstream.host)
                } else {
                    c.upstream.address.to_string()
                };
                println!(
                    "{}: ok (profile `{}` from {}, listener {}, upstream {upstream})",
                    config.display(),
                    c.profile.name,
                    c.profile_path.display(),
                    c.listen,
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config, upgrade } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(config.server.log_format, "info");
            tracing::info!(listen = %config.listen, admin = %config.admin_listen, profile = %config.profile.name, "starting dcrgate");
            match dcrgate::server::build(config, upgrade) {
                Ok(server) => {
                    dcrgate::server::run(server, None);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cannot start: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Policy { command } => ExitCode::from(match command {
            PolicyCommand::Test {
                paths,
                format,
                junit,
            } => dcrgate::policy_test::command::test(
                &paths,
                matches!(format, Format::Json),
                junit.as_deref(),
            ),
            PolicyCommand::Diff {
                old,
                new,
                cases,
                format,
            } => dcrgate::policy_test::command::diff(
                &old,
                &new,
                &cases,
                matches!(format, Format::Json),
            ),
        }),
        Command::Probe { args } => ExitCode::from(dcrgate::probe::command(&args)),
        Command::Explain { args, format } => {
            let inputs = match Inputs::load(&args) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("dcrgate explain: {e}");
                    return ExitCode::from(2);
                }
            };
            let at = inputs.at.unwrap_or_else(dcrgate::explain::now);
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("dcrgate explain: {e}");
                    return ExitCode::from(2);
                }
            };
            let report = runtime.block_on(explain_verified(&inputs, at));
            match format {
                Format::Text => print!("{}", report.render_text()),
                Format::Json => match report.to_json() {
                    Ok(json) => println!("{json}"),
                    Err(e) => {
                        eprintln!("dcrgate explain: cannot write JSON: {e}");
                        return ExitCode::from(2);
                    }
                },
            }
            if report.accepted() {
                ExitCode::SUCCESS
            } else if report.passes_what_was_checked() {
                ExitCode::from(3)
            } else {
                ExitCode::from(1)
            }
        }
        Command::Metrics => {
            let catalogue = dcrgate::metrics::catalogue::to_json();
            match serde_json::to_string_pretty(&catalogue) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dcrgate metrics: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Version => {
            println!("dcrgate {}", dcrgate::version::VERSION);
            println!("commit {}", dcrgate::version::COMMIT);
            println!("built {}", dcrgate::version::BUILD_DATE);
            ExitCode::SUCCESS
        }
        #[cfg(feature = "demo")]
        Command::Demo { dir } => {
            init_logging(LogFormat::Text, "warn");
            match dcrgate::demo::run(dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        #[cfg(not(feature = "demo"))]
        Command::Demo { .. } => {
            eprintln!(
                "dcrgate demo: this build leaves the demo out (built without the `demo` feature)"
            );
            ExitCode::from(2)
        }
    }
}
