"""The daemon's trio program: sockets in, io engine across, completions out.

One trio task reads each ROUTER socket (ipc for native clients, tcp on loopback for Wine),
one waits on the io engine's eventfd and sends one COMPLETIONS message per client per
wakeup, one watches connection events to release vanished clients, and one pings the systemd
watchdog. Requests never become Python objects here: BATCH bodies go to native code whole.
"""

from __future__ import annotations

import errno
import hmac
import itertools
import logging
import os
import resource
import signal
import socket
import stat
import time
from typing import Any

import msgpack
import trio
import zmq
from zmq.utils.monitor import parse_monitor_message

import dsd
from dsd import _native, _paths
from dsd.protocol import (
    BARRIER_OPS,
    COMPLETION_RECORD_SIZE,
    PROTOCOL_VERSION,
    RECORD_LAYOUT_VERSION,
    REQUEST_RECORD,
    REQUEST_RECORD_SIZE,
    Batch,
    Bye,
    Cancel,
    CloseFile,
    CloseQueue,
    CompletionRecord,
    Compression,
    CompressionInfo,
    CreateQueue,
    DecodeToGpu,
    Error,
    ErrorRecord,
    FileOpened,
    Hello,
    MemoryRegistered,
    Ok,
    Op,
    OpenFile,
    Ping,
    Pong,
    Priority,
    Probe,
    QueryCompression,
    QueryQueue,
    QueueCreated,
    QueueInfo,
    Reason,
    HANDOFF_SOCKET_FILE,
    HANDOFF_VERSION,
    Message,
    RegisterMemory,
    ReleaseGpuBuffer,
    RemoteProtocolError,
    RequestRecord,
    RetrieveErrorRecord,
    SourceType,
    State,
    StatsReply,
    StatsRequest,
    Status,
    Submit,
    UnregisterMemory,
    Welcome,
    iter_completions,
)
from dsd.protocol._hresult import HRESULT, hresult_from_errno

from . import _failures
from ._config import Config
from ._gpu_export import ExportRefused, Exports, Job
from ._gpu_route import GpuRoute
from ._queues import CHUNK_RECORDS, MAX_CAPACITY, Chunk, Epoch, Queue, QueueError, Scheduler, completion
from ._session import FileInfo, RegionInfo, Session
from dsd._trio_zmq import TrioSocket
from .systemd import Notifier

log = logging.getLogger("dsd.daemon")

SHM_DIR = "/dev/shm"
MAX_MESSAGE_BYTES = 256 << 20      # a BATCH of 1 Mi records plus names fits well under this
SEND_HWM = 1_000_000               # completions are bounded by the client's own requests in flight
# After a disconnect event, probe the matching client at these delays: libzmq may still be
# tearing the connection down when the event arrives.
PROBE_DELAYS = (0.0, 0.1, 1.0)
_STATUS_OFFSET = 24  # of the status byte inside a completion record (docs/protocol.md 3.2)


class Daemon:
    def __init__(self, config: Config, *, notifier: Notifier | None = None) -> None:
        config.validate()
        self.config = config
        self.notifier = notifier or Notifier()
        self.ctx = zmq.Context()
        self.engine: Any = None
        self.sessions: dict[tuple[int, bytes], Session] = {}   # (socket index, identity) -> session
        self.by_key: dict[int, Session] = {}
        self.sockets: list[TrioSocket] = []
        self.trusted: list[bool] = []
        self.endpoints: dict[str, str] = {}
        self.token: str | None = None
        self.started = time.monotonic()
        self.counters = {"messages": 0, "batches": 0, "requests": 0, "completions": 0, "failures": 0,
                         "protocol_errors": 0, "clients_total": 0, "clients_dropped": 0}
        self._keys = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self.epochs: dict[int, Epoch] = {}   # io engine key -> the queue epoch it belongs to
        self._pending: dict[int, Session] = {}  # sessions with completions to send at the next flush
        self.scheduler = Scheduler(self._submit_chunk, window=config.sched_window)
        self.gpu = GpuRoute(staging_bytes=config.gpu_staging_bytes)
        self.exports = Exports(self.gpu, limit_bytes=config.gpu_export_bytes)

    # -- lifecycle --------------------------------------------------------------------------

    def bind(self) -> None:
        """Create the runtime directory, token and sockets. READY is sent only after this."""
        rundir = _paths.ensure_private_dir(self.config.runtime_dir)
        _raise_fd_limit()  # every open file costs the engine up to two fds (buffered + O_DIRECT)
        self.gpu.open_now()
        # Clients wait for whole batches: one reaper wake-up per burst (ioengine.COALESCE_MODES).
        self.engine = _native.IoEngine(**self.config.io_settings().engine_kwargs(coalesce_auto="bursts"))
        log.info("io engine: %s (%s)", self.engine.backend, self.engine.backend_reason)
        ipc = self.config.resolved_ipc()
        if ipc is not None:
            path = ipc[len("ipc://"):]
            _remove_stale_socket(path)
            self._bind(ipc, trusted=True)
            os.chmod(path, 0o600)
            # fds cannot travel over zmq: GPU buffers go out on a Unix socket beside it
            self.exports.bind(str(rundir / HANDOFF_SOCKET_FILE))
            self.endpoints["handoff"] = self.exports.path
        tcp = self.config.resolved_tcp()
        if tcp is not None:
            self.token = _paths.load_or_create_token(_paths.token_path(rundir))
            self._bind(tcp, trusted=False)
        _paths.write_state(rundir, {"pid": os.getpid(), "version": dsd.__version__, "protocol": PROTOCOL_VERSION,
                                    **self.endpoints})

    def _bind(self, endpoint: str, *, trusted: bool) -> None:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        sock.bind(endpoint)
        actual = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.endpoints["tcp" if endpoint.startswith("tcp://") else "ipc"] = actual
        self.sockets.append(TrioSocket(sock))
        self.trusted.append(trusted)
        log.info("listening on %s%s", actual, "" if trusted else " (token required)")

    def close(self) -> None:
        for session in list(self.by_key.values()):
            self._drop(session, "daemon shutting down")
        for tsock in self.sockets:
            tsock.sock.close(linger=0)
        self.sockets.clear()
        if self.engine is not None:
            self.engine.close()
        self.exports.close()   # its buffers belong to the decoder's device: before the route closes it
        self.gpu.close()
        self.ctx.term()
        ipc = self.endpoints.get("ipc")
        if ipc:
            try:
                os.unlink(ipc[len("ipc://"):])
            except FileNotFoundError:
                pass
        try:
            os.unlink(self.config.runtime_dir / _paths.STATE_FILE)
        except FileNotFoundError:
            pass
        self.notifier.close()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled or SIGTERM/SIGINT."""
        self.bind()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for index, tsock in enumerate(self.sockets):
                    nursery.start_soon(self._serve_socket, index, tsock)
                    nursery.start_soon(self._watch_connections, index, tsock)
                nursery.start_soon(self._deliver_completions)
                if self.exports.path is not None:
                    nursery.start_soon(self.exports.serve)
                await nursery.start(self._signals, nursery.cancel_scope)  # handlers in place before READY
                if self.notifier.watchdog_usec:
                    nursery.start_soon(self._watchdog)
                self.notifier.ready(f"serving on {', '.join(self.endpoints.values())}")
                log.info("ready (pid %d)", os.getpid())
                task_status.started(self.endpoints)
        finally:
            self.notifier.stopping()
            self.close()
            log.info("stopped")

    async def _signals(self, scope: trio.CancelScope, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.notifier.reloading()
                    log.info("SIGHUP: nothing to reload; settings come from the environment at start")
                    self.notifier.ready()
                    continue
                log.info("%s: shutting down", signal.Signals(signum).name)
                self.notifier.stopping()
                scope.cancel()
                return

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog_usec / 2e6
        while True:
            self.notifier.watchdog()  # sent from the event loop itself, so a stuck loop stops the pings
            await trio.sleep(interval)

    # -- incoming messages -------------------------------------------------------------------

    async def _serve_socket(self, index: int, tsock: TrioSocket) -> None:
        while True:
            await tsock.wait_readable()
            while True:
                frames = tsock.recv_nowait()
                if frames is None:
                    break
                self.counters["messages"] += 1
                self._on_message(index, tsock, frames)
                await trio.lowlevel.checkpoint_if_cancelled()
            self._flush()

    def _on_message(self, index: int, tsock: TrioSocket, frames: list[zmq.Frame]) -> None:
        identity = frames[0].bytes
        session = self.sessions.get((index, identity))
        if session is None:
            srcfd = frames[1].get(zmq.SRCFD) if len(frames) > 1 else -1
            session = Session(key=next(self._keys), identity=identity, socket=tsock, trusted=self.trusted[index],
                              srcfd=srcfd)
            session.on_pending = self._note_pending
        try:
            msg = session.conn.receive(frames[1:])
        except RemoteProtocolError as exc:
            self.counters["protocol_errors"] += 1
            log.warning("%s sent an invalid message: %s", session.describe(), exc)
            self._reply_error(session, _peek_seq(frames), "BAD_MESSAGE", str(exc), errno.EPROTO)
            return
        if isinstance(msg, Hello):
            self._on_hello(index, session, msg)
            return
        handler = self._handlers.get(type(msg))
        if handler is None:  # a valid message the daemon never expects from a client (e.g. PING reply)
            self._reply_error(session, getattr(msg, "seq", None), "UNEXPECTED", f"{msg.TYPE} is not a request")
            return
        try:
            handler(self, session, msg)
        except zmq.ZMQError as exc:
            self._on_send_error(session, exc)
        except (OSError, ValueError, MemoryError, KeyError) as exc:
            # A bug or resource failure in one client's request must not take the daemon down.
            log.exception("%s: %s failed", session.describe(), msg.TYPE)
            self._reply_error(session, getattr(msg, "seq", None), "INTERNAL",
                              f"{msg.TYPE} failed inside the daemon: {exc}", getattr(exc, "errno", None) or 0)

    def _reply_error(self, session: Session, seq: int | None, code: str, message: str, err: int = 0,
                     hresult: int | None = None) -> None:
        if hresult is None:
            hresult = hresult_from_errno(err) if err else HRESULT.E_FAIL
        frames = Error(seq=seq, code=code, message=message, errno=err, hresult=int(hresult)).to_frames()
        try:
            session.socket.send([session.identity, *frames])
        except zmq.ZMQError as exc:
            self._on_send_error(session, exc)

    def _on_hello(self, index: int, session: Session, msg: Hello) -> None:
        def refuse(code: str, message: str, err: int) -> None:
            log.warning("refused %s: %s", session.describe(), message)
            self._reply_error(session, msg.seq, code, message, err)
            session.conn.state = State.CLOSED
            self.sessions.pop((index, session.identity), None)
            self.by_key.pop(session.key, None)
            session.close(None)

        session.client_name, session.pid = msg.client[:128], msg.pid
        if msg.version != PROTOCOL_VERSION:
            return refuse("VERSION_MISMATCH", f"client speaks protocol version {msg.version}, this daemon speaks "
                          f"{PROTOCOL_VERSION}", errno.EPROTONOSUPPORT)
        if not session.trusted:
            if not msg.token or not self.token or not hmac.compare_digest(msg.token.encode(), self.token.encode()):
                what = "no token" if not msg.token else "a wrong token"
                return refuse("AUTH_FAILED", f"TCP clients must present the per-user token from "
                              f"{_paths.token_path(self.config.runtime_dir)}; this one sent {what}", errno.EACCES)
        self.sessions[(index, session.identity)] = session
        self.by_key[session.key] = session
        session.queues[0] = Queue(0, session, capacity=MAX_CAPACITY, priority=Priority.NORMAL,
                                  source_type=SourceType.FILE, name="default", default=True)
        session.queues[0].chunk_records = self._chunk_records()
        self.counters["clients_total"] += 1
        log.info("%s connected over %s", session.describe(), "ipc" if session.trusted else "tcp")
        try:
            session.send(Welcome(seq=msg.seq, version=PROTOCOL_VERSION, server=f"dsd {dsd.__version__}",
                                 session=session.key, features=self._features()))
        except zmq.ZMQError as exc:
            self._on_send_error(session, exc)

    def _features(self) -> dict[str, Any]:
        return {"io_backend": self.engine.backend, "record_layout": RECORD_LAYOUT_VERSION,
                "request_record_size": REQUEST_RECORD_SIZE, "completion_record_size": COMPLETION_RECORD_SIZE,
                "compression": ["NONE", "GDEFLATE", "ZSTD"], "shm_dir": SHM_DIR,
                "staging_bytes": self.engine.stats().get("staging_bytes", 0),
                "gpu_handoff": HANDOFF_VERSION if self.exports.path is not None else 0}

    def _on_open_file(self, session: Session, msg: OpenFile) -> None:
        flags = os.O_CLOEXEC | (os.O_RDWR if msg.write else os.O_RDONLY)
        if msg.create:
            if not msg.write:
                return self._reply_error(session, msg.seq, "BAD_REQUEST", "create=True needs write=True", errno.EINVAL)
            flags |= os.O_CREAT
        path = os.path.abspath(msg.path) if msg.path else ""
        if not path or "\0" in path:
            return self._reply_error(session, msg.seq, "OPEN_FAILED", f"invalid path {msg.path!r}", errno.EINVAL)
        try:
            # O_NONBLOCK keeps a FIFO from hanging the loop; regular files ignore it.
            fd = os.open(path, flags | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            return self._reply_error(session, msg.seq, "OPEN_FAILED", f"cannot open {path}: {exc.strerror}", exc.errno)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                return self._reply_error(session, msg.seq, "OPEN_FAILED", f"cannot open {path}: Is a directory",
                                         errno.EISDIR)
            if not stat.S_ISREG(st.st_mode) and not stat.S_ISBLK(st.st_mode):
                return self._reply_error(session, msg.seq, "OPEN_FAILED",
                                         f"cannot open {path}: not a regular file or block device", errno.EINVAL)
            size = st.st_size if stat.S_ISREG(st.st_mode) else _block_device_size(fd)
            file_id = session.new_id()
            session.registry.add_file(file_id, fd, writable=msg.write)
        finally:
            os.close(fd)
        session.files[file_id] = FileInfo(path, size, msg.write)
        session.send(FileOpened(seq=msg.seq, file_id=file_id, size=size))

    def _on_close_file(self, session: Session, msg: CloseFile) -> None:
        if session.files.pop(msg.file_id, None) is None:
            return self._reply_error(session, msg.seq, "UNKNOWN_FILE", f"file id {msg.file_id} is not open",
                                     errno.EBADF, HRESULT.E_DSTORAGE_FILE_NOT_OPEN)
        session.registry.remove_file(msg.file_id)
        session.send(Ok(seq=msg.seq))

    def _on_register_memory(self, session: Session, msg: RegisterMemory) -> None:
        name = msg.name.lstrip("/")
        if not name or "/" in name or name in (".", "..") or "\0" in name or len(name) > 255:
            return self._reply_error(session, msg.seq, "REGISTER_FAILED",
                                     f"{msg.name!r} is not a shared-memory name (one path component under {SHM_DIR})",
                                     errno.EINVAL)
        if msg.size <= 0:
            return self._reply_error(session, msg.seq, "REGISTER_FAILED", f"region size must be > 0, got {msg.size}",
                                     errno.EINVAL)
        path = os.path.join(SHM_DIR, name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            return self._reply_error(session, msg.seq, "REGISTER_FAILED", f"cannot open {path}: {exc.strerror}",
                                     exc.errno)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return self._reply_error(session, msg.seq, "REGISTER_FAILED", f"{path} is not a regular file",
                                         errno.EINVAL)
            if st.st_size < msg.size:
                return self._reply_error(session, msg.seq, "REGISTER_FAILED",
                                         f"{path} has {st.st_size} bytes, fewer than the {msg.size} registered",
                                         errno.EINVAL)
            region_id = session.new_id()
            try:
                session.registry.add_region(region_id, fd, msg.size)
            except OSError as exc:
                return self._reply_error(session, msg.seq, "REGISTER_FAILED", f"cannot map {path}: {exc.strerror}",
                                         exc.errno)
        finally:
            os.close(fd)
        session.regions[region_id] = RegionInfo(name, msg.size)
        session.send(MemoryRegistered(seq=msg.seq, region_id=region_id))

    def _on_unregister_memory(self, session: Session, msg: UnregisterMemory) -> None:
        if session.regions.pop(msg.region_id, None) is None:
            return self._reply_error(session, msg.seq, "UNKNOWN_REGION", f"region {msg.region_id} is not registered",
                                     errno.EINVAL)
        session.registry.remove_region(msg.region_id)
        session.send(Ok(seq=msg.seq))

    # -- queues -------------------------------------------------------------------------------

    def _queue(self, session: Session, qid: int, seq: int) -> Queue | None:
        queue = session.queues.get(qid)
        if queue is None:
            self._reply_error(session, seq, "UNKNOWN_QUEUE", f"queue {qid} does not exist (or was closed)",
                              errno.EINVAL, HRESULT.E_DSTORAGE_QUEUE_CLOSED)
        return queue

    def _on_create_queue(self, session: Session, msg: CreateQueue) -> None:
        try:
            queue = Queue.create(session.new_id(), session, capacity=msg.capacity, priority=msg.priority,
                                 source_type=msg.source_type, name=msg.name, ordered=msg.ordered)
        except QueueError as exc:
            return self._reply_error(session, msg.seq, exc.code, exc.message, errno.EINVAL, exc.hresult)
        queue.chunk_records = self._chunk_records()
        session.queues[queue.id] = queue
        session.send(QueueCreated(seq=msg.seq, queue=queue.id))

    def _on_close_queue(self, session: Session, msg: CloseQueue) -> None:
        queue = self._queue(session, msg.queue, msg.seq)
        if queue is None:
            return
        if queue.default:
            return self._reply_error(session, msg.seq, "BAD_REQUEST", "the default queue 0 cannot be closed",
                                     errno.EINVAL)
        queue.closed = True
        self.scheduler.withdraw(lambda chunk: chunk.epoch.queue is queue)
        self.gpu.forget(lambda job: job.queue is queue)
        for key in queue.keys():
            self.engine.drop_client(key)   # nothing of this queue is ever reported again
            self.scheduler.forget(self.epochs.pop(key, queue.epochs[key]))
        del session.queues[queue.id]
        session.send(Ok(seq=msg.seq))

    def _on_query_queue(self, session: Session, msg: QueryQueue) -> None:
        queue = self._queue(session, msg.queue, msg.seq)
        if queue is not None:
            session.send(QueueInfo(seq=msg.seq, queue=queue.id, capacity=queue.capacity, priority=queue.priority,
                                   source_type=queue.source_type, name=queue.name, unsubmitted=queue.held_count,
                                   in_flight=queue.in_flight, empty_slots=queue.empty_slots(),
                                   until_auto_submit=queue.until_auto_submit()))

    def _on_retrieve_error_record(self, session: Session, msg: RetrieveErrorRecord) -> None:
        queue = self._queue(session, msg.queue, msg.seq)
        if queue is not None:
            count, first = queue.take_error_record()
            session.send(ErrorRecord(seq=msg.seq, failure_count=count, first_failure=first))

    def _on_query_compression(self, session: Session, msg: QueryCompression) -> None:
        flags, detail = compression_support(msg.format, self.engine, self.gpu)
        session.send(CompressionInfo(seq=msg.seq, format=msg.format, flags=flags, detail=detail))

    def _on_batch(self, session: Session, msg: Batch) -> None:
        queue = self._queue(session, msg.queue, msg.seq)
        if queue is None:
            return
        records = _buffer(msg.bodies[0])
        names = _buffer(msg.bodies[1]) if len(msg.bodies) > 1 else None
        try:
            queue.check_room(msg.count)
        except QueueError as exc:
            return self._reply_error(session, msg.seq, exc.code, exc.message, errno.ENOBUFS, exc.hresult)
        self.counters["batches"] += 1
        if msg.count == 0:
            return
        if queue.hold(records, names, msg.count) or msg.submit:  # half full: DirectStorage's auto-submit
            self._submit(queue)

    def _on_submit(self, session: Session, msg: Submit) -> None:
        queue = self._queue(session, msg.queue, msg.seq)
        if queue is not None:
            self._submit(queue)

    def _submit(self, queue: Queue) -> None:
        for records, names, count in queue.take_held():
            self.counters["requests"] += count
            chunks, gpu_epochs = queue.split(
                records, names, count, lambda rec, reason, hresult, err: self._reject(queue, rec, reason, hresult, err),
                self._gpu_take if self.gpu.mode != "cpu" else None)
            for chunk in chunks:
                self.epochs[chunk.epoch.key] = chunk.epoch
            self.scheduler.push(queue.priority, chunks)
            for epoch in gpu_epochs:  # compressed bytes into GPU staging first, as plain reads
                self.epochs[epoch.key] = epoch
                self.gpu.ensure_mapped(queue.session)
                self.engine.submit(queue.session.registry, epoch.key, self.gpu.staging_reads(epoch.gpu_job))
        self._advance(queue)
        self.scheduler.pump()

    def _chunk_records(self) -> int:
        """Chunks small enough that a few fit in the window, so priorities interleave."""
        return max(1, min(CHUNK_RECORDS, self.scheduler.window // 4))

    def _gpu_take(self, queue: Queue, view: memoryview, count: int):
        return self.gpu.take(queue, view, count, self._nursery)

    def _gpu_done(self, job: Any, records: bytes, errors: list[dict[str, Any]]) -> None:
        queue = job.queue
        if queue.closed or self.by_key.get(queue.session.key) is not queue.session:
            return
        self.epochs.pop(job.epoch.key, None)
        self.counters["completions"] += len(records) // COMPLETION_RECORD_SIZE
        self.counters["failures"] += len(errors)
        queue.on_completed(job.epoch, len(records) // COMPLETION_RECORD_SIZE, errors)
        queue.deliver(records, errors)
        self._advance(queue)
        self.scheduler.pump()
        self._flush()

    def _submit_chunk(self, chunk: Chunk) -> None:
        self.engine.submit(chunk.epoch.queue.session.registry, chunk.epoch.key, chunk.records, chunk.names)

    def _reject(self, queue: Queue, rec: RequestRecord, reason: Reason, hresult: int, err: int) -> dict[str, Any]:
        session = queue.session
        done = CompletionRecord(rec.request_id, 0, int(hresult), err, Status.FAILED, reason)
        failure = _failures.error_record(done, rec, session.files, session.regions)
        queue.deliver(completion(rec.request_id, Status.FAILED, hresult, err, reason), [failure])
        self.counters["failures"] += 1
        return failure

    def _advance(self, queue: Queue) -> None:
        """Fire every barrier whose earlier entries have all completed."""
        session = queue.session
        for rec in queue.ready_barriers():
            if rec.op == Op.FSYNC:
                epoch = queue.fsync_epoch()
                self.epochs[epoch.key] = epoch
                self.engine.submit(session.registry, epoch.key, REQUEST_RECORD.pack(*_record_fields(rec)))
                break  # later barriers wait for the fsync's own completion
            queue.in_flight -= 1
            hresult = queue.status_result() if rec.op == Op.STATUS else 0
            queue.deliver(completion(rec.request_id, Status.OK, hresult), [])

    def _on_cancel(self, session: Session, msg: Cancel) -> None:
        queue = self._queue(session, msg.queue, msg.seq)
        if queue is None:
            return
        ids = set(msg.ids)
        if msg.all:
            match = _always
        elif ids:
            match = lambda rec: rec.request_id in ids  # noqa: E731
        else:
            match = lambda rec: (rec.cancel_tag & msg.mask) == msg.value  # noqa: E731
        count = self._cancel_unstarted(queue, match)
        for key in queue.keys():
            if msg.all:
                count += self.engine.cancel(key, mask=0, value=0)
            elif ids:
                count += sum(self.engine.cancel(key, request_id=rid) for rid in ids)
            else:
                count += self.engine.cancel(key, mask=msg.mask, value=msg.value)
        self._advance(queue)
        self.scheduler.pump()
        session.send(Ok(seq=msg.seq, count=count))

    def _cancel_unstarted(self, queue: Queue, match) -> int:
        """Cancel matching requests the engine has not seen: held until SUBMIT or waiting in the
        scheduler. Barriers are never cancelled. Python per record is fine here: cancel is rare."""
        count = 0
        held = queue.take_held()
        for records, names, n in held:
            keep = bytearray()
            for rec, raw in _records(records):
                if rec.op not in BARRIER_OPS and match(rec):
                    queue.deliver(completion(rec.request_id, Status.CANCELLED, HRESULT.E_ABORT, 125,
                                             Reason.CANCELLED), [])
                    count += 1
                else:
                    keep += raw
            if keep:
                queue.hold(bytes(keep), names, len(keep) // REQUEST_RECORD_SIZE)
        waiting = self.scheduler.withdraw(lambda chunk: chunk.epoch.queue is queue)
        for chunk in waiting:
            keep = bytearray()
            for rec, raw in _records(chunk.records):
                if match(rec):
                    queue.deliver(completion(rec.request_id, Status.CANCELLED, HRESULT.E_ABORT, 125,
                                             Reason.CANCELLED), [])
                    queue.on_completed(chunk.epoch, 1, [])
                    count += 1
                else:
                    keep += raw
            if keep:
                self.scheduler.push(queue.priority, [Chunk(chunk.epoch, bytes(keep), chunk.names,
                                                           len(keep) // REQUEST_RECORD_SIZE)])
        return count

    # -- GPU buffers for native clients (daemon/_gpu_export.py) ---------------------------------

    def _on_decode_to_gpu(self, session: Session, msg: DecodeToGpu) -> None:
        try:
            job = self.exports.start(session, msg.seq, msg.requests, self.engine)
        except ExportRefused as exc:
            return self._reply_error(session, msg.seq, exc.code, exc.message, exc.errno)
        if job.remaining == 0:  # nothing to read (every file id was unknown)
            self._nursery.start_soon(self._finish_export, job)

    async def _finish_export(self, job: Job) -> None:
        await self.exports.finish(job, self._alive, self._export_reply)

    def _alive(self, session: Session) -> bool:
        return self.by_key.get(session.key) is session

    def _export_reply(self, session: Session, msg: Message | int, *error: Any) -> None:
        """GPU_BUFFER, or (seq, code, message, errno) for an ERROR, to a session still here."""
        if not self._alive(session):
            return
        if not isinstance(msg, Message):
            return self._reply_error(session, msg, *error)
        try:
            session.send(msg)
        except zmq.ZMQError as exc:
            self._on_send_error(session, exc)

    def _on_release_gpu_buffer(self, session: Session, msg: ReleaseGpuBuffer) -> None:
        free = self.exports.release(session, msg.buffer_id)
        if free is None:
            return self._reply_error(session, msg.seq, "UNKNOWN_BUFFER",
                                     f"GPU buffer {msg.buffer_id} is not held for this session (never made, or "
                                     "released already)", errno.EINVAL)
        try:
            session.send(Ok(seq=msg.seq))
        finally:
            free()  # after the answer: the client need not wait for the driver

    def _on_stats(self, session: Session, msg: StatsRequest) -> None:
        session.send(StatsReply(seq=msg.seq, stats=self.stats()))

    def _on_ping(self, session: Session, msg: Ping) -> None:
        session.send(Pong(seq=msg.seq))

    def _on_bye(self, session: Session, msg: Bye) -> None:
        frames = Ok(seq=msg.seq).to_frames()  # the state machine is closed now; encode directly
        self._drop(session, "said goodbye")
        session.socket.send([session.identity, *frames])

    _handlers = {OpenFile: _on_open_file, CloseFile: _on_close_file, RegisterMemory: _on_register_memory,
                 UnregisterMemory: _on_unregister_memory, CreateQueue: _on_create_queue, CloseQueue: _on_close_queue,
                 QueryQueue: _on_query_queue, RetrieveErrorRecord: _on_retrieve_error_record,
                 QueryCompression: _on_query_compression, Batch: _on_batch, Submit: _on_submit, Cancel: _on_cancel,
                 DecodeToGpu: _on_decode_to_gpu, ReleaseGpuBuffer: _on_release_gpu_buffer,
                 StatsRequest: _on_stats, Ping: _on_ping, Bye: _on_bye}

    def stats(self) -> dict[str, Any]:
        engine = dict(self.engine.stats()) if self.engine is not None else {}
        return {"version": dsd.__version__, "protocol": PROTOCOL_VERSION, "pid": os.getpid(),
                "uptime_s": round(time.monotonic() - self.started, 3), "clients": len(self.by_key),
                "endpoints": dict(self.endpoints), "io": engine, "decode": self.gpu.stats(),
                "gpu_exports": self.exports.stats(),
                "scheduler": {"window": self.scheduler.window, "in_engine": self.scheduler.in_engine,
                              "waiting": self.scheduler.waiting,
                              "served": {Priority(p).name: n for p, n in self.scheduler.served.items()}},
                **self.counters}

    # -- completions --------------------------------------------------------------------------

    async def _deliver_completions(self) -> None:
        fd = self.engine.fileno()
        while True:
            await trio.lowlevel.wait_readable(fd)
            touched: dict[int, Queue] = {}
            for key, completions, failed, messages in self.engine.reap(messages=True):
                job = self.exports.jobs.get(key)
                if job is not None:  # reads of a DECODE_TO_GPU request
                    failures = completions[_STATUS_OFFSET::COMPLETION_RECORD_SIZE].count(Status.FAILED)
                    errors = self._error_records(job.session, completions, failed, messages) if failures else []
                    if self.exports.on_reads(job, completions, errors):
                        self._nursery.start_soon(self._finish_export, job)
                    continue
                epoch = self.epochs.get(key)
                if epoch is None or epoch.queue.closed:
                    continue  # client or queue gone; its completions are moot
                queue, session = epoch.queue, epoch.queue.session
                count = len(completions) // COMPLETION_RECORD_SIZE
                if epoch.gpu_job is not None:  # staging reads of a GPU job: decode once all are in
                    failures = completions[_STATUS_OFFSET::COMPLETION_RECORD_SIZE].count(Status.FAILED)
                    errors = self._error_records(session, completions, failed, messages) if failures else []
                    if self.gpu.staged(epoch.gpu_job, completions, errors):
                        self._nursery.start_soon(self.gpu.decode, epoch.gpu_job, self._gpu_done)
                    continue
                self.counters["completions"] += count
                if epoch.scheduled:
                    self.scheduler.done(epoch, count)
                # The status bytes sliced out at C speed: Python looks at records only when one failed.
                failures = completions[_STATUS_OFFSET::COMPLETION_RECORD_SIZE].count(Status.FAILED)
                errors = self._error_records(session, completions, failed, messages) if failures else []
                queue.on_completed(epoch, count, errors)
                queue.deliver(completions, errors)
                touched[id(queue)] = queue
            for queue in touched.values():
                self._advance(queue)
            self.scheduler.pump()
            self._flush()

    def _note_pending(self, session: Session) -> None:
        self._pending[session.key] = session

    def _flush(self) -> None:
        """Send each session's accumulated completions as one COMPLETIONS message (only the
        sessions that have some: a wakeup costs nothing per idle client)."""
        pending, self._pending = self._pending, {}
        for session in pending.values():
            if session.outbox and self.by_key.get(session.key) is session:
                try:
                    session.flush()
                except zmq.ZMQError as exc:
                    self._on_send_error(session, exc)

    def _error_records(self, session: Session, completions: bytes, failed: bytes,
                       messages: tuple[str, ...]) -> list[dict[str, Any]]:
        """Failed requests only: the engine returns each one's original record (and, where it has
        more to say than reason and errno, e.g. which GDeflate tile is corrupt, its words)."""
        requests = {}
        for i, off in enumerate(range(0, len(failed), REQUEST_RECORD_SIZE)):
            rec = RequestRecord.unpack_from(failed, off)
            requests[rec.request_id] = (rec, messages[i] if i < len(messages) else "")
        out = []
        for done in iter_completions(completions):
            if done.status == Status.FAILED:
                self.counters["failures"] += 1
                rec, detail = requests.get(done.request_id, (None, ""))
                out.append(_failures.error_record(done, rec, session.files, session.regions, detail))
        return out

    # -- vanished clients ---------------------------------------------------------------------

    async def _watch_connections(self, index: int, tsock: TrioSocket) -> None:
        monitor = tsock.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        mon = TrioSocket(monitor)
        try:
            while True:
                await mon.wait_readable()
                while (frames := mon.recv_nowait()) is not None:
                    event = parse_monitor_message([f.bytes for f in frames])
                    fd = event["value"]
                    suspects = [s for s in self.by_key.values() if s.socket is tsock and s.srcfd == fd]
                    for session in suspects:
                        self._nursery.start_soon(self._probe, session)
        finally:
            tsock.sock.disable_monitor()
            monitor.close(linger=0)

    async def _probe(self, session: Session) -> None:
        """A disconnect event names an fd, which a new client may reuse at once: confirm the
        client is gone (ROUTER_MANDATORY send -> EHOSTUNREACH) before dropping it."""
        for delay in PROBE_DELAYS:
            await trio.sleep(delay)
            if self.by_key.get(session.key) is not session:
                return
            try:
                session.socket.send([session.identity, *Probe().to_frames()])
            except zmq.ZMQError as exc:
                self._on_send_error(session, exc)
                return

    def _on_send_error(self, session: Session, exc: zmq.ZMQError) -> None:
        if exc.errno == zmq.EHOSTUNREACH:
            self._drop(session, "disconnected")
        elif exc.errno == zmq.EAGAIN:
            self._drop(session, f"stopped reading ({SEND_HWM} messages queued)")
        else:
            log.error("send to %s failed: %s", session.describe(), exc)
            self._drop(session, f"send failed: {exc}")

    def _drop(self, session: Session, why: str) -> None:
        if self.by_key.pop(session.key, None) is None:
            return
        self.sessions = {k: s for k, s in self.sessions.items() if s is not session}
        self.counters["clients_dropped"] += 1
        self.scheduler.withdraw(lambda chunk: chunk.epoch.queue.session is session)
        self.gpu.forget(lambda job: job.queue.session is session)
        self.exports.drop_session(session, self.engine)
        for key in session.close(self.engine):
            epoch = self.epochs.pop(key, None)
            if epoch is not None:
                self.scheduler.forget(epoch)
        log.info("%s %s; released its files and regions", session.describe(), why)


def _buffer(frame: Any) -> Any:
    return frame.buffer if hasattr(frame, "buffer") else frame


def _records(buf: Any):
    view = memoryview(buf)
    for off in range(0, len(view), REQUEST_RECORD_SIZE):
        raw = view[off:off + REQUEST_RECORD_SIZE]
        yield RequestRecord.unpack_from(raw), raw


def _always(_rec: RequestRecord) -> bool:
    return True


def _record_fields(rec: RequestRecord) -> tuple:
    return (rec.request_id, rec.cancel_tag, rec.src_offset, rec.src_size, rec.src_id, rec.dst_offset, rec.dst_size,
            rec.dst_id, rec.uncompressed_size, rec.op, rec.compression, rec.source_type, rec.flags, 0, 0, rec.level,
            rec.reserved)


# DSTORAGE_COMPRESSION_SUPPORT flags
GPU_OPTIMIZED, GPU_FALLBACK, CPU_FALLBACK, USES_COMPUTE_QUEUE, USES_COPY_QUEUE = 0x1, 0x2, 0x4, 0x8, 0x10


def compression_support(fmt: int, engine: Any, gpu: GpuRoute) -> tuple[int, str]:
    """What this daemon really does for a format (games pick assets by it, so no optimism):
    the GPU flags only once a Vulkan decoder is open and DSD_DECODE lets it run."""
    if fmt == Compression.NONE:
        return 0, "uncompressed: no decompression needed"
    if fmt not in (Compression.GDEFLATE, Compression.ZSTD):
        return 0, f"format {fmt} is not supported"
    name = Compression(fmt).name.lower()
    workers = engine.stats().get("codec_workers", 0)
    cpu = f"{name}: native CPU codec workers ({workers})"
    if fmt == Compression.GDEFLATE and gpu.in_use():
        return (GPU_FALLBACK | USES_COMPUTE_QUEUE | CPU_FALLBACK,
                f"{cpu}; GPU shader on {gpu.decoder.device.info.name} (DSD_DECODE={gpu.mode})")
    why = gpu.unavailable or ("DSD_DECODE=cpu" if gpu.mode == "cpu" else
                              "auto skips CPU Vulkan drivers" if gpu.kind == "cpu" else "no GPU decoder open")
    return CPU_FALLBACK, f"{cpu}; no GPU path: {why}"


def _peek_seq(frames: list[zmq.Frame]) -> int | None:
    """Best effort: the seq of a message that failed validation, so the error names it."""
    try:
        header = msgpack.unpackb(frames[1].bytes, raw=False)
        seq = header.get("seq") if isinstance(header, dict) else None
        return seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    except Exception:
        return None


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a crashed daemon blocks bind; one answered by a live daemon is fatal."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"another dsd daemon is already serving on {path}")


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)


def _block_device_size(fd: int) -> int:
    return os.lseek(fd, 0, os.SEEK_END)
