//! A scripted pinentry for the agent's tests: speaks the real Assuan pinentry protocol on
//! stdin/stdout and answers each `GETPIN` with the next action from its command line:
//!
//! `avp-pinentry-script RECORD ACTION...`, each ACTION one of `pin=TEXT` (answer TEXT),
//! `cancel` (answer as a cancelled dialog does), `hang` (never answer), `die` (exit at
//! once), `gate=FILE` (wait until FILE exists, then answer with the next `pin=`). When
//! the actions run out, `GETPIN` is cancelled.
//!
//! It appends to the file RECORD what a test checks: `START <pid> <pgid>`, its whole
//! environment (`ENV k=v`), its open descriptors (`FD n -> target`), then every command
//! line it receives (`CMD line`) and `END` when it is told `BYE`.

use std::fs::OpenOptions;
use std::io::{BufRead, Write};

fn escape(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars() {
        match ch {
            '%' | '\r' | '\n' => out.push_str(&format!("%{:02X}", u32::from(ch))),
            _ => out.push(ch),
        }
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let record_path = args
        .next()
        .expect("usage: avp-pinentry-script RECORD ACTION...");
    let mut actions = args.collect::<Vec<_>>().into_iter();
    let pid = std::process::id();
    let pgid = nix::unistd::getpgrp();
    let mut start = vec![format!("START {pid} {pgid}")];
    for (key, value) in std::env::vars_os() {
        start.push(format!(
            "ENV {}={}",
            key.to_string_lossy(),
            value.to_string_lossy()
        ));
    }
    for entry in std::fs::read_dir("/proc/self/fd").expect("list /proc/self/fd") {
        let entry = entry.expect("a descriptor");
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        // The directory being listed is open too; it is this program's, not inherited.
        if target.starts_with("/proc") {
            continue;
        }
        start.push(format!(
            "FD {} -> {}",
            entry.file_name().to_string_lossy(),
            target.display()
        ));
    }
    // Opened only after the descriptors were listed: it is ours, not inherited.
    let mut record = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&record_path)
        .expect("open the record file");
    let mut log = |line: String| {
        record
            .write_all(format!("{line}\n").as_bytes())
            .expect("write the record file");
    };
    log(start.join("\n"));

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut say = |line: &str| {
        out.write_all(format!("{line}\n").as_bytes()).unwrap();
        out.flush().unwrap();
    };
    say("OK Pleased to meet you");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        log(format!("CMD {line}"));
        let verb = line.split(' ').next().unwrap_or_default();
        match verb {
            "GETPIN" => match actions.next().as_deref() {
                Some(action) if action.starts_with("gate=") => {
                    // Answers with the next action once the file exists (a test opens
                    // the gate when all its requests are in).
                    let gate = std::path::Path::new(&action["gate=".len()..]);
                    // Bounded, so a test that never opens it leaves no process behind.
                    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(120);
                    while !gate.exists() && std::time::Instant::now() < give_up {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    let pin = actions.next().unwrap_or_default();
                    say(&format!("D {}", escape(pin.trim_start_matches("pin="))));
                    say("OK");
                }
                Some(action) if action.starts_with("pin=") => {
                    say("S PIN_REPEATED");
                    say(&format!("D {}", escape(&action["pin=".len()..])));
                    say("OK");
                }
                // Never answers (for two minutes, so no process outlives a failed test).
                Some("hang") => {
                    std::thread::sleep(std::time::Duration::from_secs(120));
                    std::process::exit(4);
                }
                Some("die") => std::process::exit(3),
                _ => say("ERR 83886179 Operation cancelled <Pinentry>"),
            },
            "BYE" => {
                log("END".into());
                say("OK closing connection");
                return;
            }
            _ => say("OK"),
        }
    }
}
