//! `--shard auto`: the shard a CI or Kubernetes job runs, read from the environment the
//! job engine sets, so one job template serves every shard.
//!
//! `--shard` takes `K/N` (1-based), `auto`, or `auto/N` (N stated here). `auto` reads, in
//! this order, the first that is set:
//!
//! 1. `TRUSTSWEEP_SHARD=K/N`: set it from anything, e.g. a GitHub Actions matrix (GitHub
//!    has no built-in job index: `matrix: {shard: [1, 2, 3, 4]}` and
//!    `TRUSTSWEEP_SHARD: ${{ matrix.shard }}/4`).
//! 2. GitLab CI `parallel:`: `CI_NODE_INDEX` (1-based) and `CI_NODE_TOTAL`.
//! 3. Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` (0-based), with N from `auto/N` or
//!    `TRUSTSWEEP_SHARD_TOTAL` (the Job's `completions`; Kubernetes does not tell the pod).
//!
//! A total stated with `auto/N` must agree with what the environment says. Nothing is
//! sharded without `--shard`: a job engine's variables alone never slice a sweep.

use report::{parse_shard, Shard};

/// `TRUSTSWEEP_SHARD`: `K/N` for `--shard auto`.
pub const SHARD_VAR: &str = "TRUSTSWEEP_SHARD";
/// `TRUSTSWEEP_SHARD_TOTAL`: N for a Kubernetes Indexed Job.
pub const TOTAL_VAR: &str = "TRUSTSWEEP_SHARD_TOTAL";

/// Parses a `--shard` value against the process environment (clap's value parser).
pub fn parse_shard_arg(value: &str) -> Result<Shard, String> {
    resolve(value, |name| std::env::var(name).ok())
}

/// Parses a `--shard` value (`K/N`, `auto`, `auto/N`), reading variables through `env`.
pub fn resolve(value: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
    let value = value.trim();
    let stated = match value.split_once('/') {
        Some((auto, n)) if auto.trim().eq_ignore_ascii_case("auto") => {
            Some(whole(n, &format!("--shard '{value}': N"))?)
        }
        _ if value.eq_ignore_ascii_case("auto") => None,
        _ => return parse_shard(value).map_err(|e| e.to_string()),
    };
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let (k, n, from) = if let Some(v) = var(SHARD_VAR) {
        let s = parse_shard(&v).map_err(|e| format!("{SHARD_VAR}={v}: {e}"))?;
        (s.k(), s.n(), SHARD_VAR.to_string())
    } else if let Some(index) = var("CI_NODE_INDEX") {
        let total = var("CI_NODE_TOTAL").ok_or_else(|| {
            "GitLab's CI_NODE_INDEX is set but CI_NODE_TOTAL is not (set `parallel:` on the job)"
                .to_string()
        })?;
        (
            whole(&index, "CI_NODE_INDEX")?,
            whole(&total, "CI_NODE_TOTAL")?,
            "GitLab's CI_NODE_INDEX/CI_NODE_TOTAL".to_string(),
        )
    } else if let Some(index) = var("JOB_COMPLETION_INDEX") {
        let index = whole(&index, "JOB_COMPLETION_INDEX")?;
        let total = match (stated, var(TOTAL_VAR)) {
            (Some(n), _) => n,
            (None, Some(t)) => whole(&t, TOTAL_VAR)?,
            (None, None) => {
                return Err(format!(
                    "--shard auto: Kubernetes gives the index (JOB_COMPLETION_INDEX) but not the number of shards: use --shard auto/N or set {TOTAL_VAR} to the Job's completions"
                ))
            }
        };
        (
            index.saturating_add(1),
            total,
            "Kubernetes' JOB_COMPLETION_INDEX (0-based)".to_string(),
        )
    } else {
        return Err(format!(
            "--shard {value}: no shard in the environment: set {SHARD_VAR}=K/N (e.g. from a GitHub Actions matrix), or run under GitLab `parallel:` (CI_NODE_INDEX, CI_NODE_TOTAL) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)"
        ));
    };
    if let Some(n_stated) = stated.filter(|s| *s != n) {
        return Err(format!(
            "--shard auto/{n_stated}: {from} says there are {n} shards"
        ));
    }
    Shard::new(k, n).ok_or_else(|| {
        format!("{from} gives shard {k} of {n}: K must be between 1 and N, and N at least 1")
    })
}

fn whole(s: &str, what: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{what} '{}' is not a whole number", s.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(value: &str, vars: &[(&str, &str)]) -> Result<(usize, usize), String> {
        let env = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        };
        resolve(value, env).map(|s| (s.k(), s.n()))
    }

    #[test]
    fn explicit_k_of_n_ignores_the_environment() {
        assert_eq!(shard("2/4", &[("CI_NODE_INDEX", "1")]), Ok((2, 4)));
        assert!(shard("5/4", &[]).is_err());
    }

    #[test]
    fn github_actions_matrix_through_trustsweep_shard() {
        assert_eq!(shard("auto", &[("TRUSTSWEEP_SHARD", "3/4")]), Ok((3, 4)));
        assert_eq!(shard("auto/4", &[("TRUSTSWEEP_SHARD", "3/4")]), Ok((3, 4)));
        // It wins over a job engine's own variables.
        assert_eq!(
            shard(
                "auto",
                &[
                    ("TRUSTSWEEP_SHARD", "1/2"),
                    ("CI_NODE_INDEX", "3"),
                    ("CI_NODE_TOTAL", "5")
                ]
            ),
            Ok((1, 2))
        );
        let e = shard("auto", &[("TRUSTSWEEP_SHARD", "0/4")]).unwrap_err();
        assert!(e.contains("TRUSTSWEEP_SHARD=0/4"), "{e}");
    }

    #[test]
    fn gitlab_parallel_is_one_based() {
        let env = [("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "3")];
        assert_eq!(shard("auto", &env), Ok((1, 3)));
        let env = [("CI_NODE_INDEX", "3"), ("CI_NODE_TOTAL", "3")];
        assert_eq!(shard("auto", &env), Ok((3, 3)));
        let e = shard("auto", &[("CI_NODE_INDEX", "2")]).unwrap_err();
        assert!(e.contains("CI_NODE_TOTAL"), "{e}");
        let e = shard("auto/4", &env).unwrap_err();
        assert!(e.contains("says there are 3 shards"), "{e}");
    }

    #[test]
    fn kubernetes_indexed_jobs_are_zero_based_with_a_stated_total() {
        assert_eq!(
            shard("auto/8", &[("JOB_COMPLETION_INDEX", "0")]),
            Ok((1, 8))
        );
        assert_eq!(
            shard("auto/8", &[("JOB_COMPLETION_INDEX", "7")]),
            Ok((8, 8))
        );
        assert_eq!(
            shard(
                "auto",
                &[
                    ("JOB_COMPLETION_INDEX", "2"),
                    ("TRUSTSWEEP_SHARD_TOTAL", "4")
                ]
            ),
            Ok((3, 4))
        );
        let e = shard("auto", &[("JOB_COMPLETION_INDEX", "2")]).unwrap_err();
        assert!(e.contains("auto/N"), "{e}");
        // Index 8 of 8 shards does not exist.
        assert!(shard("auto/8", &[("JOB_COMPLETION_INDEX", "8")]).is_err());
    }

    #[test]
    fn auto_without_a_job_engine_says_what_to_set() {
        let e = shard("auto", &[]).unwrap_err();
        assert!(e.contains("TRUSTSWEEP_SHARD=K/N"), "{e}");
        assert!(shard("auto/x", &[("TRUSTSWEEP_SHARD", "1/2")]).is_err());
        // Empty variables count as unset.
        assert!(shard("auto", &[("TRUSTSWEEP_SHARD", " ")]).is_err());
    }
}
