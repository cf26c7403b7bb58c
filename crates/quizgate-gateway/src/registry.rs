//! Which local connection follows which quiz, and the fan-out of each event to
//! them. Each quiz with local members has a [`Room`]; each event is encoded at
//! most once per encoding and the same bytes are queued for every member.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use dashmap::DashMap;
use quizgate_backplane::{Backplane, BackplaneError, EventSink};
use quizgate_domain::{
    Event, JoinCode, Millis, Phase, PlayerId, Progress, QuizDefinition, Sequenced, StandingsDue,
    StandingsGate, ranked,
};
use quizgate_protocol::{Encoding, QuizView, ServerFrame};
use quizgate_telemetry::Metrics;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, OnceCell, mpsc};

use crate::close::{Evicted, Eviction};
use crate::outbound::{Outbound, SharedEvent, framed};
use crate::wire::{Offer, Wire};

pub(crate) type ConnId = u64;

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) tx: mpsc::Sender<Outbound>,
    /// The socket, for writing events without waking the connection's task.
    wire: Arc<Wire>,
    pub(crate) encoding: Encoding,
    seat: Seat,
    /// The claim its seat was taken with (0: a join or a host, no claim),
    /// and whether that claim has come back on the quiz's channel: claims
    /// that come after it there are newer (see [`Room::claim_seen`]).
    claim: u64,
    claim_seen: bool,
    /// Set before the member is dropped from its room; the connection reads
    /// it when its queue closes.
    pub(crate) evicted: Arc<Eviction>,
    /// The last standing sent: score << 32 | rank.
    last_standing: AtomicU64,
}

impl Member {
    pub(crate) fn new(
        tx: mpsc::Sender<Outbound>,
        wire: Arc<Wire>,
        encoding: Encoding,
        evicted: Arc<Eviction>,
    ) -> Self {
        Self {
            tx,
            wire,
            encoding,
            seat: Seat::Empty,
            claim: 0,
            claim_seen: true,
            evicted,
            last_standing: AtomicU64::new(u64::MAX),
        }
    }
}

impl Member {
    /// A frame for this member alone (a standing, a progress). A full queue
    /// skips it: the member is already being evicted or gets the next one.
    fn send_direct(&self, frame: bytes::Bytes) {
        if self.wire.offer_direct(&frame) == Offer::Queue {
            let _ = self.tx.try_send(Outbound::Direct(Box::new(frame)));
        }
    }
}

/// Who a connection is in its quiz: `Empty` until its `join`, `resume` or
/// `host` succeeded. The connection and its room's member hold the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seat {
    Empty,
    Player(PlayerId),
    Host,
}

/// The local members of one quiz.
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) code: JoinCode,
    pub(crate) definition: Arc<QuizDefinition>,
    members: RwLock<HashMap<ConnId, Member>>,
    subscribed: OnceCell<()>,
    /// The open question and its deadline, as last heard from the backplane.
    open_question: Mutex<Option<(u16, Millis)>>,
    /// Something changed here that a leaderboard should show.
    dirty: AtomicBool,
    /// The domain's rule for when standings are owed (fed every event), and
    /// the standings it said are owed that the ticker has not sent yet.
    standings: Mutex<(StandingsGate, Option<StandingsDue>)>,
    last_leaderboard: Mutex<Option<Instant>>,
    /// When the hosts' progress was last looked at, and what was last sent.
    progress: Mutex<(Option<Instant>, Option<Progress>)>,
    /// Events delivered and not yet fanned out: they leave together at the
    /// backplane's next `flush`. Held across the fan-out, so that two flushes
    /// never write one room's events out of order.
    batch: Mutex<Vec<Arc<Sequenced>>>,
    empty_since: Mutex<Option<Instant>>,
    /// The quiz no longer exists: the room goes as soon as it is empty.
    gone: AtomicBool,
    /// The ticker is tending this room (see [`Room::try_tend`]).
    tending: AtomicBool,
    /// The room is being removed: no member may enter, and its subscription
    /// is being undone. Set under the rooms map's write guard.
    retiring: AtomicBool,
    /// Wakes those waiting to enter once the room is out of the map.
    retired: Notify,
}

/// The ticker's claim on a room; the next tick may tend it once this drops.
#[derive(Debug)]
pub(crate) struct Tending(Arc<Room>);

impl std::ops::Deref for Tending {
    type Target = Arc<Room>;
    fn deref(&self) -> &Arc<Room> {
        &self.0
    }
}

impl Drop for Tending {
    fn drop(&mut self) {
        self.0.tending.store(false, Ordering::Release);
    }
}

// === impl Room ===

impl Room {
    fn new(code: JoinCode, definition: Arc<QuizDefinition>) -> Self {
        Self {
            code,
            definition,
            members: RwLock::new(HashMap::new()),
            subscribed: OnceCell::new(),
            open_question: Mutex::new(None),
            dirty: AtomicBool::new(false),
            standings: Mutex::new((StandingsGate::default(), None)),
            last_leaderboard: Mutex::new(None),
            progress: Mutex::new((None, None)),
            batch: Mutex::new(Vec::new()),
            empty_since: Mutex::new(Some(Instant::now())),
            gone: AtomicBool::new(false),
            tending: AtomicBool::new(false),
            retiring: AtomicBool::new(false),
            retired: Notify::new(),
        }
    }

    /// Claims the room for one round of the ticker, unless the last round is
    /// still running (waiting on the backplane): then this tick skips it.
    pub(crate) fn try_tend(self: &Arc<Self>) -> Option<Tending> {
        (!self.tending.swap(true, Ordering::AcqRel)).then(|| Tending(Arc::clone(self)))
    }

    pub(crate) fn len(&self) -> usize {
        self.members.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Takes the dirty flag if a leaderboard may be asked for now.
    pub(crate) fn take_dirty(&self, interval: std::time::Duration) -> bool {
        let mut last = lock(&self.last_leaderboard);
        if last.is_some_and(|t| t.elapsed() < interval)
            || !self.dirty.swap(false, Ordering::Relaxed)
        {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    pub(crate) fn take_standings_due(&self) -> Option<StandingsDue> {
        lock(&self.standings).1.take()
    }

    /// The open question's index if its deadline has passed by `now`.
    pub(crate) fn overdue(&self, now: Millis) -> Option<u16> {
        lock(&self.open_question)
            .filter(|(_, deadline)| now > *deadline)
            .map(|(index, _)| index)
    }

    /// Seats a member, with the claim it resumed its seat with (see
    /// [`Room::claim_seen`]). A player's session is live on one connection
    /// at a time: any other member of this room seated as the same player is
    /// evicted (the newer connection wins).
    pub(crate) fn set_seat(&self, id: ConnId, seat: Seat, claim: Option<u64>) {
        let mut members = self.write();
        if let Seat::Player(player) = seat {
            let older: Vec<ConnId> = members
                .iter()
                .filter(|(other, m)| **other != id && m.seat == seat)
                .map(|(other, _)| *other)
                .collect();
            for other in older {
                if let Some(m) = members.remove(&other) {
                    tracing::debug!(%player, "session taken over by a newer connection");
                    m.evicted.set(Evicted::Replaced);
                }
            }
        }
        if let Some(m) = members.get_mut(&id) {
            m.seat = seat;
            m.claim = claim.unwrap_or(0);
            m.claim_seen = claim.is_none();
        }
    }

    /// A claim on `player`'s seat came back on the quiz's channel. Claims
    /// come back in one order on every node, so a member whose own claim
    /// came back before this one (or that took its seat without one) is the
    /// older connection: it is evicted. A member whose claim is still on its
    /// way is the newer one and stays.
    pub(crate) fn claim_seen(&self, player: PlayerId, claim: u64) {
        let mut members = self.write();
        let mut older = Vec::new();
        for (id, m) in members.iter_mut() {
            if m.seat != Seat::Player(player) {
                continue;
            }
            if m.claim == claim {
                m.claim_seen = true;
            } else if m.claim_seen {
                older.push(*id);
            }
        }
        for id in older {
            if let Some(m) = members.remove(&id) {
                tracing::debug!(%player, "session taken over on another node");
                m.evicted.set(Evicted::Replaced);
            }
        }
    }

    /// Whether hosts here are owed a look at the quiz's progress: a local
    /// host follows it, and the last look was at least `interval` ago.
    pub(crate) fn take_progress_due(&self, interval: std::time::Duration) -> bool {
        {
            let mut last = lock(&self.progress);
            if last.0.is_some_and(|t| t.elapsed() < interval) {
                return false;
            }
            last.0 = Some(Instant::now());
        }
        self.read().values().any(|m| m.seat == Seat::Host)
    }

    /// Sends the local hosts the quiz's progress if it changed since the last
    /// one sent from this room, and the question it counts (or none) is still
    /// what is open here: a question may have started or been revealed while
    /// the count was read.
    pub(crate) fn send_progress(&self, p: Progress) {
        let open = lock(&self.open_question).map(|(index, _)| index);
        if open != p.question.map(|q| q.index) {
            return;
        }
        {
            let mut last = lock(&self.progress);
            if last.1 == Some(p) {
                return;
            }
            last.1 = Some(p);
        }
        let frame = ServerFrame::Progress {
            players: p.players,
            index: p.question.map(|q| q.index),
            answered: p.question.map(|q| q.answered),
        };
        // Hosts are few: each gets its own encoding.
        for m in self.read().values().filter(|m| m.seat == Seat::Host) {
            m.send_direct(framed(m.encoding, &frame));
        }
    }

    /// Removes a member because of `reason`; dropping its sender ends its queue.
    pub(crate) fn evict(&self, id: ConnId, reason: Evicted) {
        if let Some(m) = self.write().remove(&id) {
            m.evicted.set(reason);
        }
    }

    /// Removes every member seated as `player` because of `reason`.
    pub(crate) fn evict_player(&self, player: PlayerId, reason: Evicted) {
        self.write().retain(|_, m| {
            let keep = m.seat != Seat::Player(player);
            if !keep {
                m.evicted.set(reason);
            }
            keep
        });
    }

    pub(crate) fn evict_all(&self, reason: Evicted) {
        for (_, m) in self.write().drain() {
            m.evicted.set(reason);
        }
    }

    /// Sends each player member its score and rank (see
    /// [`quizgate_domain::StandingsGate`]) if they changed since the last one
    /// it was sent; with `is_final`, to everyone. `scores` is every player's
    /// score, highest first. A full queue skips one: the member is already
    /// being evicted or will get the next.
    pub(crate) fn send_standings(&self, scores: &[(PlayerId, u64)], is_final: bool) {
        let by_player: HashMap<PlayerId, (u64, u32)> = ranked(scores)
            .map(|(player, score, rank)| (player, (score, rank)))
            .collect();
        let players = scores.len() as u32;
        for m in self.read().values() {
            let Seat::Player(player) = m.seat else {
                continue;
            };
            let Some((score, rank)) = by_player.get(&player) else {
                continue;
            };
            let packed = (*score << 32) | u64::from(*rank);
            if m.last_standing.swap(packed, Ordering::Relaxed) != packed || is_final {
                let frame = ServerFrame::Standing {
                    score: *score,
                    rank: *rank,
                    players,
                };
                m.send_direct(framed(m.encoding, &frame));
            }
        }
    }

    /// Learns the open question from a snapshot, so that a node that joins a
    /// quiz mid-question still fires its deadline.
    pub(crate) fn observe_view(&self, view: &QuizView) {
        if let (Phase::Question, Some(q)) = (view.phase, &view.question) {
            let mut open = lock(&self.open_question);
            if open.is_none_or(|(index, _)| index <= q.index) {
                *open = Some((q.index, q.deadline_ms));
            }
        }
    }

    fn observe(&self, event: &Sequenced) {
        match &event.event {
            Event::QuestionStarted {
                index, deadline_ms, ..
            } => *lock(&self.open_question) = Some((*index, *deadline_ms)),
            Event::QuestionClosed { .. } | Event::QuizEnded { .. } => {
                *lock(&self.open_question) = None;
            }
            Event::Leaderboard { .. } | Event::PlayerRemoved { .. } | Event::LobbyLocked { .. } => {
            }
        }
        let mut standings = lock(&self.standings);
        if let Some(due) = standings.0.observe(event.seq, &event.event) {
            standings.1 = Some(due);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ConnId, Member>> {
        self.members.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ConnId, Member>> {
        self.members.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// All rooms of this node.
#[derive(Debug)]
pub(crate) struct Registry {
    /// A quiz's subscription is made by the first member's `attach` and undone
    /// by `remove_if_idle`; a room stays in the map, retiring, until its
    /// unsubscribe is done, so the next room of the same quiz subscribes only
    /// after it. No lock is held across a backplane call.
    rooms: DashMap<JoinCode, Arc<Room>>,
    /// Rooms with events delivered and not yet fanned out.
    held: Mutex<Vec<Arc<Room>>>,
    metrics: Metrics,
}

// === impl Registry ===

impl Registry {
    pub(crate) fn new(metrics: Metrics) -> Self {
        Self {
            rooms: DashMap::new(),
            held: Mutex::new(Vec::new()),
            metrics,
        }
    }

    pub(crate) fn rooms(&self) -> Vec<Arc<Room>> {
        self.rooms.iter().map(|r| Arc::clone(r.value())).collect()
    }

    pub(crate) fn get(&self, code: &JoinCode) -> Option<Arc<Room>> {
        self.rooms.get(code).map(|r| Arc::clone(r.value()))
    }

    /// Adds a member to the quiz's room, creating the room (and subscribing this
    /// node to the quiz) if needed. `None` if the quiz does not exist. Once this
    /// returns, every event published afterwards reaches the member's queue.
    pub(crate) async fn attach(
        &self,
        code: &JoinCode,
        id: ConnId,
        member: Member,
        backplane: &dyn Backplane,
    ) -> Result<Option<Arc<Room>>, BackplaneError> {
        let mut member = Some(member);
        // Bounded: a retry happens only when the ticker removed the room in between.
        for _ in 0..8 {
            let room = match self.get(code) {
                Some(room) => {
                    self.metrics
                        .definition_reads
                        .with_label_values(&["cached"])
                        .inc();
                    room
                }
                None => {
                    self.metrics
                        .definition_reads
                        .with_label_values(&["fetched"])
                        .inc();
                    let Some(def) = backplane.definition(code).await? else {
                        return Ok(None);
                    };
                    let room = Arc::clone(
                        self.rooms
                            .entry(code.clone())
                            .or_insert_with(|| Arc::new(Room::new(code.clone(), def)))
                            .value(),
                    );
                    self.metrics.rooms.set(self.rooms.len() as i64);
                    room
                }
            };
            if room.retiring.load(Ordering::Acquire) {
                self.wait_retired(&room).await;
                continue;
            }
            room.subscribed
                .get_or_try_init(|| backplane.subscribe(code))
                .await?;
            // Insert under the map's guard: `remove_if_idle` marks a room
            // retiring under the write guard, so it either sees this member or
            // this sees the mark.
            let Some(current) = self.rooms.get(code) else {
                continue;
            };
            if !Arc::ptr_eq(current.value(), &room) || room.retiring.load(Ordering::Acquire) {
                continue;
            }
            room.write()
                .insert(id, member.take().expect("taken only on success"));
            *lock(&room.empty_since) = None;
            return Ok(Some(room));
        }
        Err(BackplaneError::Unavailable(
            "room churned while attaching".into(),
        ))
    }

    /// Returns once a retiring room is out of the map (its unsubscribe is
    /// bounded by the backplane's command timeout).
    async fn wait_retired(&self, room: &Arc<Room>) {
        let retired = room.retired.notified();
        tokio::pin!(retired);
        retired.as_mut().enable();
        if self
            .rooms
            .get(&room.code)
            .is_some_and(|r| Arc::ptr_eq(r.value(), room))
        {
            retired.await;
        }
    }

    pub(crate) fn detach(&self, room: &Room, id: ConnId) {
        let mut members = room.write();
        members.remove(&id);
        if members.is_empty() {
            *lock(&room.empty_since) = Some(Instant::now());
        }
    }

    /// Removes a room that has been empty for `linger` (or is empty and its
    /// quiz gone) and unsubscribes from its quiz. Lingering absorbs reconnect
    /// churn.
    pub(crate) async fn remove_if_idle(
        &self,
        room: &Arc<Room>,
        linger: std::time::Duration,
        backplane: &dyn Backplane,
    ) {
        // A gone quiz's room goes as soon as it is empty; emptiness itself is
        // checked under the map's guard below.
        let idle = room.gone.load(Ordering::Relaxed)
            || lock(&room.empty_since).is_some_and(|t| t.elapsed() >= linger);
        if !idle {
            return;
        }
        let retiring = match self.rooms.get_mut(&room.code) {
            Some(r) if Arc::ptr_eq(r.value(), room) && r.len() == 0 => {
                r.retiring.store(true, Ordering::Release);
                true
            }
            _ => false,
        };
        if !retiring {
            return;
        }
        if room.subscribed.initialized()
            && let Err(e) = backplane.unsubscribe(&room.code).await
        {
            tracing::warn!(quiz = %room.code, error = %e, "unsubscribe failed");
        }
        self.rooms
            .remove_if(&room.code, |_, r| Arc::ptr_eq(r, room));
        room.retired.notify_waiters();
        self.metrics.rooms.set(self.rooms.len() as i64);
    }

    /// Closes the members of a room whose quiz no longer exists with 4004;
    /// the ticker then removes the room.
    pub(crate) fn remove_gone(&self, code: &JoinCode) {
        if let Some(room) = self.get(code) {
            room.gone.store(true, Ordering::Relaxed);
            room.evict_all(Evicted::QuizGone);
        }
    }
}

impl EventSink for Registry {
    fn deliver(&self, quiz: &JoinCode, event: Arc<Sequenced>) {
        let Some(room) = self.get(quiz) else { return };
        let mut batch = lock(&room.batch);
        if batch.is_empty() {
            lock(&self.held).push(Arc::clone(&room));
        }
        batch.push(event);
    }

    fn seat_claimed(&self, quiz: &JoinCode, player: PlayerId, claim: u64) {
        if let Some(room) = self.get(quiz) {
            room.claim_seen(player, claim);
        }
    }

    fn flush(&self) {
        let rooms = std::mem::take(&mut *lock(&self.held));
        for room in rooms {
            let mut batch = lock(&room.batch);
            let events = std::mem::take(&mut *batch);
            if !events.is_empty() {
                self.fan_out(&room, &events);
            }
        }
    }
}

/// The span of one fan-out of traced events (none when no event is traced,
/// which is every event when tracing is off): a child of the span that
/// published the first of them, on whichever node, linked to each.
fn fan_out_span(room: &Room, events: &[Arc<Sequenced>]) -> tracing::Span {
    let mut traces = events.iter().filter_map(|e| e.trace.as_deref());
    let Some(parent) = traces.next() else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!(
        "fan_out",
        quiz = %room.code,
        events = events.len(),
        first_seq = events.first().map_or(0, |e| e.seq),
        members = tracing::field::Empty,
        written = tracing::field::Empty,
        queued_or_slow = tracing::field::Empty,
        encode_us = tracing::field::Empty,
        write_us = tracing::field::Empty,
    );
    quizgate_telemetry::set_remote_parent(&span, parent);
    quizgate_telemetry::add_remote_link(&span, parent);
    for other in traces {
        quizgate_telemetry::add_remote_link(&span, other);
    }
    span
}

impl Registry {
    /// Sends a room's events, in order, to every member: all of them in one
    /// write, straight into its socket when it can take them now (see
    /// [`Wire::offer_events`]), else through its queue.
    fn fan_out(&self, room: &Room, events: &[Arc<Sequenced>]) {
        let started = Instant::now();
        let span = fan_out_span(room, events);
        let shared: Vec<Arc<SharedEvent>> = events
            .iter()
            .map(|event| {
                self.metrics.events.inc();
                room.observe(event);
                Arc::new(SharedEvent::new(crate::view::event_frame(
                    &room.definition,
                    event,
                )))
            })
            .collect();
        let (Some(first), Some(last)) = (shared.first(), shared.last()) else {
            return;
        };
        let (first, last) = (first.seq, last.seq);
        let encoded = started.elapsed();
        // The events' frames back to back, built once per encoding on first use.
        let mut frames: [Option<bytes::Bytes>; 2] = [None, None];
        let mut slow = Vec::new();
        let mut direct = 0;
        for (id, m) in room.read().iter() {
            let joined = frames[usize::from(m.encoding.is_binary())].get_or_insert_with(|| {
                shared
                    .iter()
                    .flat_map(|ev| ev.framed(m.encoding).iter().copied())
                    .collect::<Vec<u8>>()
                    .into()
            });
            match m.wire.offer_events(first, last, shared.len(), joined) {
                Offer::Done => direct += shared.len() as u64,
                Offer::Queue => {
                    for ev in &shared {
                        if let Err(TrySendError::Full(_)) =
                            m.tx.try_send(Outbound::Event(Arc::clone(ev)))
                        {
                            slow.push(*id);
                            break;
                        }
                    }
                }
                Offer::Slow => slow.push(*id),
            }
        }
        self.metrics.frames_out.inc_by(direct);
        if !span.is_disabled() {
            let members = room.read().len() as u64;
            let written = direct / shared.len() as u64;
            span.record("members", members);
            span.record("written", written);
            span.record("queued_or_slow", members.saturating_sub(written));
            span.record("encode_us", encoded.as_micros() as u64);
            span.record("write_us", (started.elapsed() - encoded).as_micros() as u64);
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for event in events {
            let delay_ms = now_ms.saturating_sub(event.ts_ms);
            self.metrics
                .event_delivery_seconds
                .observe(delay_ms as f64 / 1000.0);
        }
        // A removed player got the event like everyone; now its connection goes.
        for event in events {
            if let Event::PlayerRemoved { player_id } = event.event {
                room.evict_player(player_id, Evicted::Removed);
            }
        }
        // A member that cannot take a sequenced event would miss it: it must
        // reconnect and resume from the log instead.
        for id in slow {
            room.evict(id, Evicted::QueueFull);
        }
        self.metrics
            .fanout_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use quizgate_backplane::{CreateLimits, MemoryBackplane, MemoryConfig, SystemClock};
    use quizgate_domain::{HostCommand, Question};

    /// The text of the next queued frame, which must be a direct text frame
    /// (FIN + text opcode, unmasked, a 7- or 16-bit length).
    fn next_direct(rx: &mut mpsc::Receiver<Outbound>) -> String {
        match rx.try_recv() {
            Ok(Outbound::Direct(frame)) => {
                assert_eq!(frame[0], 0x81, "a final text frame");
                let payload = if frame[1] == 126 {
                    &frame[4..]
                } else {
                    &frame[2..]
                };
                String::from_utf8(payload.to_vec()).expect("utf-8")
            }
            other => panic!("expected a direct frame, got {other:?}"),
        }
    }

    /// A member's wire on a real loopback socket. It never goes live here, so
    /// every event and frame takes its queue.
    async fn wire() -> Arc<Wire> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        drop(client);
        Wire::new(
            accepted.expect("accept").0,
            prometheus::IntCounter::new("b", "b").expect("valid"),
        )
    }

    use super::*;

    fn def() -> QuizDefinition {
        QuizDefinition {
            title: String::new(),
            questions: vec![Question {
                text: "q".into(),
                choices: vec!["a".into(), "b".into()],
                correct: 0,
                time_limit_ms: 60_000,
                points: 10,
            }],
        }
    }

    /// A registry, the embedded backplane delivering to it, and one quiz.
    async fn world() -> (Arc<Registry>, MemoryBackplane, JoinCode) {
        let registry = Arc::new(Registry::new(Metrics::new()));
        let bp = MemoryBackplane::new(
            registry.clone(),
            Arc::new(SystemClock),
            MemoryConfig::default(),
        );
        let code = bp
            .create_quiz(def(), &CreateLimits::unlimited())
            .await
            .expect("create")
            .created()
            .expect("no quota")
            .code;
        (registry, bp, code)
    }

    /// Attaches member `id` with this queue and eviction flag; the quiz exists.
    async fn attach(
        registry: &Registry,
        bp: &MemoryBackplane,
        code: &JoinCode,
        id: ConnId,
        tx: mpsc::Sender<Outbound>,
        encoding: Encoding,
        evicted: Arc<Eviction>,
    ) -> Arc<Room> {
        registry
            .attach(
                code,
                id,
                Member::new(tx, wire().await, encoding, evicted),
                bp,
            )
            .await
            .expect("attach")
            .expect("the quiz exists")
    }

    #[tokio::test]
    async fn a_full_queue_evicts_the_member_and_spares_the_others() {
        let (registry, bp, code) = world().await;
        let (slow_tx, mut slow_rx) = mpsc::channel(1);
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let slow_flag = Arc::new(Eviction::default());
        attach(
            &registry,
            &bp,
            &code,
            1,
            slow_tx,
            Encoding::Json,
            slow_flag.clone(),
        )
        .await;
        attach(
            &registry,
            &bp,
            &code,
            2,
            fast_tx,
            Encoding::MsgPack,
            Arc::default(),
        )
        .await;
        bp.command(&code, HostCommand::Start).await.expect("start"); // seq 1
        bp.command(&code, HostCommand::Skip).await.expect("skip"); // seq 2, 3
        // Delivery runs on the backplane's own task: wait for it.
        for _ in 0..1_000 {
            if slow_flag.get() == Some(Evicted::QueueFull) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(slow_flag.get(), Some(Evicted::QueueFull));
        assert!(matches!(slow_rx.recv().await, Some(Outbound::Event(e)) if e.seq == 1));
        assert!(
            slow_rx.recv().await.is_none(),
            "queue closed after eviction"
        );
        let mut seqs = Vec::new();
        while let Ok(Outbound::Event(e)) = fast_rx.try_recv() {
            assert_eq!(e.framed(Encoding::MsgPack)[0], 0x82, "a final binary frame");
            seqs.push(e.seq);
        }
        assert_eq!(seqs, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_seat_claim_closes_the_connections_whose_claims_came_before_it() {
        let (registry, bp, code) = world().await;
        let (tx1, _rx1) = mpsc::channel(8);
        let (tx2, _rx2) = mpsc::channel(8);
        let (joined, resumed) = (Arc::<Eviction>::default(), Arc::<Eviction>::default());
        let room = attach(
            &registry,
            &bp,
            &code,
            1,
            tx1,
            Encoding::Json,
            joined.clone(),
        )
        .await;
        attach(
            &registry,
            &bp,
            &code,
            2,
            tx2,
            Encoding::Json,
            resumed.clone(),
        )
        .await;
        // Player 5 joined here; player 6 resumed here with claim 40, which is
        // still on its way round the channel.
        room.set_seat(1, Seat::Player(5), None);
        room.set_seat(2, Seat::Player(6), Some(40));
        // A claim from another node that was sent before ours: ours is newer.
        registry.seat_claimed(&code, 6, 41);
        assert_eq!(
            resumed.get(),
            None,
            "our claim is still to come: we are newer"
        );
        registry.seat_claimed(&code, 6, 40);
        registry.seat_claimed(&code, 6, 42);
        assert_eq!(resumed.get(), Some(Evicted::Replaced), "a claim after ours");
        registry.seat_claimed(&code, 7, 43);
        assert_eq!(joined.get(), None, "another player's claim");
        registry.seat_claimed(&code, 5, 44);
        assert_eq!(
            joined.get(),
            Some(Evicted::Replaced),
            "a join has no claim: any is newer"
        );
    }

    #[tokio::test]
    async fn standings_go_only_to_players_whose_standing_changed() {
        let (registry, bp, code) = world().await;
        let (tx, mut rx) = mpsc::channel(8);
        let room = attach(&registry, &bp, &code, 1, tx, Encoding::Json, Arc::default()).await;
        room.set_seat(1, Seat::Player(2), None);
        room.send_standings(&[(1, 50), (2, 50), (3, 10)], false);
        assert_eq!(
            next_direct(&mut rx),
            r#"{"t":"standing","score":50,"rank":1,"players":3}"#
        );
        room.send_standings(&[(1, 60), (2, 50), (3, 10)], false);
        assert_eq!(
            next_direct(&mut rx),
            r#"{"t":"standing","score":50,"rank":2,"players":3}"#
        );
        room.send_standings(&[(1, 70), (2, 50), (3, 10)], false);
        assert!(rx.try_recv().is_err(), "unchanged standing is not resent");
        room.send_standings(&[(1, 70), (2, 50), (3, 10)], true);
        assert_eq!(
            next_direct(&mut rx),
            r#"{"t":"standing","score":50,"rank":2,"players":3}"#,
            "the final standing goes out changed or not"
        );
    }

    #[tokio::test]
    async fn an_idle_room_retires_and_the_next_member_gets_a_fresh_subscribed_one() {
        let (registry, bp, code) = world().await;
        let (tx, _rx) = mpsc::channel(8);
        let first = attach(&registry, &bp, &code, 1, tx, Encoding::Json, Arc::default()).await;
        let linger = std::time::Duration::ZERO;
        registry.remove_if_idle(&first, linger, &bp).await;
        assert!(registry.get(&code).is_some(), "a room with a member stays");

        registry.detach(&first, 1);
        registry.remove_if_idle(&first, linger, &bp).await;
        assert!(registry.get(&code).is_none(), "an idle room retires");

        let (tx, mut rx) = mpsc::channel(8);
        let gone = Arc::new(Eviction::default());
        let second = attach(&registry, &bp, &code, 2, tx, Encoding::Json, gone.clone()).await;
        assert!(!Arc::ptr_eq(&first, &second), "a fresh room");
        bp.command(&code, HostCommand::Start).await.expect("start");
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("the fresh room is subscribed");
        assert!(matches!(event, Some(Outbound::Event(e)) if e.seq == 1));

        // A gone quiz closes its members with 4004 and its room goes at once.
        registry.remove_gone(&code);
        assert_eq!(gone.get(), Some(Evicted::QuizGone));
        registry
            .remove_if_idle(&second, std::time::Duration::from_secs(3600), &bp)
            .await;
        assert!(registry.get(&code).is_none());
    }
}
