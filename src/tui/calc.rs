//! Number crunching and formatting shared by the App and the panes: EMA smoothing, log-axis
//! mapping, MFU, and compact human formats. Pure functions, so they are trivially testable.

/// MFU = achieved FLOP/s over peak; `None` when the peak is unknown (0) or inputs are bogus.
pub fn mfu(tokens_per_s: f64, flops_per_token: f64, peak_tflops: f64) -> Option<f64> {
    (peak_tflops > 0.0 && flops_per_token > 0.0 && tokens_per_s.is_finite())
        .then(|| tokens_per_s * flops_per_token / (peak_tflops * 1e12))
}

/// Bias-corrected EMA (as TensorBoard smooths): early points are not dragged towards zero and
/// non-finite inputs repeat the previous value instead of poisoning the rest of the curve.
pub fn ema(values: &[f64], factor: f64) -> Vec<f64> {
    let a = factor.clamp(0.0, 0.999);
    let mut acc = 0.0;
    let mut weight = 0.0;
    let mut out = Vec::with_capacity(values.len());
    for &v in values {
        if v.is_finite() {
            acc = a * acc + (1.0 - a) * v;
            weight = a * weight + (1.0 - a);
        }
        out.push(if weight > 0.0 { acc / weight } else { v });
    }
    out
}

/// Chart y coordinate: log10 on a log axis, where non-positive or non-finite losses have no
/// place and are dropped (`None`) rather than plotted at -inf.
pub fn scale_y(v: f64, log: bool) -> Option<f64> {
    if !v.is_finite() {
        None
    } else if log {
        (v > 0.0).then(|| v.log10())
    } else {
        Some(v)
    }
}

/// Compact human durations for the ETA ("3h 05m", "42s").
pub fn fmt_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "n/a".into();
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Compact counts for tokens and parameters ("1.23M").
pub fn fmt_count(n: f64) -> String {
    let a = n.abs();
    if a >= 1e12 {
        format!("{:.2}T", n / 1e12)
    } else if a >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}
