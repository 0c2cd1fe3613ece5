//! `tessera-bench`: times tessera, a peer and the signature floor on one real SNP report and one
//! real TDX quote.
//!
//! `cargo run --release --manifest-path crates/bench/Cargo.toml -- [--json] [--rounds N]
//! [--iters N] [--warmup N] [--case snp/<case>] [--case tdx/<case>] [--only snp|tdx]`.
//! Exit codes: 0 done, 1 a contestant failed, 2 bad arguments.

use std::process::ExitCode;

/// The allocator the `tessera` binary uses (the `broker` scenario's server runs in this process).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use tessera_bench::floor::Floor;
use tessera_bench::peer::Peer;
use tessera_bench::tdx::floor::TdxFloor;
use tessera_bench::tdx::peer::DcapQvl;
use tessera_bench::tdx::tessera::TesseraTdx;
use tessera_bench::tdx::{DEFAULT_TDX_CASE, TdxCase};
use tessera_bench::timing::{Contestant, Plan, interleave};
use tessera_bench::{Case, Scenario, case::DEFAULT_CASE};

const USAGE: &str = "usage: tessera-bench [--json] [--rounds N] [--iters N] [--warmup N] \
                     [--case snp/<case>] [--case tdx/<case>] [--only snp|tdx]\n\
                     --case may be given twice: an snp/ case for snp_*, a tdx/ case for tdx_*";

/// The validated command line.
#[derive(Debug)]
struct Config {
    json: bool,
    plan: Plan,
    snp_case: String,
    tdx_case: String,
    snp: bool,
    tdx: bool,
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
        snp_case: DEFAULT_CASE.to_owned(),
        tdx_case: DEFAULT_TDX_CASE.to_owned(),
        snp: true,
        tdx: true,
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
            "--case" => {
                let case = args.next().ok_or("--case needs a value")?;
                if case.starts_with("snp/") {
                    config.snp_case = case;
                } else if case.starts_with("tdx/") {
                    config.tdx_case = case;
                } else {
                    return Err(format!(
                        "--case: want snp/<case> or tdx/<case>, got {case:?}"
                    ));
                }
            }
            "--only" => match args.next().as_deref() {
                Some("snp") => config.tdx = false,
                Some("tdx") => config.snp = false,
                other => {
                    let got = other.unwrap_or_default();
                    return Err(format!("--only: want snp or tdx, got {got:?}"));
                }
            },
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
        row.scenario.peer(),
        row.peer_ns,
        row.floor_ns,
    )
}

fn micros(ns: f64) -> String {
    format!("{:>9.1} µs", ns / 1e3)
}

fn print_table(rows: &[Row], config: &Config) {
    let mut cases = Vec::new();
    if config.snp {
        cases.push(config.snp_case.as_str());
    }
    if config.tdx {
        cases.push(config.tdx_case.as_str());
    }
    println!(
        "cases {} — median of {} rounds x {} calls, interleaved\n",
        cases.join(", "),
        config.plan.rounds,
        config.plan.iters
    );
    println!(
        "{:<10} {:>12} {:>14} {:>12} {:>12} {:>14} {:>13}",
        "scenario", "tessera", "peer", "peer time", "floor", "tessera/floor", "peer/tessera"
    );
    for row in rows {
        println!(
            "{:<10} {:>12} {:>14} {:>12} {:>12} {:>14.2} {:>13.2}",
            row.scenario.name(),
            micros(row.tessera_ns),
            row.scenario.peer(),
            micros(row.peer_ns),
            micros(row.floor_ns),
            row.tessera_ns / row.floor_ns,
            row.peer_ns / row.tessera_ns,
        );
    }
}

/// The SNP contestants, set up (each has accepted the case once).
struct Snp {
    floor: Floor,
    peer: Peer,
    tessera: tessera_bench::tessera::Tessera,
}

/// The TDX contestants, set up (each has accepted the case once, with its TCB status).
struct Tdx {
    floor: TdxFloor,
    peer: DcapQvl,
    tessera: TesseraTdx,
}

fn contestant<'a>(name: &'static str, op: impl FnMut() -> bool + 'a) -> Contestant<'a> {
    Contestant {
        name,
        op: Box::new(op),
    }
}

/// The contestants of `scenario`: tessera, the peer, the floor; `None` when its family is off.
fn contestants<'a>(
    scenario: Scenario,
    snp: Option<&'a Snp>,
    tdx: Option<&'a Tdx>,
) -> Option<[Contestant<'a>; 3]> {
    let peer = scenario.peer();
    Some(match scenario {
        Scenario::SnpWarm => {
            let snp = snp?;
            [
                contestant("tessera", || snp.tessera.warm()),
                contestant(peer, || snp.peer.warm().is_ok()),
                contestant("floor", || snp.floor.warm()),
            ]
        }
        Scenario::SnpCold => {
            let snp = snp?;
            [
                contestant("tessera", || snp.tessera.cold()),
                contestant(peer, || snp.peer.cold().is_ok()),
                contestant("floor", || snp.floor.cold()),
            ]
        }
        Scenario::TdxWarm => {
            let tdx = tdx?;
            [
                contestant("tessera", || tdx.tessera.warm()),
                contestant(peer, || tdx.peer.accepts(&tdx.peer.warm())),
                contestant("floor", || tdx.floor.warm()),
            ]
        }
        Scenario::TdxCold => {
            let tdx = tdx?;
            [
                contestant("tessera", || tdx.tessera.cold()),
                contestant(peer, || tdx.peer.accepts(&tdx.peer.cold())),
                contestant("floor", || tdx.floor.cold()),
            ]
        }
    })
}

fn run(config: &Config) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let snp = if config.snp {
        let case = Case::load(&config.snp_case)?;
        Some(Snp {
            floor: Floor::new(&case)?,
            peer: Peer::new(&case)?,
            tessera: tessera_bench::tessera::Tessera::new(&case)?,
        })
    } else {
        None
    };
    let tdx = if config.tdx {
        let case = TdxCase::load(&config.tdx_case)?;
        Some(Tdx {
            floor: TdxFloor::new(&case)?,
            peer: DcapQvl::new(&case)?,
            tessera: TesseraTdx::new(&case)?,
        })
    } else {
        None
    };
    let mut rows = Vec::new();
    for scenario in Scenario::ALL {
        let Some(mut contestants) = contestants(scenario, snp.as_ref(), tdx.as_ref()) else {
            continue;
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

/// `broker [--seconds N] [--clients N,N,...] [--store postgres://...] [--replicas 1|2]
/// [--connection-threads N] [--workers N]`: the broker scenario, one JSON line per client
/// count; `__serve DIR [--connection-threads N] [--workers N]` is the server process it starts.
/// Takes `--connection-threads N` or `--workers N` (`a` and the value from `rest`); none for
/// anything else, a value that is not a number, or no workers.
fn shape_arg<'a>(
    shape: &mut tessera_bench::broker::ServerShape,
    a: &str,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Option<()> {
    let value = rest.next().and_then(|v| v.parse::<usize>().ok());
    match (a, value) {
        ("--connection-threads", Some(n)) => shape.connection_threads = Some(n),
        ("--workers", Some(n)) if n > 0 => shape.workers = Some(n),
        _ => return None,
    }
    Some(())
}

fn broker_main(args: &[String]) -> ExitCode {
    if args.first().map(String::as_str) == Some("__serve") {
        let Some(dir) = args.get(1) else {
            return ExitCode::from(2);
        };
        let mut shape = tessera_bench::broker::ServerShape::default();
        let mut it = args.iter().skip(2);
        while let Some(a) = it.next() {
            let Some(()) = shape_arg(&mut shape, a, &mut it) else {
                return ExitCode::from(2);
            };
        }
        return match tessera_bench::broker::serve(std::path::Path::new(dir), shape) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tessera-bench serve: {e}");
                ExitCode::from(1)
            }
        };
    }
    let mut seconds = 10u64;
    let mut clients = vec![1usize, 8, 32];
    let mut setup = tessera_bench::broker::Setup {
        store: None,
        replicas: 1,
        shape: tessera_bench::broker::ServerShape::default(),
    };
    let mut it = args.iter().skip_while(|a| a.as_str() != "broker").skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => match it.next().and_then(|v| v.parse().ok()) {
                Some(n) => seconds = n,
                None => return ExitCode::from(2),
            },
            "--clients" => match it.next().map(|v| {
                v.split(',')
                    .map(str::parse)
                    .collect::<Result<Vec<usize>, _>>()
            }) {
                Some(Ok(list)) if !list.is_empty() => clients = list,
                _ => return ExitCode::from(2),
            },
            "--store" => match it.next() {
                Some(url) => setup.store = Some(url.clone()),
                None => return ExitCode::from(2),
            },
            "--replicas" => match it.next().and_then(|v| v.parse().ok()) {
                Some(n) => setup.replicas = n,
                None => return ExitCode::from(2),
            },
            "--connection-threads" | "--workers" => {
                let Some(()) = shape_arg(&mut setup.shape, a, &mut it) else {
                    return ExitCode::from(2);
                };
            }
            _ => {}
        }
    }
    match tessera_bench::broker::run(&clients, seconds, &setup) {
        Ok(rows) => {
            for row in rows {
                println!("{}", serde_json::to_string(&row).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tessera-bench broker: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "broker" || a == "__serve") {
        return broker_main(&args);
    }
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
