//! The control server a run's owner (headless runner or training cockpit) opens: it accepts local
//! connections, validates each request (`controls::validate_setting` for `set`, exactly as
//! `--set`), forwards it to the engine as a `protocol::Command` and answers with the event the
//! engine sent back. The owner feeds it every engine event through [`ControlServer::observe`].
//! Every read and write has a timeout and a size bound, so a wedged or hostile peer can stall
//! only its own connection thread, never the run.

use super::endpoint::{self, Endpoint};
use super::wire::{read_line, LineRead, Reply, Request, RunStatus};
use crate::config::RunConfig;
use crate::controls::{current_value, validate_setting, LIVE_KEYS};
use crate::protocol::{Command, Event, RunInfo};
use anyhow::Result;
use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections served at once; more are answered "busy" and closed.
const MAX_CONNECTIONS: usize = 8;
/// An idle connection is closed after this long without a request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A peer that does not read its reply within this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept loop looks at its stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// Sample ids the server hands the engine start here, far from the cockpit's own (from 1).
const SAMPLE_ID_BASE: u64 = 1 << 48;

/// What the server knows about the run, from the events it observed.
pub(super) struct RunState {
    pub(super) status: RunStatus,
    /// The run's config with every live change applied, for validating the next `set`.
    pub(super) config: RunConfig,
    pub(super) finished: bool,
}

/// State shared by the accept loop, connection threads and the owner.
pub(super) struct Shared {
    pub(super) commands: Mutex<Sender<Command>>,
    pub(super) state: Mutex<RunState>,
    /// Connection threads waiting for an engine event.
    pub(super) subscribers: Mutex<Vec<(u64, Sender<Event>)>>,
    pub(super) next_subscriber: AtomicU64,
    pub(super) next_sample: AtomicU64,
    connections: AtomicUsize,
    stop: AtomicBool,
}

/// A run's open control endpoint; dropping it stops serving and removes the socket (if it is
/// still ours).
pub struct ControlServer {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    endpoint: Endpoint,
}

impl ControlServer {
    /// Open `<run_dir>/control.sock` for the run `info` describes, forwarding to `commands`.
    /// Refuses (see `endpoint::open`) without affecting the run.
    pub fn start(info: &RunInfo, commands: Sender<Command>) -> Result<Self> {
        let run_dir = Path::new(&info.run_dir);
        let config = RunConfig::from_toml_str(&info.config_toml, &info.run_dir)?;
        let (listener, endpoint) = endpoint::open(run_dir)?;
        let status = RunStatus {
            run_name: info.run_name.clone(),
            run_dir: info.run_dir.clone(),
            pid: std::process::id(),
            state: "running".into(),
            step: info.start_step,
            max_steps: info.max_steps,
            tokens: info.start_step * info.tokens_per_step,
            last_loss: None,
            last_val_loss: None,
            controls: controls_of(&config),
        };
        let shared = Arc::new(Shared {
            commands: Mutex::new(commands),
            state: Mutex::new(RunState {
                status,
                config,
                finished: false,
            }),
            subscribers: Mutex::new(Vec::new()),
            next_subscriber: AtomicU64::new(0),
            next_sample: AtomicU64::new(SAMPLE_ID_BASE),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("llite-control".into())
            .spawn(move || accept_loop(listener, s))?;
        Ok(Self {
            shared,
            accept: Some(accept),
            endpoint,
        })
    }

    /// Where clients connect.
    pub fn socket_path(&self) -> &Path {
        self.endpoint.path()
    }

    /// Feed one engine event: updates the status and wakes requests waiting for it.
    pub fn observe(&self, event: &Event) {
        if let Ok(mut st) = self.shared.state.lock() {
            update(&mut st, event);
        }
        if matches!(event, Event::SampleToken { .. }) {
            return;
        }
        if let Ok(subs) = self.shared.subscribers.lock() {
            for (_, tx) in subs.iter() {
                let _ = tx.send(event.clone());
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Requests still waiting learn at once that no answer will come; later ones are
        // refused (connection threads may outlive the server by one idle timeout).
        if let Ok(mut st) = self.shared.state.lock() {
            st.finished = true;
        }
        if let Ok(mut subs) = self.shared.subscribers.lock() {
            subs.clear();
        }
        if let Some(j) = self.accept.take() {
            let _ = j.join();
        }
    }
}

fn controls_of(config: &RunConfig) -> BTreeMap<String, crate::controls::ControlValue> {
    LIVE_KEYS
        .iter()
        .filter_map(|k| current_value(config, k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

fn update(st: &mut RunState, event: &Event) {
    let s = &mut st.status;
    match event {
        Event::Step(x) => {
            s.step = x.step;
            s.tokens = x.tokens;
            s.last_loss = Some(x.loss);
        }
        Event::Eval { val_loss, .. } => s.last_val_loss = Some(*val_loss),
        // A rewind moves the run back: later requests compare steps against this one.
        Event::Rewound { step, .. } => s.step = *step,
        Event::Paused { .. } => s.state = "paused".into(),
        Event::Resumed { .. } => s.state = "running".into(),
        Event::ControlChanged { change, .. } => {
            let setting = format!("{}={}", change.key, change.new);
            if let Ok((_, changed)) = validate_setting(&st.config, &setting) {
                st.config = changed;
                s.controls = controls_of(&st.config);
            }
        }
        Event::Finished { step, .. } => {
            s.step = *step;
            s.state = "finished".into();
            st.finished = true;
        }
        _ => {}
    }
}

fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    shared.connections.fetch_sub(1, Ordering::SeqCst);
                    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                    let _ = reply(
                        &stream,
                        &Reply::error("busy: too many control connections; try again"),
                    );
                    continue;
                }
                let s = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("llite-control-conn".into())
                    .spawn(move || {
                        serve(stream, &s);
                        s.connections.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    shared.connections.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

fn reply(mut stream: &UnixStream, r: &Reply) -> std::io::Result<()> {
    let mut line = r.to_line();
    line.push('\n');
    stream.write_all(line.as_bytes())
}

/// The uid of the connected peer (Linux `SO_PEERCRED`), None where it cannot be read.
fn peer_uid(stream: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid socket fd and a correctly sized, writable ucred buffer.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

/// One connection: request lines in, one reply line each, until EOF, idle timeout or a line
/// too long to be a request.
fn serve(stream: UnixStream, shared: &Shared) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|_| stream.set_read_timeout(Some(IDLE_TIMEOUT)))
        .and_then(|_| stream.set_write_timeout(Some(WRITE_TIMEOUT)));
    if setup.is_err() {
        return;
    }
    if peer_uid(&stream) != Some(endpoint::my_uid()) {
        let _ = reply(
            &stream,
            &Reply::error("refused: only the run's owner may control it"),
        );
        return;
    }
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    loop {
        let answer = match read_line(&mut reader) {
            Ok(LineRead::Line(l)) if l.trim().is_empty() => continue,
            Ok(LineRead::Line(l)) => match Request::parse(&l) {
                Ok(req) => super::handlers::handle(req, shared),
                Err(e) => Reply::error(e),
            },
            Ok(LineRead::TooLong) => {
                let too_long = format!(
                    "request longer than {} bytes; closing this connection",
                    super::wire::MAX_LINE_BYTES
                );
                let _ = reply(&stream, &Reply::error(too_long));
                return;
            }
            Ok(LineRead::Eof) | Err(_) => return,
        };
        if reply(&stream, &answer).is_err() || shared.stop.load(Ordering::Relaxed) {
            return;
        }
    }
}
