//! The `squall-load` command: parse, run, print the table (and write the JSON report).

use std::process::ExitCode;

use squall_load::args::{self, Command};

fn main() -> ExitCode {
    let config = match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("squall-load: {e}");
            return ExitCode::from(2);
        }
    };
    match squall_load::run(*config) {
        Ok(report) => {
            print!("{}", report.table());
            if report.tally.error_count() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("squall-load: {e}");
            ExitCode::from(2)
        }
    }
}
