//! `tessera-bench`: times tessera, the `sev` crate and the signature floor on one real SNP report.
//!
//! `cargo run --release --manifest-path crates/bench/Cargo.toml -- [--json] [--rounds N]
//! [--iters N] [--case snp/<case>]`. Exit codes: 0 done, 1 a contestant failed, 2 bad arguments.

use std::process::ExitCode;

use tessera_bench::floor::Floor;
use tessera_bench::peer::Peer;
use tessera_bench::timing::{Contestant, Plan, interleave};
use tessera_bench::{Case, PEER_NAME, Scenario, case::DEFAULT_CASE};

const USAGE: &str =
    "usage: tessera-bench [--json] [--rounds N] [--iters N] [--warmup N] [--case snp/<case>]";

/// The validated command line.
#[derive(Debug)]
struct Config {
    json: bool,
    plan: Plan,
    case: String,
}

fn positive(flag: &str, value: Option<String>) -> Result<usize, String> {
    let v = value.ok_or_else(|| format!("{flag} needs a value"))?;
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag}: want a positive integer, got {v:?}")),
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let mut config = Config {
        json: false,
        plan: Plan::default(),
        case: DEFAULT_CASE.to_owned(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => config.json = true,
            "--rounds" => config.plan.rounds = positive("--rounds", args.next())?,
            "--warmup" => config.plan.warmup_rounds = positive("--warmup", args.next())?,
            "--iters" => {
                config.plan.iters = u32::try_from(positive("--iters", args.next())?)
                    .map_err(|_| String::from("--iters: too large"))?;
            }
            "--case" => config.case = args.next().ok_or("--case needs a value")?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(config)
}

/// One scenario's medians, ns per operation.
struct Row {
    scenario: Scenario,
    tessera_ns: f64,
    peer_ns: f64,
    floor_ns: f64,
}

/// One JSON object per line, keys in a fixed order, whole nanoseconds.
fn json_line(row: &Row) -> String {
    format!(
        "{{\"scenario\": \"{}\", \"tessera_ns\": {:.0}, \"peer\": \"{}\", \"peer_ns\": {:.0}, \"floor_ns\": {:.0}}}",
        row.scenario.name(),
        row.tessera_ns,
        PEER_NAME,
        row.peer_ns,
        row.floor_ns,
    )
}

fn micros(ns: f64) -> String {
    format!("{:>9.1} µs", ns / 1e3)
}

fn print_table(rows: &[Row], config: &Config) {
    println!(
        "case {} — median of {} rounds x {} calls, interleaved\n",
        config.case, config.plan.rounds, config.plan.iters
    );
    println!(
        "{:<10} {:>12} {:>14} {:>12} {:>14} {:>13}",
        "scenario", "tessera", PEER_NAME, "floor", "tessera/floor", "peer/tessera"
    );
    for row in rows {
        println!(
            "{:<10} {:>12} {:>14} {:>12} {:>14.2} {:>13.2}",
            row.scenario.name(),
            micros(row.tessera_ns),
            micros(row.peer_ns),
            micros(row.floor_ns),
            row.tessera_ns / row.floor_ns,
            row.peer_ns / row.tessera_ns,
        );
    }
}

fn run(config: &Config) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let case = Case::load(&config.case)?;
    let floor = Floor::new(&case)?;
    let peer = Peer::new(&case)?;
    let tessera = tessera_bench::tessera::Tessera::new(&case)?;
    let mut rows = Vec::new();
    for scenario in Scenario::ALL {
        let mut contestants: [Contestant<'_>; 3] = match scenario {
            Scenario::SnpWarm => [
                Contestant {
                    name: "tessera",
                    op: Box::new(|| tessera.warm()),
                },
                Contestant {
                    name: PEER_NAME,
                    op: Box::new(|| peer.warm().is_ok()),
                },
                Contestant {
                    name: "floor",
                    op: Box::new(|| floor.warm()),
                },
            ],
            Scenario::SnpCold => [
                Contestant {
                    name: "tessera",
                    op: Box::new(|| tessera.cold()),
                },
                Contestant {
                    name: PEER_NAME,
                    op: Box::new(|| peer.cold().is_ok()),
                },
                Contestant {
                    name: "floor",
                    op: Box::new(|| floor.cold()),
                },
            ],
        };
        let medians = interleave(&mut contestants, config.plan)?;
        let [tessera_ns, peer_ns, floor_ns] = medians
            .try_into()
            .map_err(|_| "interleave returned the wrong number of medians")?;
        let row = Row {
            scenario,
            tessera_ns,
            peer_ns,
            floor_ns,
        };
        if config.json {
            println!("{}", json_line(&row));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(msg) => {
            if msg.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("tessera-bench: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&config) {
        Ok(rows) => {
            if !config.json {
                print_table(&rows, &config);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tessera-bench: {e}");
            ExitCode::from(1)
        }
    }
}
