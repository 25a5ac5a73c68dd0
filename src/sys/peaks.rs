//! Peak dense throughput of known GPUs, so MFU needs no hand-set `ui.peak_tflops` there.
//! Figures are the vendors' dense (no sparsity) BF16/FP16 tensor-core peaks, the usual MFU
//! base (PaLM, nanoGPT); a run in f32 will show a lower MFU against them.

/// (name fragment, TFLOP/s), most specific fragments first: the first match wins.
const KNOWN: &[(&str, f64)] = &[
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("L4", 121.0),
    ("A6000", 155.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
    ("V100", 125.0),
    ("T4", 65.0),
];

/// The peak of a device known by its NVML name (e.g. "NVIDIA H100 80GB HBM3"), if listed.
pub fn known_peak_tflops(device_name: &str) -> Option<f64> {
    let name = device_name.to_ascii_uppercase();
    KNOWN
        .iter()
        .find(|(frag, _)| name.contains(&frag.to_ascii_uppercase()))
        .map(|(_, tflops)| *tflops)
}

#[cfg(test)]
mod tests {
    use super::known_peak_tflops;

    #[test]
    fn specific_names_win() {
        assert_eq!(known_peak_tflops("NVIDIA H100 80GB HBM3"), Some(989.0));
        assert_eq!(known_peak_tflops("NVIDIA H100 PCIe"), Some(756.0));
        assert_eq!(known_peak_tflops("NVIDIA H200"), Some(989.0));
        assert_eq!(known_peak_tflops("NVIDIA A100-SXM4-80GB"), Some(312.0));
        assert_eq!(known_peak_tflops("NVIDIA A10G"), Some(70.0));
        assert_eq!(known_peak_tflops("NVIDIA L40S"), Some(362.0));
        assert_eq!(known_peak_tflops("Some Future GPU"), None);
    }
}
