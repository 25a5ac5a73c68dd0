//! GPU utilisation and memory through NVML (`nvml-wrapper`) in a `cuda` build; a build without
//! it, or a machine without the driver library, reads as such instead of failing.

/// Utilisation and memory of one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuStat {
    pub index: u32,
    pub name: String,
    /// % of the last sample period a kernel ran.
    pub util_percent: u32,
    pub mem_used: u64,
    pub mem_total: u64,
}

/// What the GPU probe found.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuReading {
    /// A build without the `cuda` feature.
    NotBuilt,
    /// NVML could not be opened or read (no driver, no GPU): the one-line reason.
    NoNvml(String),
    Devices(Vec<GpuStat>),
}

/// Holds NVML open between readings (opened on the first one).
#[derive(Default)]
pub struct GpuProbe {
    #[cfg(feature = "cuda")]
    nvml: Option<Result<nvml_wrapper::Nvml, String>>,
}

impl GpuProbe {
    /// Read every GPU NVML reports.
    #[cfg(feature = "cuda")]
    pub fn read(&mut self) -> GpuReading {
        let nvml = self
            .nvml
            .get_or_insert_with(|| nvml_wrapper::Nvml::init().map_err(|e| e.to_string()));
        let nvml = match nvml {
            Ok(n) => n,
            Err(e) => return GpuReading::NoNvml(e.clone()),
        };
        let read = || -> Result<Vec<GpuStat>, nvml_wrapper::error::NvmlError> {
            let mut out = Vec::new();
            for index in 0..nvml.device_count()? {
                let d = nvml.device_by_index(index)?;
                let mem = d.memory_info()?;
                out.push(GpuStat {
                    index,
                    name: d.name()?,
                    util_percent: d.utilization_rates()?.gpu,
                    mem_used: mem.used,
                    mem_total: mem.total,
                });
            }
            Ok(out)
        };
        match read() {
            Ok(v) => GpuReading::Devices(v),
            Err(e) => GpuReading::NoNvml(e.to_string()),
        }
    }

    /// Read every GPU NVML reports (none: this build has no `cuda` feature).
    #[cfg(not(feature = "cuda"))]
    pub fn read(&mut self) -> GpuReading {
        GpuReading::NotBuilt
    }
}
