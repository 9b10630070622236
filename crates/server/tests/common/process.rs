//! The `portcullis` binary as a child process, with its log lines streamed to a channel.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");

/// A started server process, with its log lines streamed to a channel.
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

pub fn portcullis(dir: &Path, envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir)
        .env("PORTCULLIS_SERVER__LISTEN", "127.0.0.1:0")
        .env_remove("RUST_LOG");
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

impl Process {
    pub fn spawn(mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for the "listening" line and returns the address in it.
    pub fn address(&mut self) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no listening line; log: {:?}", self.log));
            self.log.push(line.clone());
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                if json["message"] == "listening" {
                    return json["address"].as_str().unwrap().to_owned();
                }
            } else if line.contains(" listening ") {
                let address = line
                    .split_whitespace()
                    .find_map(|field| field.strip_prefix("address="))
                    .unwrap();
                return address.to_owned();
            }
        }
    }

    /// Stops the server with SIGTERM and returns its whole log.
    pub fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exits 0, got {status}");
        self.log.extend(self.lines.try_iter());
        self.log
    }
}

impl Process {
    /// Kills the server with SIGKILL: no shutdown, nothing flushed, as in a crash.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}
