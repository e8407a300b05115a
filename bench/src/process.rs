//! Child processes under measurement: killed (by their own pid, through
//! [`std::process::Child::kill`]) when dropped, so a failed section leaves
//! nothing running; and their memory, read from `/proc/<pid>/status`.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::http;

/// A spawned process that is killed and reaped on drop.
#[derive(Debug)]
pub struct Running {
    child: Child,
}

impl Running {
    /// Spawns `command` with stdin and stdout closed (the api logs a JSON
    /// line per request on stdout: writing them to /dev/null keeps their
    /// formatting cost in the figures, as in production, without a pipe that
    /// could fill up). Stderr is kept to explain an early exit.
    pub fn spawn(command: &mut Command) -> anyhow::Result<Self> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {:?}", command.get_program()))?;
        Ok(Self { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `None` while it runs; otherwise how it ended and what it said on stderr.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                Some(format!("exited ({status}): {}", stderr.trim()))
            }
            Err(error) => Some(format!("cannot be waited for: {error}")),
        }
    }

    /// Polls `GET /api/ping` on `127.0.0.1:port` every `every` until it
    /// answers 200; fails if the process exits or `timeout` passes first.
    /// Refused connections cost the server nothing, so how often it polls
    /// does not change what is measured afterwards.
    pub fn wait_for_ping(
        &mut self,
        port: u16,
        timeout: Duration,
        every: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(response) = http::request(port, "GET", "/api/ping", "") {
                if response.status == 200 {
                    return Ok(());
                }
                bail!("GET /api/ping answered {}", response.status);
            }
            if let Some(exit) = self.exited() {
                bail!("the server {exit}");
            }
            if Instant::now() > deadline {
                bail!("port {port} did not answer within {timeout:?}");
            }
            std::thread::sleep(every);
        }
    }

    /// Sends SIGTERM (through `kill(1)`: this workspace forbids `unsafe`)
    /// and waits up to `timeout` for the process to end.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed ({status})", self.pid());
        }
        let deadline = Instant::now() + timeout;
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("pid {} still runs {timeout:?} after SIGTERM", self.pid());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Peak resident set size so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        status_field(self.pid(), "VmHWM")
    }

    /// Resident set size now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        status_field(self.pid(), "VmRSS")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_field(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    kib_field(&status, field).with_context(|| format!("no {field} in {path}"))
}

/// `VmHWM:    4321 kB` → 4321.
fn kib_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kib_fields_are_read_from_proc_status() {
        let status = "Name:\tapi\nVmPeak:\t  123456 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(kib_field(status, "VmHWM"), Some(9876));
        assert_eq!(kib_field(status, "VmRSS"), Some(9000));
        assert_eq!(kib_field(status, "VmSwap"), None);
        assert_eq!(kib_field(status, "Vm"), None);
    }

    #[test]
    fn this_process_has_a_peak_rss() {
        assert!(status_field(std::process::id(), "VmHWM").unwrap() > 0);
    }
}
