//! `rbm`: train, sample and inspect Restricted Boltzmann Machines from the command line.

mod args;
mod bench;
mod eval;
mod figures;
mod gates;
mod memory;
mod output;
mod sample;
mod train;

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
        eprintln!("rbm: error: cannot start {n} threads: {e}");
        return ExitCode::FAILURE;
    }
    // The command runs on a worker of the pool, so that each parallel pass forks from a
    // thread that keeps working instead of one that sleeps until the pool is done.
    let result = rayon::scope(|_| match cli.command {
        Command::Gates(a) => gates::run(&a),
        Command::Train(a) => train::run(&a),
        Command::Sample(a) => sample::run(&a),
        Command::Bench(BenchCommand::Train(a)) => bench::train(&a),
        Command::Bench(BenchCommand::Sample(a)) => bench::sample(&a),
        Command::Eval(a) => eval::run(&a),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rbm: error: {e}");
            ExitCode::FAILURE
        }
    }
}
