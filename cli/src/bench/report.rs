//! One line (or one JSON object) per scenario: our figure, the same-run baseline and
//! their ratio.

use serde_json::json;

/// What a figure measures, which decides how the ratio reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Bytes per second: higher is better; ratio = ours / baseline.
    Throughput,
    /// Seconds per operation: lower is better; ratio = ours / baseline.
    Latency,
    /// Operations per second: higher is better; ratio = ours / baseline.
    Rate,
    /// Bytes held: lower is better; ratio = ours / baseline (a budget).
    Memory,
}

/// One measured scenario.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) scenario: String,
    pub(crate) kind: Kind,
    pub(crate) ours: f64,
    pub(crate) baseline: f64,
    /// Extra figures (p99, bytes, peak RSS, …) for the JSON and the text line.
    pub(crate) extra: Vec<(&'static str, f64)>,
    /// The target ratio, and whether higher ratios are better.
    pub(crate) target: Option<(f64, bool)>,
    /// Per-trial ratios when the scenario ran several interleaved trials; the reported
    /// ratio is their median.
    pub(crate) trials: Vec<f64>,
}

impl Outcome {
    pub(crate) fn ratio(&self) -> f64 {
        if !self.trials.is_empty() {
            let mut t = self.trials.clone();
            return median_p99(&mut t).0;
        }
        if self.baseline == 0.0 {
            0.0
        } else {
            self.ours / self.baseline
        }
    }

    pub(crate) fn meets_target(&self) -> Option<bool> {
        self.target.map(|(t, higher)| {
            if higher {
                self.ratio() >= t
            } else {
                self.ratio() <= t
            }
        })
    }

    pub(crate) fn text(&self) -> String {
        let fmt = |v: f64| match self.kind {
            Kind::Throughput => format!("{:.1} MiB/s", v / (1024.0 * 1024.0)),
            Kind::Latency => format!("{:.1} µs", v * 1e6),
            Kind::Rate => format!("{v:.0}/s"),
            Kind::Memory => format!("{:.1} KiB", v / 1024.0),
        };
        let target = match (self.target, self.meets_target()) {
            (Some((t, higher)), Some(ok)) => {
                format!(
                    " (target {} {t:.2}: {})",
                    if higher { "≥" } else { "≤" },
                    if ok { "met" } else { "MISSED" }
                )
            }
            _ => String::new(),
        };
        let extra: Vec<String> = self
            .extra
            .iter()
            .map(|(k, v)| match *k {
                k if k.ends_with("_s") => format!("{k}={:.1}µs", v * 1e6),
                k => format!("{k}={v:.0}"),
            })
            .collect();
        let trials = if self.trials.len() > 1 {
            format!(" over {} trials", self.trials.len())
        } else {
            String::new()
        };
        format!(
            "{:<18} ours {:>14}  baseline {:>14}  ratio {:.3}{trials}{target}{}",
            self.scenario,
            fmt(self.ours),
            fmt(self.baseline),
            self.ratio(),
            if extra.is_empty() {
                String::new()
            } else {
                format!("  [{}]", extra.join(" "))
            }
        )
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let mut v = json!({
            "scenario": self.scenario,
            "unit": match self.kind { Kind::Throughput => "bytes/s", Kind::Latency => "s", Kind::Rate => "ops/s", Kind::Memory => "bytes" },
            "ours": self.ours,
            "baseline": self.baseline,
            "ratio": self.ratio(),
        });
        if !self.trials.is_empty() {
            v["trial_ratios"] = json!(self.trials);
        }
        if let Some((t, higher)) = self.target {
            v["target"] =
                json!({"ratio": t, "higher_is_better": higher, "met": self.meets_target()});
        }
        for (k, x) in &self.extra {
            v[*k] = json!(x);
        }
        v
    }
}

/// Median and 99th percentile of `samples` (seconds), sorting them in place.
pub(crate) fn median_p99(samples: &mut [f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Runs `trial` `n` times (ours and baseline interleaved inside each trial) and merges
/// the outcomes: medians of both figures, and the median of the per-trial ratios, which
/// is robust against a noisy neighbour slowing one trial.
pub(crate) fn repeat(
    n: usize,
    mut trial: impl FnMut() -> anyhow::Result<Outcome>,
) -> anyhow::Result<Outcome> {
    let mut runs = Vec::with_capacity(n.max(1));
    for _ in 0..n.max(1) {
        runs.push(trial()?);
    }
    let mut ours: Vec<f64> = runs.iter().map(|o| o.ours).collect();
    let mut base: Vec<f64> = runs.iter().map(|o| o.baseline).collect();
    let trials: Vec<f64> = runs.iter().map(Outcome::ratio).collect();
    let mut merged = runs.swap_remove(0);
    merged.ours = median_p99(&mut ours).0;
    merged.baseline = median_p99(&mut base).0;
    merged.trials = trials;
    Ok(merged)
}
