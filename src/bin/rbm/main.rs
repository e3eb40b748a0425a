//! `rbm`: train, sample and inspect Restricted Boltzmann Machines from the command line.

#[macro_use]
mod output;

mod args;
mod bench;
mod eval;
mod figures;
mod gates;
mod memory;
mod paths;
mod run_dir;
mod sample;
mod train;

use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;

use clap::Parser;

use args::{BenchCommand, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads
        && let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
    {
        output::error_line(format!("rbm: error: cannot start {n} threads: {e}"));
        return ExitCode::FAILURE;
    }
    quiet_stdout_panics();
    // The command runs on a worker of the pool, so that each parallel pass forks from a
    // thread that keeps working instead of one that sleeps until the pool is done.
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        rayon::scope(|_| match cli.command {
            Command::Gates(a) => gates::run(&a),
            Command::Train(a) => train::run(&a),
            Command::Sample(a) => sample::run(&a),
            Command::Bench(BenchCommand::Train(a)) => bench::train(&a),
            Command::Bench(BenchCommand::Sample(a)) => bench::sample(&a),
            Command::Eval(a) => eval::run(&a),
        })
    }));
    let code = match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            output::error_line(format!("rbm: error: {e}"));
            return ExitCode::FAILURE;
        }
        // A panic other than a failed `println!` was reported by the default hook.
        Err(_) if output::stdout_error().is_none() => return ExitCode::from(101),
        Err(_) => ExitCode::FAILURE,
    };
    match output::stdout_error() {
        Some(e) => {
            output::error_line(format!("rbm: error: cannot write to {e}"));
            ExitCode::FAILURE
        }
        None => code,
    }
}

/// Turns the panic of a `println!`/`print!` whose stream failed (a closed pipe, a full disk)
/// into a recorded stdout error, without the panic message: `main` then exits non-zero with
/// one line. A safety net for code that still prints with the macros; `rbm`'s own output
/// goes through [`output::line`], which never panics. Other panics keep the default report.
fn quiet_stdout_panics() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        match message.strip_prefix("failed printing to ") {
            Some(rest) => output::record_stdout_error(rest.to_owned()),
            None => default(info),
        }
    }));
}
