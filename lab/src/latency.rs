//! What a Windows host costs in time: the latency profiles (`lan`, `wan`, `far`) the wire
//! layer ([`crate::wire`]) charges for connecting, for every request, for creating a shell,
//! for starting PowerShell, and for the Netlogon work a command does ([`Work`], counted by
//! [`crate::exec`] as commands run).
//!
//! The figures are the measurements of issue 15 ("A lab that costs what Windows costs"):
//! an RTT of 1 / 30 / 150 ms, about 8 ms of server time per WinRM request, about 60 ms to
//! create a WinRS shell, a `powershell.exe` start-up with a median near 450 ms and a 99th
//! percentile near 2.5 s, about 60 ms for `Test-ComputerSecureChannel` and about 40 ms for
//! `nltest`, plus the round trips to a DC. The issue gives no member-to-DC RTT; the
//! profiles take the DC to be as far from the member as the sweeper is (a branch office
//! reaching its DC across the same WAN), the pessimistic side.
//!
//! PowerShell start-up times are drawn from a log-normal distribution, deterministically:
//! the n-th start on a host takes the same time for the same seed, whatever the order in
//! which hosts are served.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A named latency profile (`--latency-profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Same site: 1 ms RTT.
    Lan,
    /// Across a WAN: 30 ms RTT.
    Wan,
    /// Another continent: 150 ms RTT.
    Far,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Lan, Profile::Wan, Profile::Far];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Wan => "wan",
            Profile::Far => "far",
        }
    }

    /// The round-trip time between the sweeper and a host (issue 15: 1 / 30 / 150 ms).
    pub fn rtt(self) -> Duration {
        Duration::from_millis(match self {
            Profile::Lan => 1,
            Profile::Wan => 30,
            Profile::Far => 150,
        })
    }

    /// What a host on this profile costs.
    pub fn costs(self) -> Costs {
        Costs {
            rtt: self.rtt(),
            // Issue 15: "per-request server time ~8 ms".
            server_time: Duration::from_millis(8),
            // Issue 15: "create shell ~60 ms".
            create_shell: Duration::from_millis(60),
            // Issue 15: "PowerShell start p50 ~450 ms with a p99 around 2.5 s".
            powershell: Some(PowerShellStart {
                p50: Duration::from_millis(450),
                p99: Duration::from_millis(2500),
            }),
            // Issue 15: "Test-ComputerSecureChannel ~60 ms".
            secure_channel_test: Duration::from_millis(60),
            // Issue 15: "nltest ~40 ms plus DC round trips".
            nltest: Duration::from_millis(40),
            // Not measured: the DC as far from the member as the sweeper (see the module
            // docs).
            dc_rtt: self.rtt(),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown latency profile '{0}' (expected lan, wan or far)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

/// The distribution of `powershell.exe` start-up times: log-normal with this median and
/// 99th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerShellStart {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

/// z of the standard normal distribution's 99th percentile.
const Z99: f64 = 2.326_347_874;

/// Draws no start-up longer than this many 99th percentiles (a cap on the tail, so that
/// one unlucky draw cannot dominate a benchmark: p99.99 is about 3 p99).
const TAIL_CAP_P99S: f64 = 4.0;

impl PowerShellStart {
    /// The `nth` start on `host` in a lab built from `seed`.
    pub fn sample(self, seed: u64, host: usize, nth: u32) -> Duration {
        let median = self.p50.as_secs_f64();
        if median <= 0.0 {
            return Duration::ZERO;
        }
        let ratio = self.p99.as_secs_f64() / median;
        let sigma = if ratio > 1.0 { ratio.ln() / Z99 } else { 0.0 };
        let mut state = seed
            ^ (host as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ u64::from(nth).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let u1 = unit(splitmix64(&mut state));
        let u2 = unit(splitmix64(&mut state));
        // Box-Muller: one standard normal draw from two uniform ones in (0, 1].
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let secs = (median * (sigma * z).exp()).min(self.p99.as_secs_f64() * TAIL_CAP_P99S);
        Duration::try_from_secs_f64(secs).unwrap_or(self.p50)
    }
}

/// A uniform draw in (0, 1] from 53 random bits.
fn unit(bits: u64) -> f64 {
    ((bits >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator for hashed draws.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What the wire layer charges for a host's work. [`Costs::default`] charges nothing
/// (what tests use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Costs {
    /// Round-trip time between the sweeper and the host: once per TCP connect (the
    /// handshake) and once per request. `slow` hosts keep their own, larger one.
    pub rtt: Duration,
    /// Server time per WinRM request (HTTP.sys, WinRM service, WS-Man dispatch).
    pub server_time: Duration,
    /// Extra time of a WinRS Create (starting the shell host process).
    pub create_shell: Duration,
    /// `powershell.exe` start-up, in every spelling; `None`: the wire's fixed start-up.
    pub powershell: Option<PowerShellStart>,
    /// One `Test-ComputerSecureChannel` run, besides its DC round trips.
    pub secure_channel_test: Duration,
    /// One `nltest` run, besides its DC round trips.
    pub nltest: Duration,
    /// Round-trip time between the member and a DC.
    pub dc_rtt: Duration,
}

impl Costs {
    /// The time a command's Netlogon work costs.
    pub fn work(&self, work: &Work) -> Duration {
        self.secure_channel_test
            .saturating_mul(work.secure_channel_tests)
            .saturating_add(self.nltest.saturating_mul(work.nltests))
            .saturating_add(self.dc_rtt.saturating_mul(work.dc_round_trips))
    }
}

/// The costly things a command did, counted by the interpreter while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Work {
    /// `Test-ComputerSecureChannel` runs.
    pub secure_channel_tests: u32,
    /// `nltest` runs.
    pub nltests: u32,
    /// Round trips to a DC (RPC to Netlogon, DC locator pings, LDAP).
    pub dc_round_trips: u32,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn profiles_have_the_issue_15_figures() {
        assert_eq!("WAN".parse::<Profile>().unwrap(), Profile::Wan);
        assert_eq!(
            "moon".parse::<Profile>().unwrap_err().to_string(),
            "unknown latency profile 'moon' (expected lan, wan or far)"
        );
        let rtts: Vec<u128> = Profile::ALL.iter().map(|p| p.rtt().as_millis()).collect();
        assert_eq!(rtts, [1, 30, 150]);
        let wan = Profile::Wan.costs();
        assert_eq!(wan.server_time, Duration::from_millis(8));
        assert_eq!(wan.create_shell, Duration::from_millis(60));
        let work = Work {
            secure_channel_tests: 1,
            nltests: 2,
            dc_round_trips: 3,
        };
        assert_eq!(wan.work(&work), Duration::from_millis(60 + 80 + 90));
        assert_eq!(Costs::default().work(&work), Duration::ZERO);
    }

    #[test]
    fn powershell_starts_are_log_normal_and_repeat_per_seed() {
        let ps = PowerShellStart {
            p50: Duration::from_millis(450),
            p99: Duration::from_millis(2500),
        };
        let mut draws: Vec<Duration> = (0..20_000).map(|i| ps.sample(7, i, 0)).collect();
        assert_eq!(ps.sample(7, 3, 1), ps.sample(7, 3, 1));
        assert_ne!(ps.sample(7, 3, 1), ps.sample(7, 3, 2));
        assert_ne!(ps.sample(7, 3, 1), ps.sample(8, 3, 1));
        draws.sort();
        let p50 = draws[10_000].as_millis();
        let p99 = draws[19_800].as_millis();
        assert!((420..480).contains(&p50), "p50 {p50}");
        assert!((2200..2800).contains(&p99), "p99 {p99}");
        assert!(draws[19_999] <= Duration::from_secs(10));
    }
}
