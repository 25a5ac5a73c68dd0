//! `[train] on_spike`, decided by the consumer (the cockpit and the headless runner share this),
//! never by the engine: on a loss spike or gradient explosion, alert only, pause, or rewind to
//! the newest checkpoint before the spike and skip past the batches that led to it, at most
//! `max_auto_rewinds` times. Burn-free: it reads events and checkpoint listings only.

use crate::config::{OnSpike, RunConfig};
use crate::protocol::{AlertKind, Command, Event};
use crate::store::listing::list_checkpoints;
use std::path::{Path, PathBuf};

/// What the consumer should do about one event: a command to send and a line to show.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeDecision {
    /// `Pause` or `Rewind`; None when the spike is only alerted (cap reached, no checkpoint).
    pub command: Option<Command>,
    /// One line saying what was decided and why.
    pub notice: String,
}

/// A checkpoint the policy may rewind to.
#[derive(Debug, Clone, PartialEq)]
struct Base {
    step: u64,
    path: PathBuf,
}

/// The policy's state over one process's life (rewinds are counted across branches).
#[derive(Debug, Clone, Default)]
pub struct SpikePolicy {
    on_spike: OnSpike,
    rewind_skip: u64,
    max_auto_rewinds: u32,
    rewinds_done: u32,
    run_dir: Option<PathBuf>,
    /// The checkpoint the current run started from (a resume or a rewind): a branch has no
    /// checkpoint of its own until it saves one, yet may rewind to where it began.
    start: Option<Base>,
    /// The run is paused by this policy: later spikes need no second pause.
    paused_by_policy: bool,
    /// The cap was announced once; later spikes are alerted by the engine's own alerts.
    cap_announced: bool,
    /// A rewind was sent and the engine has not answered yet: spikes of the steps it ran
    /// meanwhile are already dealt with by that rewind.
    rewind_in_flight: bool,
}

impl SpikePolicy {
    /// The policy a run's config asks for.
    pub fn from_config(config: &RunConfig) -> Self {
        Self {
            on_spike: config.train.on_spike,
            rewind_skip: config.train.rewind_skip,
            max_auto_rewinds: config.train.max_auto_rewinds,
            ..Self::default()
        }
    }

    /// What `[train] on_spike` says.
    pub fn on_spike(&self) -> OnSpike {
        self.on_spike
    }

    /// Automatic rewinds made so far.
    pub fn rewinds_done(&self) -> u32 {
        self.rewinds_done
    }

    /// Follow the run (its directory, where it started, its config) and decide on spikes.
    pub fn observe(&mut self, event: &Event) -> Option<SpikeDecision> {
        match event {
            Event::Started { info, .. } => {
                if let Ok(cfg) = RunConfig::from_toml_str(&info.config_toml, "started event") {
                    let (done, announced) = (self.rewinds_done, self.cap_announced);
                    *self = Self::from_config(&cfg);
                    (self.rewinds_done, self.cap_announced) = (done, announced);
                }
                self.run_dir = Some(PathBuf::from(&info.run_dir));
                self.start = ["resume:", "rewind:"].iter().find_map(|prefix| {
                    info.origin.strip_prefix(prefix).map(|p| Base {
                        step: info.start_step,
                        path: PathBuf::from(p),
                    })
                });
                None
            }
            Event::Resumed { .. } => {
                self.paused_by_policy = false;
                None
            }
            Event::Rewound { .. } => {
                self.rewind_in_flight = false;
                None
            }
            Event::Alert {
                kind: AlertKind::Notice,
                detail,
                ..
            } if detail.starts_with("rewind refused") => {
                self.rewind_in_flight = false;
                None
            }
            Event::Alert {
                step,
                kind: AlertKind::LossSpike | AlertKind::GradExplosion,
                ..
            } => self.decide(*step),
            _ => None,
        }
    }

    fn decide(&mut self, spike_step: u64) -> Option<SpikeDecision> {
        match self.on_spike {
            OnSpike::Alert => None,
            OnSpike::Pause if self.paused_by_policy => None,
            OnSpike::Pause => {
                self.paused_by_policy = true;
                Some(SpikeDecision {
                    command: Some(Command::Pause),
                    notice: format!("on_spike = \"pause\": paused at step {spike_step}"),
                })
            }
            OnSpike::Rewind if self.rewind_in_flight => None,
            OnSpike::Rewind if self.rewinds_done >= self.max_auto_rewinds => {
                if std::mem::replace(&mut self.cap_announced, true) {
                    return None;
                }
                Some(SpikeDecision {
                    command: None,
                    notice: format!(
                        "on_spike = \"rewind\": the cap of {} automatic rewinds (train.max_auto_rewinds) is reached; the spike at step {spike_step} and later ones are only alerted",
                        self.max_auto_rewinds
                    ),
                })
            }
            OnSpike::Rewind => {
                let Some(base) = self.newest_before(spike_step) else {
                    return Some(SpikeDecision {
                        command: None,
                        notice: format!(
                            "on_spike = \"rewind\": no checkpoint before step {spike_step} to rewind to; only alerted"
                        ),
                    });
                };
                let skip = match self.rewind_skip {
                    0 => spike_step - base.step,
                    n => n,
                };
                self.rewinds_done += 1;
                self.rewind_in_flight = true;
                Some(SpikeDecision {
                    notice: format!(
                        "on_spike = \"rewind\": spike at step {spike_step}; rewinding to {} (step {}) and skipping {skip} steps of data (automatic rewind {} of {})",
                        base.path.display(),
                        base.step,
                        self.rewinds_done,
                        self.max_auto_rewinds
                    ),
                    command: Some(Command::Rewind {
                        checkpoint: base.path,
                        skip_batches: skip,
                    }),
                })
            }
        }
    }

    /// Where a rewind for a spike at `step` would go (path and step), for the cockpit's dialog.
    pub fn rewind_target(&self, step: u64) -> Option<(PathBuf, u64)> {
        self.newest_before(step).map(|b| (b.path, b.step))
    }

    /// The newest loadable checkpoint of the current run (or where it started) before `step`.
    fn newest_before(&self, step: u64) -> Option<Base> {
        let own = self.run_dir.as_deref().map(Path::new).and_then(|dir| {
            list_checkpoints(dir)
                .into_iter()
                .filter(|c| c.error.is_none() && c.step < step)
                .max_by_key(|c| c.step)
                .map(|c| Base {
                    step: c.step,
                    path: PathBuf::from(c.path),
                })
        });
        let start = self.start.clone().filter(|b| b.step < step);
        match (own, start) {
            (Some(a), Some(b)) => Some(if b.step > a.step { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(step: u64) -> Event {
        Event::Alert {
            step,
            kind: AlertKind::LossSpike,
            detail: "spike".into(),
        }
    }

    #[test]
    fn alert_pause_and_the_rewind_cap() {
        let mut cfg = RunConfig::default();
        assert!(SpikePolicy::from_config(&cfg).observe(&alert(5)).is_none());
        cfg.train.on_spike = OnSpike::Pause;
        let mut p = SpikePolicy::from_config(&cfg);
        assert_eq!(p.observe(&alert(5)).unwrap().command, Some(Command::Pause));
        assert!(p.observe(&alert(6)).is_none(), "already paused");
        p.observe(&Event::Resumed { step: 6 });
        assert!(p.observe(&alert(7)).is_some());

        cfg.train.on_spike = OnSpike::Rewind;
        cfg.train.max_auto_rewinds = 1;
        let mut p = SpikePolicy::from_config(&cfg);
        p.start = Some(Base {
            step: 4,
            path: "/runs/r/checkpoints/step-00000004".into(),
        });
        let d = p.observe(&alert(9)).unwrap();
        assert_eq!(
            d.command,
            Some(Command::Rewind {
                checkpoint: "/runs/r/checkpoints/step-00000004".into(),
                skip_batches: 5,
            })
        );
        assert!(
            p.observe(&alert(10)).is_none(),
            "one rewind in flight at a time"
        );
        p.observe(&Event::Rewound {
            step: 4,
            from_step: 10,
            checkpoint: "/runs/r/checkpoints/step-00000004".into(),
            skip_batches: 5,
            run_dir: "/runs/r-branch-4".into(),
        });
        let d = p.observe(&alert(9)).unwrap();
        assert_eq!(d.command, None);
        assert!(d.notice.contains("cap of 1"), "{}", d.notice);
        assert!(p.observe(&alert(10)).is_none(), "the cap is announced once");
    }
}
