//! `myevents-contract [write|check] [DIR]`: writes the generated documents into `DIR` (default: the
//! workspace's `frontend-contract/`), or checks that the files there are what the code generates
//! (exit code 1 naming each file that differs; run `cargo run -p myevents-contract` to update them).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "write".to_owned());
    let dir = args
        .next()
        .map_or_else(myevents_contract::default_dir, PathBuf::from);
    match command.as_str() {
        "write" => {
            for path in myevents_contract::write(&dir)? {
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        "check" => {
            let stale = myevents_contract::stale(&dir)?;
            if stale.is_empty() {
                println!("{} is up to date", dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            for path in stale {
                eprintln!("differs from the code: {}", path.display());
            }
            eprintln!("run `cargo run -p myevents-contract` and commit the result");
            Ok(ExitCode::FAILURE)
        }
        other => {
            eprintln!("unknown command {other:?}; usage: myevents-contract [write|check] [DIR]");
            Ok(ExitCode::from(2))
        }
    }
}
