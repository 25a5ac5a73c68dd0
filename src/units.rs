//! How sizes and metric values are written for people, in one place so the cockpit, `ckpt ls`,
//! `info` and `eval` agree (binary units everywhere; counts as integers).

use std::collections::BTreeMap;

/// Metric keys that count things (questions, tokens): printed as integers, never "198.0000".
pub const COUNT_METRICS: [&str; 3] = ["n", "tokens", "windows"];

/// A byte count in binary units (B, KiB, MiB, GiB), the units `ls -h`, `du -h` and memory
/// reports use, so sizes shown in different places can be compared digit for digit.
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// Parse a size the way people write one: `80GiB`, `80 GB`, `512MiB`, `1.5TiB`, `1024` (bytes).
/// Binary units are powers of 1024, decimal ones (KB, MB, GB, TB) powers of 1000.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return None,
    };
    let bytes = value * scale;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// One metric as `key value`: counts (see [`COUNT_METRICS`]) as integers when they are whole
/// numbers, everything else with four decimals.
pub fn format_metric(key: &str, value: f64) -> String {
    let whole = value.fract() == 0.0 && value.abs() < 1e15;
    if COUNT_METRICS.contains(&key) && whole {
        format!("{key} {}", value as i64)
    } else {
        format!("{key} {value:.4}")
    }
}

/// A metrics map as `acc 0.1364, acc_norm 0.1010, n 198` (keys in their map order).
pub fn format_metrics(metrics: &BTreeMap<String, f64>) -> String {
    metrics
        .iter()
        .map(|(k, v)| format_metric(k, *v))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_bytes("80GiB"), Some(80 << 30));
        assert_eq!(parse_bytes("80 GB"), Some(80_000_000_000));
        assert_eq!(parse_bytes("1.5 TiB"), Some(3 << 39));
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("12 parsecs"), None);
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("-5GiB"), None);
    }

    #[test]
    fn counts_print_as_integers_and_rates_with_four_decimals() {
        let m = BTreeMap::from([
            ("acc".to_string(), 0.136363),
            ("n".to_string(), 198.0),
            ("tokens".to_string(), 65536.0),
            ("loss".to_string(), 4.0),
        ]);
        assert_eq!(
            format_metrics(&m),
            "acc 0.1364, loss 4.0000, n 198, tokens 65536"
        );
        // A count that is not whole (never produced, but never hidden either).
        assert_eq!(format_metric("n", 2.5), "n 2.5000");
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(16 * 1024 * 1024), "16.0 MiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3.00 GiB");
    }
}
