//! The control server a run's owner (the headless runner) opens: it accepts local
//! connections, validates each request (`controls::validate_setting` for `set`, exactly as
//! `--set`), forwards it to the engine as a `protocol::Command` and answers with the event the
//! engine sent back. The owner feeds it every engine event through [`ControlServer::observe`].
//! Every read and write has a timeout and a size bound, so a wedged or hostile peer can stall
//! only its own connection thread, never the run.

use super::endpoint::{self, Endpoint};
use super::wire::{one_line, read_line, Action, LineRead, Reply, Request, RunStatus};
use crate::config::RunConfig;
use crate::controls::{current_value, validate_setting, LIVE_KEYS};
use crate::protocol::{AlertKind, Command, Event, RunInfo, SampleParams};
use anyhow::Result;
use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
struct RunState {
    status: RunStatus,
    /// The run's config with every live change applied, for validating the next `set`.
    config: RunConfig,
    finished: bool,
}

/// State shared by the accept loop, connection threads and the owner.
struct Shared {
    commands: Mutex<Sender<Command>>,
    state: Mutex<RunState>,
    /// Connection threads waiting for an engine event.
    subscribers: Mutex<Vec<(u64, Sender<Event>)>>,
    next_subscriber: AtomicU64,
    next_sample: AtomicU64,
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
                Ok(req) => handle(req, shared),
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
        if reply(&stream, &answer).is_err() {
            return;
        }
    }
}

/// Receives the engine events after it was created; unsubscribes on drop.
struct Subscription<'a> {
    shared: &'a Shared,
    id: u64,
    rx: Receiver<Event>,
}

impl<'a> Subscription<'a> {
    fn new(shared: &'a Shared) -> Self {
        let (tx, rx) = channel();
        let id = shared.next_subscriber.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut subs) = shared.subscribers.lock() {
            subs.push((id, tx));
        }
        Self { shared, id, rx }
    }

    /// The first event `pick` maps to a reply, an error reply when the run finishes first, or
    /// a timeout reply after `timeout_s`.
    fn wait(
        &self,
        timeout_s: u64,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<Reply>,
    ) -> Reply {
        let deadline = Instant::now() + Duration::from_secs(timeout_s);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ev) => {
                    if let Some(r) = pick(&ev) {
                        return r;
                    }
                    if let Event::Finished { step, reason, .. } = ev {
                        return Reply::error(format!(
                            "the run finished at step {step} ({reason:?}) before {what}"
                        ));
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return Reply::error(format!(
                        "no answer from the engine within {timeout_s} s ({what}); it acts between steps, so the command is still queued (a longer timeout_s waits longer)"
                    ))
                }
            }
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        if let Ok(mut subs) = self.shared.subscribers.lock() {
            subs.retain(|(id, _)| *id != self.id);
        }
    }
}

/// Send `cmd` to the engine; the refusal to answer with when it cannot be.
fn send(shared: &Shared, cmd: Command) -> Option<Reply> {
    let finished = shared.state.lock().map(|s| s.finished).unwrap_or(true);
    let sent = !finished
        && shared
            .commands
            .lock()
            .map(|tx| tx.send(cmd).is_ok())
            .unwrap_or(false);
    (!sent).then(|| Reply::error("the run has finished; its engine takes no more commands"))
}

fn status_of(shared: &Shared) -> RunStatus {
    match shared.state.lock() {
        Ok(st) => st.status.clone(),
        Err(p) => p.into_inner().status.clone(),
    }
}

fn handle(req: Request, shared: &Shared) -> Reply {
    let t = req.timeout_s;
    let status = status_of(shared);
    match req.action {
        Action::Status => {
            let s = status;
            let mut r = Reply::ok(format!(
                "run {} {} at step {}/{}",
                s.run_name, s.state, s.step, s.max_steps
            ));
            r.status = Some(s);
            r
        }
        Action::Pause | Action::Resume => {
            let pause = req.action == Action::Pause;
            let want = if pause { "paused" } else { "running" };
            if status.state == want {
                return Reply::ok(format!("already {want} at step {}", status.step));
            }
            let sub = Subscription::new(shared);
            if let Some(r) = send(
                shared,
                if pause {
                    Command::Pause
                } else {
                    Command::Resume
                },
            ) {
                return r;
            }
            sub.wait(
                t,
                if pause { "pausing" } else { "resuming" },
                |ev| match ev {
                    Event::Paused { step } if pause => {
                        Some(Reply::ok(format!("paused at step {step}")))
                    }
                    Event::Resumed { step } if !pause => {
                        Some(Reply::ok(format!("resumed at step {step}")))
                    }
                    _ => None,
                },
            )
        }
        Action::Save => {
            let sub = Subscription::new(shared);
            if let Some(r) = send(shared, Command::SaveCheckpoint) {
                return r;
            }
            sub.wait(t, "saving", |ev| match ev {
                Event::CheckpointSaved { step, path } => {
                    let mut r = Reply::ok(format!("checkpoint {path} (step {step})"));
                    r.checkpoint = Some(path.clone());
                    Some(r)
                }
                Event::Alert {
                    kind: AlertKind::CheckpointFailed,
                    detail,
                    ..
                } => Some(Reply::error(format!("checkpoint failed: {detail}"))),
                _ => None,
            })
        }
        Action::Eval => {
            let sub = Subscription::new(shared);
            if let Some(r) = send(shared, Command::EvalNow) {
                return r;
            }
            sub.wait(
                t,
                "evaluating (a run without validation data never answers)",
                |ev| match ev {
                    Event::Eval { step, val_loss } => {
                        let mut r = Reply::ok(format!("val_loss {val_loss:.4} at step {step}"));
                        r.val_loss = Some(*val_loss);
                        Some(r)
                    }
                    _ => None,
                },
            )
        }
        Action::Set(item) => set(shared, &item, t),
        Action::Sample { prompt, knobs } => sample(shared, prompt, knobs, t),
    }
}

/// Validate like `--set` (same messages) before anything reaches the engine, then report the
/// engine's own verdict faithfully.
fn set(shared: &Shared, item: &str, timeout_s: u64) -> Reply {
    let validated = match shared.state.lock() {
        Ok(st) => validate_setting(&st.config, item),
        Err(_) => return Reply::error("internal error: control state poisoned"),
    };
    let (setting, _) = match validated {
        Ok(v) => v,
        Err(e) => return Reply::error(format!("{e:#}")),
    };
    let value = item
        .split_once('=')
        .map_or("", |(_, v)| v)
        .trim()
        .to_string();
    let key = setting.key.clone();
    let sub = Subscription::new(shared);
    if let Some(r) = send(
        shared,
        Command::Set {
            key: key.clone(),
            value: value.clone(),
        },
    ) {
        return r;
    }
    sub.wait(timeout_s, "applying the setting", |ev| match ev {
        Event::ControlChanged { step, change } if change.key == key => {
            let mut r = Reply::ok(format!(
                "{}: {} -> {} from step {}",
                change.key,
                change.old,
                change.new,
                step + 1
            ));
            r.change = Some(change.clone());
            Some(r)
        }
        Event::ControlRejected {
            step,
            key: k,
            value: v,
            message,
        } if *k == key => Some(Reply::error(format!(
            "the engine refused {k}={v} at step {step}: {}",
            one_line(message)
        ))),
        _ => None,
    })
}

fn sample(
    shared: &Shared,
    prompt: String,
    knobs: super::wire::SampleKnobs,
    timeout_s: u64,
) -> Reply {
    let mut params: SampleParams = match shared.state.lock() {
        Ok(st) => st.config.sample.params(),
        Err(_) => return Reply::error("internal error: control state poisoned"),
    };
    params.max_tokens = knobs.max_tokens.unwrap_or(params.max_tokens);
    params.temperature = knobs.temperature.unwrap_or(params.temperature);
    params.top_k = knobs.top_k.unwrap_or(params.top_k);
    params.top_p = knobs.top_p.unwrap_or(params.top_p);
    params.seed = knobs.seed.unwrap_or(params.seed);
    if let Err(e) = crate::config::validate_sample(&params) {
        return Reply::error(format!("sample: {e:#}"));
    }
    let id = shared.next_sample.fetch_add(1, Ordering::Relaxed);
    let sub = Subscription::new(shared);
    if let Some(r) = send(shared, Command::Sample { id, prompt, params }) {
        return r;
    }
    sub.wait(timeout_s, "sampling", |ev| match ev {
        Event::SampleDone {
            id: done,
            step,
            text,
            tokens,
            tokens_per_s,
            ..
        } if *done == id => {
            let mut r = Reply::ok(format!(
                "{tokens} tokens at step {step} ({tokens_per_s:.1} tokens/s)"
            ));
            r.text = Some(text.clone());
            r.sample_id = Some(id);
            Some(r)
        }
        _ => None,
    })
}
