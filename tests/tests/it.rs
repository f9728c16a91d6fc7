//! The integration and end-to-end tests, one module per area, linked as one test
//! binary (one link of the host, the simulator and wasmtime instead of one per file).
//! The tests that capture every log line of the process are apart, in `logs.rs`.

mod audit;
mod backup;
mod browser;
mod chaos;
mod cli;
mod connector_kit;
mod console;
mod daemon_api;
mod daemon_process;
mod daemon_runs;
mod daemons;
mod delivery;
mod doctolib;
mod doctolib_faults;
mod export;
mod feed;
mod flight;
mod hot_swap;
mod keldoc;
mod maiia;
mod mapharma;
mod ordoclic;
mod platforms;
mod ports;
mod quotas;
mod sandbox;
mod sdk_parity;
mod storage;
mod traces;
mod upgrade;
mod worked_example;
