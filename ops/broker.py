"""The file-system Celery broker of the embedded default, made safe for several processes.

kombu's filesystem transport (kombu/transport/filesystem.py) has three ways to lose a message
or the worker:
- it creates a message file under its final name and then writes it, so a reader listing the
  folder at that moment reads an empty or partial file and raises JSONDecodeError, which stops
  the worker ("Unrecoverable error") after the file was already removed;
- a reader removes the file before the task has run, so a worker killed while it holds
  messages loses them, although Wayfarer acknowledges tasks only after they ran
  (`task_acks_late`, config/celery.py);
- without `store_processed` it moves the file to the system's temporary folder, which may be
  another file system: that move is a copy, and two readers can both take the message.

This transport writes each message to a temporary file in the queue folder and renames it into
place (atomic: a reader sees all of it or nothing), claims a message by renaming it into a
folder of its own (atomic: one reader wins) and deletes it only when the task is acknowledged.
A consumer's claim folder is leased with a lock that the kernel releases when its process dies,
however it dies; the next consumer that finds a released lease puts its messages back in the
queue. A torn file that another writer (kombu's own) is still writing is left for later, and
one that stays unreadable is moved aside with an error in the log, never raised.

Selected by CELERY_BROKER_TRANSPORT (config/settings.py) for `filesystem://` broker URLs.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

# A message file that cannot be read yet is given this long to be completed by its writer.
TORN_GRACE_SECONDS = 30.0
# How often a consumer looks for claims of consumers that died.
RECOVER_EVERY_SECONDS = 5.0
PART_SUFFIX = ".part"  # temporary files; never the name of a queue's message


class Channel(filesystem.Channel):
    """Atomic writes, claims by rename, deletion on acknowledgement (see the module's doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claims: dict[str, Path] = {}  # delivery tag -> its claimed file
        self._no_ack_queues: set[str] = set()  # consumers that never acknowledge
        self._lease_fd: int | None = None
        self._lease_folder: Path | None = None
        self._recovered_at = float("-inf")

    # --- writing ---------------------------------------------------------------------------------

    # (kombu's stubs name the argument differently in the two classes above; the parent's here)
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"  # kombu's naming
        folder = self.data_folder_out
        part = os.path.join(folder, f".{uuid.uuid4().hex}{PART_SUFFIX}")
        try:
            with open(part, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(part, os.path.join(folder, name))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(part)
            raise ChannelError(f"Cannot add a message to {folder!r}: {exc}") from exc

    # --- reading ---------------------------------------------------------------------------------

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        self._recover_abandoned()
        wanted = f"{queue}.msg"
        folder = self.data_folder_in
        for filename in sorted(os.listdir(folder)):
            if filename.partition(".")[2] != wanted:
                continue
            source = os.path.join(folder, filename)
            claimed = self._claim_folder() / filename
            try:
                os.rename(source, claimed)  # one reader wins; the others find it gone
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ChannelError(f"Cannot claim {source!r}: {exc}") from exc
            try:
                payload = loads(bytes_to_str(claimed.read_bytes()))
            except (ValueError, UnicodeDecodeError):
                self._set_torn_aside(claimed, source)
                continue
            if queue in self._no_ack_queues or not isinstance(payload, dict):
                self._done(claimed)
            else:
                tag = payload.get("properties", {}).get("delivery_tag")
                if tag is None:
                    self._done(claimed)
                else:
                    self._claims[tag] = claimed
            return payload
        raise Empty()

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        if no_ack:  # one message, read and forgotten: claim nothing that waits for an ack
            self._no_ack_queues.add(queue)
            try:
                return super().basic_get(queue, no_ack=True, **kwargs)
            finally:
                self._no_ack_queues.discard(queue)
        return super().basic_get(queue, no_ack=no_ack, **kwargs)

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple=multiple)
        claimed = self._claims.pop(delivery_tag, None)
        if claimed is not None:
            self._done(claimed)

    def _restore(self, message: Any) -> None:
        """A rejected or unacknowledged message goes back to its queue (as a new file)."""
        super()._restore(message)
        claimed = self._claims.pop(message.delivery_tag, None)
        if claimed is not None:
            with contextlib.suppress(FileNotFoundError):
                claimed.unlink()

    def close(self) -> None:
        super().close()  # restores what was not acknowledged
        self._release_lease()

    # --- claims and their recovery ---------------------------------------------------------------

    @property
    def claimed_root(self) -> Path:
        default = Path(self.data_folder_in).parent / "claimed"
        return Path(self.transport_options.get("claimed_folder", default))

    def _claim_folder(self) -> Path:
        """This channel's folder of claimed messages, leased by a lock held while it lives."""
        if self._lease_folder is not None:
            return self._lease_folder
        root = self.claimed_root
        root.mkdir(parents=True, exist_ok=True)
        lease = uuid.uuid4().hex
        # Locked before it has its final name, so nobody ever sees the lease unlocked.
        pending = root / f".{lease}{PART_SUFFIX}"
        fd = os.open(pending, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(pending, root / f"{lease}.lock")
        folder = root / lease
        folder.mkdir()
        self._lease_fd, self._lease_folder = fd, folder
        return folder

    def _release_lease(self) -> None:
        if self._lease_fd is None or self._lease_folder is None:
            return
        folder, fd = self._lease_folder, self._lease_fd
        self._lease_fd = self._lease_folder = None
        with contextlib.suppress(OSError):
            folder.rmdir()  # fails if claims are left: the next consumer recovers them
            (folder.parent / f"{folder.name}.lock").unlink()
        os.close(fd)

    def _recover_abandoned(self) -> None:
        moment = time.monotonic()
        if moment - self._recovered_at < RECOVER_EVERY_SECONDS:
            return
        self._recovered_at = moment
        root = self.claimed_root
        if not root.is_dir():
            return
        for lock in root.glob("*.lock"):
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its consumer is alive
                returned = self._return_claims(root / lock.stem)
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                if returned:
                    log.warning(
                        "Put %s message(s) back in the queue: the consumer that held them "
                        "stopped without acknowledging them.",
                        returned,
                    )
            finally:
                os.close(fd)
        self._remove_stale_parts()

    def _return_claims(self, folder: Path) -> int:
        returned = 0
        if folder.is_dir():
            for claimed in folder.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    os.replace(claimed, os.path.join(self.data_folder_in, claimed.name))
                    returned += 1
            with contextlib.suppress(OSError):
                folder.rmdir()
        return returned

    def _remove_stale_parts(self) -> None:
        """Temporary files of writers that died mid-write: never renamed, never read."""
        folder = Path(self.data_folder_out)
        limit = time.time() - TORN_GRACE_SECONDS
        for part in folder.glob(f".*{PART_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if part.stat().st_mtime < limit:
                    part.unlink()

    def _set_torn_aside(self, claimed: Path, source: str) -> None:
        try:
            age = time.time() - claimed.stat().st_mtime
        except FileNotFoundError:
            return
        if age < TORN_GRACE_SECONDS:
            # Being written (by a writer that does not write atomically): try again later.
            with contextlib.suppress(OSError):
                os.rename(claimed, source)
            return
        aside = self.claimed_root / "unreadable"
        aside.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.replace(claimed, aside / claimed.name)
        log.error("Set aside an unreadable broker message: %s", aside / claimed.name)

    def _done(self, claimed: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.store_processed:
                os.replace(claimed, os.path.join(self.processed_folder, claimed.name))
            else:
                claimed.unlink()


class Transport(filesystem.Transport):
    Channel = Channel
